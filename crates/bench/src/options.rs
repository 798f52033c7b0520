//! Command-line options.

use std::time::Duration;

/// Which database the measured server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A throwaway SQLite file (the embedded default).
    Sqlite,
    /// A throwaway database on a PostgreSQL server.
    Postgres,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    pub backend: Backend,
    pub postgres_server: String,
    pub clients: usize,
    pub duration: Duration,
    pub orders: usize,
    pub full_orders: usize,
    pub history: usize,
    pub latency_ms: u64,
    pub uncaptured_percent: u32,
    pub pool_size: Option<u32>,
    pub baseline: bool,
    /// pgbench's clients; by default the measured clients, at most 16 (the database's best).
    pub baseline_clients: Option<usize>,
    pub json: Option<String>,
    pub server: Option<String>,
}

pub const USAGE: &str = "\
consign-bench: drive create-shipment through Consign's API and compare with the database's limit

  --backend sqlite|postgres   database of the measured server (default sqlite)
  --postgres URL              PostgreSQL server for throwaway databases
                              (default postgres://postgres@127.0.0.1:5432)
  --clients N                 concurrent clients (default 16)
  --duration SECS             measured seconds (default 10)
  --orders N                  orders with many units, for partial shipments (default 200)
  --full-orders N             small orders shipped whole in one request (default 1000)
  --history N                 earlier captured shipments in the tables (default 100000)
  --latency MS                sandbox gateway latency (default 0)
  --uncaptured PERCENT        share created with capture off, then completed (default 10)
  --pool N                    the server's database pool size
  --baseline                  also run the database baseline and print ratios
  --baseline-clients N        pgbench clients (default: --clients, at most 16)
  --json FILE                 also write the figures as JSON
  --server PATH               the consign binary (default: next to this one)";

impl Options {
    pub fn parse(args: &[String]) -> Result<Options, String> {
        let mut o = Options {
            backend: Backend::Sqlite,
            postgres_server: "postgres://postgres@127.0.0.1:5432".into(),
            clients: 16,
            duration: Duration::from_secs(10),
            orders: 200,
            full_orders: 1000,
            history: 100_000,
            latency_ms: 0,
            uncaptured_percent: 10,
            pool_size: None,
            baseline: false,
            baseline_clients: None,
            json: None,
            server: None,
        };
        let mut i = 0;
        let value = |i: usize| -> Result<&String, String> {
            args.get(i + 1)
                .ok_or_else(|| format!("{} needs a value", args[i]))
        };
        let number = |i: usize| -> Result<u64, String> {
            value(i)?
                .parse::<u64>()
                .map_err(|_| format!("{} needs a number", args[i]))
        };
        while i < args.len() {
            match args[i].as_str() {
                "--backend" => {
                    o.backend = match value(i)?.as_str() {
                        "sqlite" => Backend::Sqlite,
                        "postgres" => Backend::Postgres,
                        other => return Err(format!("unknown backend {other}")),
                    }
                }
                "--postgres" => o.postgres_server = value(i)?.clone(),
                "--clients" => o.clients = number(i)?.max(1) as usize,
                "--duration" => o.duration = Duration::from_secs(number(i)?.max(1)),
                "--orders" => o.orders = number(i)?.max(1) as usize,
                "--full-orders" => o.full_orders = number(i)? as usize,
                "--history" => o.history = number(i)? as usize,
                "--latency" => o.latency_ms = number(i)?,
                "--uncaptured" => o.uncaptured_percent = number(i)?.min(100) as u32,
                "--pool" => o.pool_size = Some(number(i)?.max(1) as u32),
                "--baseline-clients" => o.baseline_clients = Some(number(i)?.max(1) as usize),
                "--json" => o.json = Some(value(i)?.clone()),
                "--server" => o.server = Some(value(i)?.clone()),
                "--baseline" => {
                    o.baseline = true;
                    i += 1;
                    continue;
                }
                "-h" | "--help" => return Err(USAGE.into()),
                other => return Err(format!("unknown option {other}\n\n{USAGE}")),
            }
            i += 2;
        }
        Ok(o)
    }
}

impl Options {
    /// The clients of the pgbench baseline: the database's limit is measured where it is
    /// highest, not at hundreds of connections it was never meant to serve.
    pub fn pgbench_clients(&self) -> usize {
        self.baseline_clients.unwrap_or(self.clients.min(16))
    }
}
