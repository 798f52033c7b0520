//! Figures: throughput, latency percentiles, answers by kind.

use std::time::Duration;

use serde_json::{json, Value};

#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub ok: u64,
    pub no: u64,
    pub client_errors: u64,
    pub server_errors: u64,
    pub transport_errors: u64,
    /// Microseconds, one per request.
    pub latencies: Vec<u64>,
}

impl Tally {
    pub fn merge(&mut self, other: Tally) {
        self.ok += other.ok;
        self.no += other.no;
        self.client_errors += other.client_errors;
        self.server_errors += other.server_errors;
        self.transport_errors += other.transport_errors;
        self.latencies.extend(other.latencies);
    }

    pub fn requests(&self) -> u64 {
        self.latencies.len() as u64
    }
}

/// p50/p90/p99/max of microsecond samples, in milliseconds.
pub fn percentiles(samples: &mut [u64]) -> (f64, f64, f64, f64) {
    if samples.is_empty() {
        return (0.0, 0.0, 0.0, 0.0);
    }
    samples.sort_unstable();
    let at = |p: f64| {
        samples[((samples.len() as f64 * p).ceil() as usize)
            .saturating_sub(1)
            .min(samples.len() - 1)] as f64
            / 1000.0
    };
    (
        at(0.50),
        at(0.90),
        at(0.99),
        *samples.last().unwrap_or(&0) as f64 / 1000.0,
    )
}

/// A single SQLite writer's share of a run: how many writes each commit held, and its CPU.
#[derive(Debug, Clone, Copy)]
pub struct WriterFigures {
    pub commits: u64,
    pub cpu_seconds: f64,
}

pub struct Measured {
    pub label: String,
    pub requests: u64,
    pub shipments: u64,
    pub elapsed: Duration,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub tally: Tally,
    /// CPU seconds the database's client used for the run: Consign's server process, pgbench,
    /// or the SQLite writer loop.
    pub client_cpu_seconds: f64,
    /// CPU seconds the (local) PostgreSQL server used for the run; `None` on SQLite, where the
    /// database runs inside its client, or when the server is on another machine.
    pub database_cpu_seconds: Option<f64>,
    /// On SQLite, the writer thread's commits and CPU (Consign's, or the ceiling's).
    pub writer: Option<WriterFigures>,
}

impl Measured {
    /// A baseline's run: one latency (microseconds) per shipment, each shipment one request,
    /// with the CPU seconds its database client used.
    pub fn of_baseline(
        label: String,
        latencies: Vec<u64>,
        elapsed: Duration,
        client_cpu_seconds: f64,
    ) -> Measured {
        let shipments = latencies.len() as u64;
        let tally = Tally {
            latencies,
            ..Tally::default()
        };
        Measured::of_load(label, tally, shipments, elapsed, client_cpu_seconds)
    }

    /// A server's run under the load generator: its answers, the shipments they made, and the
    /// CPU seconds the server used.
    pub fn of_load(
        label: String,
        mut tally: Tally,
        shipments: u64,
        elapsed: Duration,
        client_cpu_seconds: f64,
    ) -> Measured {
        let (p50, p90, p99, max) = percentiles(&mut tally.latencies);
        Measured {
            label,
            requests: tally.requests(),
            shipments,
            elapsed,
            p50,
            p90,
            p99,
            max,
            tally,
            client_cpu_seconds,
            database_cpu_seconds: None,
            writer: None,
        }
    }

    pub fn throughput(&self) -> f64 {
        self.shipments as f64 / self.elapsed.as_secs_f64()
    }

    /// The database client's CPU per shipment, in milliseconds.
    pub fn cpu_ms_per_shipment(&self) -> f64 {
        self.client_cpu_seconds * 1000.0 / self.shipments.max(1) as f64
    }

    /// The database server's CPU per shipment, in milliseconds, when it was measured.
    pub fn database_cpu_ms_per_shipment(&self) -> Option<f64> {
        self.database_cpu_seconds
            .map(|seconds| seconds * 1000.0 / self.shipments.max(1) as f64)
    }

    /// Shipments per commit of the SQLite writer, and its CPU per shipment in milliseconds.
    pub fn writer_per_shipment(&self) -> Option<(f64, f64)> {
        self.writer.map(|w| {
            let shipments = self.shipments.max(1) as f64;
            (
                shipments / w.commits.max(1) as f64,
                w.cpu_seconds * 1000.0 / shipments,
            )
        })
    }

    /// The writer's line under the table, when there is a single writer.
    pub fn writer_line(&self) -> Option<String> {
        let (per_commit, cpu) = self.writer_per_shipment()?;
        Some(format!(
            "{}: its SQLite writer committed {per_commit:.2} shipments per commit and spent \
             {cpu:.3} ms of CPU per shipment",
            self.label
        ))
    }

    pub fn json(&self) -> Value {
        let writer = self.writer_per_shipment().map(|(per_commit, cpu)| {
            json!({"commits": self.writer.map(|w| w.commits), "shipments_per_commit": per_commit,
                   "cpu_ms_per_shipment": cpu})
        });
        json!({
            "label": self.label,
            "requests": self.requests,
            "shipments": self.shipments,
            "seconds": self.elapsed.as_secs_f64(),
            "shipments_per_second": self.throughput(),
            "latency_ms": {"p50": self.p50, "p90": self.p90, "p99": self.p99, "max": self.max},
            "client_cpu_ms_per_shipment": self.cpu_ms_per_shipment(),
            "database_cpu_ms_per_shipment": self.database_cpu_ms_per_shipment(),
            "sqlite_writer": writer,
            "answers": {"ok": self.tally.ok, "no": self.tally.no, "4xx": self.tally.client_errors,
                        "5xx": self.tally.server_errors, "transport": self.tally.transport_errors},
        })
    }

    pub fn row(&self) -> String {
        format!(
            "{:<34} {:>9.0} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>12.3} {:>15}",
            self.label,
            self.throughput(),
            self.p50,
            self.p90,
            self.p99,
            self.max,
            self.cpu_ms_per_shipment(),
            self.database_cpu_ms_per_shipment()
                .map_or_else(|| "-".to_owned(), |ms| format!("{ms:.3}"))
        )
    }
}

pub fn header() -> String {
    format!(
        "{:<34} {:>9} {:>8} {:>8} {:>8} {:>8} {:>12} {:>15}",
        "run", "ships/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "CPU ms/ship", "DB CPU ms/ship"
    )
}
