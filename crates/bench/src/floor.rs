//! `--floor`: `consign-floor`, a server doing only what no implementation of create-shipment
//! can skip, driven by the same clients on a database prepared as the baselines' are. On
//! PostgreSQL it gives Consign's server CPU per request a floor measured in the same run rather
//! than estimated from other programs; on SQLite, where the floor's writes go through the
//! ceiling's own writer, its throughput beside the ceiling's is what the HTTP exchange alone
//! costs that writer's groups.

use std::sync::Arc;
use std::time::Instant;

use crate::load::{self, Limit, Seeded, FULL_BASE};
use crate::options::Backend;
use crate::report::{Measured, WriterFigures};
use crate::server::{self, Server};

/// The floor's run: its figures as a row, and per request what the table does not show.
pub struct FloorRun {
    pub measured: Measured,
    /// The floor server's CPU per request, ms.
    pub cpu_ms_per_request: f64,
    /// Statements it sent (PostgreSQL) or writes it queued (SQLite) per request: 2 when every
    /// request shipped.
    pub statements_per_request: f64,
    /// The load generator's CPU per request, ms.
    pub generator_cpu_ms_per_request: f64,
}

impl FloorRun {
    /// Why the floor did less than it claims (an answer that was not a shipment), if it did.
    pub fn short_of_shipping(&self) -> Option<String> {
        let (ok, requests) = (self.measured.tally.ok, self.measured.requests);
        (ok != requests || requests == 0)
            .then(|| format!("floor: not every request shipped ({ok} ok of {requests})"))
    }
}

/// A running floor server and the orders it serves.
pub struct Floor {
    server: Server,
    seeded: Arc<Seeded>,
    backend: Backend,
}

impl Floor {
    /// Starts `consign-floor` on `url` (seeded with `orders` by `baseline::seed_orders`).
    pub async fn start(
        url: &str,
        backend: Backend,
        orders: usize,
        full_orders: usize,
    ) -> Result<Floor, String> {
        let binary = server::sibling("consign-floor").map_err(|me| {
            format!(
                "no consign-floor binary next to {me}; build it with `cargo build --release -p consign-bench`"
            )
        })?;
        let server = server::start(
            &binary,
            url,
            0,
            None,
            &[("CONSIGN_FLOOR_ORDERS", orders.to_string())],
            // The floor writes no mail.
            &std::env::temp_dir(),
        )
        .await?;
        // The same request bodies as Consign's run; the floor maps each order id onto its orders.
        let lines = || ["1".to_owned(), "2".to_owned()];
        let seeded = Seeded {
            full_taken: std::sync::atomic::AtomicUsize::new(0),
            big: (0..orders).map(|_| lines()).collect(),
            full: (0..full_orders as i64)
                .map(|i| (FULL_BASE + i, lines()))
                .collect(),
        };
        Ok(Floor {
            server,
            seeded: Arc::new(seeded),
            backend,
        })
    }

    /// Drives the floor as Consign was driven until `limit`, every shipment captured at
    /// creation (the floor has no later capture).
    pub async fn drive(
        &self,
        client: &reqwest::Client,
        clients: usize,
        limit: Limit,
    ) -> Result<FloorRun, String> {
        let statements_before = self.server.statements_sent(client).await?;
        let commits_before = self.server.writer_commits(client).await?;
        let writer_cpu_before = self.server.writer_cpu_seconds();
        let cpu_before = self.server.cpu_seconds();
        let generator_before = crate::cpu::own_seconds();
        let started = Instant::now();
        let (tally, made) =
            load::drive(&self.server.base, self.seeded.clone(), clients, limit, 0, 0).await?;
        let elapsed = started.elapsed();
        let cpu = self.server.cpu_seconds() - cpu_before;
        let generator_cpu = crate::cpu::own_seconds() - generator_before;
        let statements = self.server.statements_sent(client).await? - statements_before;
        let commits = self.server.writer_commits(client).await? - commits_before;
        let writer =
            self.server
                .writer_cpu_seconds()
                .zip(writer_cpu_before)
                .map(|(after, before)| WriterFigures {
                    commits,
                    cpu_seconds: after - before,
                });
        let requests = tally.requests().max(1) as f64;
        let name = match self.backend {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        };
        let mut measured = Measured::of_load(
            format!("floor {name}, {clients} clients"),
            tally,
            made.shipments,
            elapsed,
            cpu,
        );
        measured.writer = writer;
        Ok(FloorRun {
            measured,
            cpu_ms_per_request: cpu * 1000.0 / requests,
            statements_per_request: statements as f64 / requests,
            generator_cpu_ms_per_request: generator_cpu * 1000.0 / requests,
        })
    }

    pub fn stop(self) {
        self.server.stop();
    }
}
