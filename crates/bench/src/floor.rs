//! `--floor` (PostgreSQL): `consign-floor`, a server doing only what no implementation of
//! create-shipment can skip, driven by the same clients on a database prepared as the
//! baselines' are, so Consign's server CPU per request can be read against a floor measured in
//! the same run rather than estimated from other programs.

use std::sync::Arc;
use std::time::Instant;

use crate::load::{self, Seeded, FULL_BASE};
use crate::report::Measured;
use crate::server;

/// The floor's run: its figures as a row, and per request what the table does not show.
pub struct FloorRun {
    pub measured: Measured,
    /// The floor server's CPU per request, ms.
    pub cpu_ms_per_request: f64,
    /// Statements it sent per request (2 when every request shipped).
    pub statements_per_request: f64,
    /// The load generator's CPU per request, ms.
    pub generator_cpu_ms_per_request: f64,
}

/// Starts `consign-floor` on `url` (seeded with `orders` by `baseline::seed_orders`), drives it
/// as Consign was driven (every shipment captured at creation: the floor has no later capture)
/// and stops it.
pub async fn run(
    client: &reqwest::Client,
    url: &str,
    orders: usize,
    full_orders: usize,
    clients: usize,
    duration: std::time::Duration,
) -> Result<FloorRun, String> {
    let binary = server::sibling("consign-floor").map_err(|me| {
        format!(
            "no consign-floor binary next to {me}; build it with `cargo build --release -p consign-bench`"
        )
    })?;
    let floor = server::start(
        &binary,
        url,
        0,
        None,
        &[("CONSIGN_FLOOR_ORDERS", orders.to_string())],
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
    let statements_before = floor.statements_sent(client).await?;
    let cpu_before = floor.cpu_seconds();
    let generator_before = crate::cpu::own_seconds();
    let started = Instant::now();
    let (tally, made) = load::drive(&floor.base, Arc::new(seeded), clients, duration, 0, 0).await?;
    let elapsed = started.elapsed();
    let cpu = floor.cpu_seconds() - cpu_before;
    let generator_cpu = crate::cpu::own_seconds() - generator_before;
    let statements = floor.statements_sent(client).await? - statements_before;
    floor.stop();
    let requests = tally.requests().max(1) as f64;
    Ok(FloorRun {
        measured: Measured::of_load(
            format!("floor PostgreSQL, {clients} clients"),
            tally,
            made.shipments,
            elapsed,
            cpu,
        ),
        cpu_ms_per_request: cpu * 1000.0 / requests,
        statements_per_request: statements as f64 / requests,
        generator_cpu_ms_per_request: generator_cpu * 1000.0 / requests,
    })
}
