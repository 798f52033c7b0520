//! Command-line options (`consign-bench --help`).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

/// Which database the measured server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// A throwaway SQLite file (the embedded default).
    Sqlite,
    /// A throwaway database on a PostgreSQL server.
    Postgres,
}

/// Drive create-shipment through Consign's API and compare it with the database running the
/// same durable work: written the ordinary way, and at its ceiling.
#[derive(Debug, Clone, Parser)]
#[command(name = "consign-bench", version)]
pub struct Options {
    /// Database of the measured server.
    #[arg(long, value_enum, default_value = "sqlite")]
    pub backend: Backend,
    /// PostgreSQL server for throwaway databases.
    #[arg(
        long = "postgres",
        default_value = "postgres://postgres@127.0.0.1:5432"
    )]
    pub postgres_server: String,
    /// Concurrent clients.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=4096))]
    clients: u32,
    /// Measured seconds.
    #[arg(long = "duration", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    duration_secs: u64,
    /// Orders with many units, for partial shipments.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..))]
    orders: u64,
    /// Small orders shipped whole in one request.
    #[arg(long, default_value_t = 1000)]
    full_orders: u64,
    /// Earlier captured shipments in the tables.
    #[arg(long, default_value_t = 100_000)]
    history: u64,
    /// Sandbox gateway latency, in milliseconds.
    #[arg(long = "latency", default_value_t = 0)]
    pub latency_ms: u64,
    /// Share created with capture off, then completed, in percent.
    #[arg(long = "uncaptured", default_value_t = 10, value_parser = clap::value_parser!(u32).range(0..=100))]
    pub uncaptured_percent: u32,
    /// Share of captured shipments returned whole with a refund right after, in percent.
    #[arg(long = "returns", default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=100))]
    pub returns_percent: u32,
    /// PostgreSQL: libpq's sslmode for Consign and pgbench alike (default: as Consign completes a
    /// URL without one: `disable` on loopback, libpq's `prefer` elsewhere).
    #[arg(long, value_parser = ["disable", "allow", "prefer", "require"])]
    pub sslmode: Option<String>,
    /// The server's database pool size.
    #[arg(long = "pool", value_parser = clap::value_parser!(u32).range(1..))]
    pub pool_size: Option<u32>,
    /// Also run the database baselines (ordinary and ceiling) and print ratios.
    #[arg(long)]
    pub baseline: bool,
    /// Also run `consign-floor` (actix-web doing only the ceiling's two writes per request,
    /// with a canned answer) under the same clients. PostgreSQL: print Consign's server CPU per
    /// request as a ratio of the floor's. SQLite (the writes go through the ceiling's own
    /// writer): print the floor's throughput as a ratio of the ceiling's, and Consign's as a
    /// ratio of the floor's, in each of `--pairs` too. The floor captures every shipment at
    /// creation: compare with `--uncaptured 0`.
    #[arg(long)]
    pub floor: bool,
    /// pgbench clients (default: --clients, at most 16).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    baseline_clients: Option<u32>,
    /// pgbench threads (`-j`), each driving its share of the clients' connections without
    /// blocking on any one of them (at most the pgbench clients). With one thread per client,
    /// each thread waits on its one connection, as a blocking client does.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
    baseline_threads: u32,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    pub json: Option<String>,
    /// The consign binary (default: next to this one).
    #[arg(long)]
    pub server: Option<String>,
    /// SQLite, with --baseline: after the measured run, this many rounds of Consign's drive
    /// (--duration long) then the ceiling's (as many shipments as Consign's just made, on a
    /// database first grown by as many as Consign's measured run made), and each round's ratio
    /// with their median; with --floor, the floor's too.
    #[arg(long, default_value_t = 0)]
    pub pairs: u32,
    /// Where each server's confirmation mails go: a folder of its own is made in this
    /// directory, counted, and removed with the server. Default: `/dev/shm` (memory) where the
    /// machine has it, else the temporary directory. On a disk whose filesystem passes over
    /// recently freed inodes when it creates a file (ext4 without a journal), a run started
    /// within minutes of another run's removal pays for it (set 19 in docs/benchmarks.md).
    #[arg(long = "mail-dir")]
    mail_dir: Option<PathBuf>,
}

impl Options {
    /// The directory the servers' mail folders are made in.
    pub fn mail_parent(&self) -> PathBuf {
        self.mail_dir.clone().unwrap_or_else(|| {
            let memory = PathBuf::from("/dev/shm");
            if memory.is_dir() {
                memory
            } else {
                std::env::temp_dir()
            }
        })
    }

    /// The URL the database clients (Consign, pgbench) are given for `url`: on PostgreSQL with
    /// `--sslmode` when given, and as Consign itself completes it (so pgbench connects as
    /// Consign does: without TLS on loopback unless told otherwise).
    pub fn client_url(&self, url: &str) -> String {
        match (&self.sslmode, self.backend) {
            (_, Backend::Sqlite) => url.to_owned(),
            (None, Backend::Postgres) => consign_db::postgres_connection_url(url),
            (Some(mode), Backend::Postgres) => {
                let joiner = if url.contains('?') { '&' } else { '?' };
                consign_db::postgres_connection_url(&format!("{url}{joiner}sslmode={mode}"))
            }
        }
    }

    /// Concurrent clients.
    pub fn clients(&self) -> usize {
        self.clients as usize
    }

    /// Measured time.
    pub fn duration(&self) -> Duration {
        Duration::from_secs(self.duration_secs)
    }

    /// Orders with many units.
    pub fn orders(&self) -> usize {
        self.orders as usize
    }

    /// Orders shipped whole.
    pub fn full_orders(&self) -> usize {
        self.full_orders as usize
    }

    /// Rows of history.
    pub fn history(&self) -> usize {
        self.history as usize
    }

    /// The clients of the pgbench baselines: the database's limit is measured where it is
    /// highest, not at hundreds of connections it was never meant to serve.
    pub fn pgbench_clients(&self) -> usize {
        self.baseline_clients
            .map_or(self.clients().min(16), |c| c as usize)
    }

    /// The threads of the pgbench baselines (pgbench refuses more threads than clients).
    pub fn pgbench_threads(&self) -> usize {
        (self.baseline_threads as usize).min(self.pgbench_clients())
    }
}
