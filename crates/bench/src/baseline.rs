//! The database running the same durable work as Consign, two ways:
//!
//! - **ordinary**: the reserve and settle transactions written the ordinary way, a statement per
//!   round trip (`bench/pgbench/reserve_settle.sql` with pgbench on PostgreSQL; one writer
//!   committing each transaction on SQLite);
//! - **ceiling**: the same writes as one prepared statement per transaction, two commits per
//!   shipment (`bench/pgbench/ceiling.sql` with `pgbench -M prepared`); on SQLite one writer
//!   that commits groups of transactions together, as Consign's writer does.
//!
//! On PostgreSQL both also create the `--uncaptured` share uncaptured and complete it
//! (`*_complete.sql`), as SQLite's ceiling does; SQLite's ordinary writer and lockstep loop do
//! the captured flow only.
//!
//! SQLite runs WAL with synchronous = FULL, as the service.

use std::process::Command;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::Integer;

use crate::history::Raw;
use crate::report::Measured;

pub const SCRIPT: &str = include_str!("../../../bench/pgbench/reserve_settle.sql");
pub const CEILING: &str = include_str!("../../../bench/pgbench/ceiling.sql");
/// The flow of the share created uncaptured and completed later, each way.
pub const SCRIPT_COMPLETE: &str =
    include_str!("../../../bench/pgbench/reserve_settle_complete.sql");
pub const CEILING_COMPLETE: &str = include_str!("../../../bench/pgbench/ceiling_complete.sql");

/// Which baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The same transactions written the ordinary way.
    Ordinary,
    /// The same durable writes at the database's best: one prepared statement per transaction
    /// on PostgreSQL; on SQLite one writer committing what the clients queued, as Consign's
    /// writer does (`queued_writer`).
    Ceiling,
    /// SQLite only: one loop committing fixed groups of as many shipments as there are
    /// clients in lockstep, every reserve of a group together and then every settle. No
    /// service can form such groups: each of its clients waits for its reserve's commit before
    /// its settle, so the clients split into those reserving and those settling (the ceiling
    /// above). Kept for comparison with earlier figures.
    Lockstep,
}

/// Orders 1..=n with one line each (line id = order id) that never runs out.
pub fn seed_orders(conn: &mut Raw, n: usize) -> Result<(), String> {
    let series =
        format!("WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < {n})");
    conn.exec(&format!(
        "{series} INSERT INTO orders (id, currency, customer_id, email, first_name, last_name, address, zipcode, city, country, shipping_fee, payment_provider, payment_reference, authorized, committed, shipping_fee_committed, next_shipment_number, created_at, updated_at) \
         SELECT g, 'SEK', 1, 'b@example.com', 'B', 'B', '', '', '', '', 0, 'sandbox', 'auth', 1000000000000, 0, 0, 1, 0, 0 FROM s"
    ))?;
    conn.exec(&format!(
        "{series} INSERT INTO order_lines (order_id, line_id, position, sku, name, unit_price, tax_rate, quantity, allocated, in_capture) \
         SELECT g, g, 0, 'SKU', 'Item', 1000, 2500, 1000000000, 0, 0 FROM s"
    ))
}

/// pgbench with `clients` (on `threads` threads) on `url` for `duration`, running the `kind`
/// scripts: a shipment captured at creation, and for `uncaptured_percent` of the shipments (as
/// Consign's load makes them) one created uncaptured and completed.
pub fn pgbench(
    url: &str,
    kind: Kind,
    clients: usize,
    threads: usize,
    duration: Duration,
    orders: usize,
    uncaptured_percent: u32,
) -> Result<Measured, String> {
    let dir = std::env::temp_dir().join(format!("consign-pgbench-{}-{kind:?}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let (captured, completed, mode, label) = match kind {
        Kind::Ordinary => (SCRIPT, SCRIPT_COMPLETE, "simple", "pgbench ordinary"),
        Kind::Ceiling | Kind::Lockstep => {
            (CEILING, CEILING_COMPLETE, "prepared", "pgbench ceiling")
        }
    };
    // pgbench picks a script per run in proportion to its weight (`-f file@weight`).
    let mut scripts = Vec::new();
    let uncaptured = uncaptured_percent.min(100);
    for (name, text, weight) in [
        ("captured.sql", captured, 100 - uncaptured),
        ("completed.sql", completed, uncaptured),
    ] {
        if weight > 0 {
            let path = dir.join(name);
            std::fs::write(&path, text).map_err(|e| e.to_string())?;
            scripts.extend(["-f".to_string(), format!("{}@{weight}", path.display())]);
        }
    }
    let prefix = dir.join("log");
    let cpu_before = crate::cpu::children_seconds();
    let output = Command::new("pgbench")
        .args([
            "-n",
            "-M",
            mode,
            "-c",
            &clients.to_string(),
            "-j",
            &threads.to_string(),
            "-T",
            &duration.as_secs().to_string(),
        ])
        .args(["-D", &format!("orders={orders}")])
        .args(&scripts)
        .args(["-l", &format!("--log-prefix={}", prefix.display()), url])
        .output()
        .map_err(|e| format!("pgbench: {e}"))?;
    let pgbench_cpu = crate::cpu::children_seconds() - cpu_before;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "pgbench failed: {}{}",
            stdout,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let mut latencies = Vec::new();
    for entry in std::fs::read_dir(&dir)
        .map_err(|e| e.to_string())?
        .flatten()
    {
        if entry.file_name().to_string_lossy().starts_with("log") {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            latencies.extend(
                text.lines()
                    .filter_map(|l| l.split_whitespace().nth(2)?.parse::<u64>().ok()),
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Measured::of_baseline(
        format!("{label}, {clients} clients"),
        latencies,
        duration,
        pgbench_cpu,
    ))
}

#[derive(QueryableByName)]
struct Next {
    #[diesel(sql_type = Integer)]
    n: i32,
}

/// One writer on SQLite doing the same two transactions for `duration`: each committed on its
/// own (ordinary), or `group` of them committed together in savepoints (lockstep).
pub fn sqlite_single_writer(
    path: &str,
    kind: Kind,
    group: usize,
    duration: Duration,
    orders: usize,
) -> Result<Measured, String> {
    let group = match kind {
        Kind::Ordinary => 1,
        Kind::Ceiling | Kind::Lockstep => group.max(1),
    };
    let mut conn = SqliteConnection::establish(path).map_err(|e| e.to_string())?;
    conn.batch_execute(
        // As Consign's writer: its savepoints' sub-journal in one block of memory (the
        // build's SQLITE_STMTJRNL_SPILL), its checkpoint interval.
        &format!(
            "PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
             PRAGMA wal_autocheckpoint = {};",
            consign_db::WAL_AUTOCHECKPOINT_PAGES
        ),
    )
    .map_err(|e| e.to_string())?;
    let mut latencies = Vec::new();
    let mut invoice: i64 = diesel::sql_query(
        "SELECT CAST(value AS INTEGER) AS n FROM counters WHERE name = 'invoice_number'",
    )
    .get_result::<Next>(&mut conn)
    .map(|r| i64::from(r.n))
    .map_err(|e| e.to_string())?;
    let started = Instant::now();
    let cpu_before = crate::cpu::own_seconds();
    let mut seed = 88172645463325252u64;
    while started.elapsed() < duration {
        let oids: Vec<i64> = (0..group)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                1 + (seed % orders as u64) as i64
            })
            .collect();
        let t = Instant::now();
        // Reserve: one commit for the group, each shipment in its own savepoint.
        let numbers = conn
            .transaction::<_, diesel::result::Error, _>(|c| {
                oids.iter()
                    .map(|&oid| c.transaction(|c| reserve(c, oid)))
                    .collect::<Result<Vec<i32>, _>>()
            })
            .map_err(|e| e.to_string())?;
        // Settle: one commit for the group.
        conn.transaction::<_, diesel::result::Error, _>(|c| {
            for (&oid, &n) in oids.iter().zip(&numbers) {
                invoice += 1;
                let number = invoice;
                c.transaction(|c| settle(c, oid, n, number))?;
            }
            Ok(())
        })
        .map_err(|e| e.to_string())?;
        let micros = t.elapsed().as_micros() as u64;
        latencies.extend(std::iter::repeat_n(micros, oids.len()));
    }
    let elapsed = started.elapsed();
    let writer_cpu = crate::cpu::own_seconds() - cpu_before;
    let label = match kind {
        Kind::Ordinary => "SQLite ordinary: a commit per transaction".into(),
        Kind::Ceiling | Kind::Lockstep => format!("SQLite lockstep: groups of {group} per commit"),
    };
    Ok(Measured::of_baseline(label, latencies, elapsed, writer_cpu))
}

/// The reserve transaction's statements for one shipment of order `oid`; answers its number.
fn reserve(c: &mut SqliteConnection, oid: i64) -> Result<i32, diesel::result::Error> {
    c.batch_execute(&format!("UPDATE orders SET next_shipment_number = next_shipment_number + 1, committed = committed + 1000, updated_at = 1 WHERE id = {oid}"))?;
    let n = diesel::sql_query(format!(
        "SELECT next_shipment_number - 1 AS n FROM orders WHERE id = {oid}"
    ))
    .get_result::<Next>(c)?
    .n;
    c.batch_execute(&format!(
        "SELECT line_id, quantity, allocated FROM order_lines WHERE order_id = {oid} ORDER BY position; \
         INSERT INTO shipments (order_id, number, state, gtg, shipped, carrier, service, packages, tracking, return_slip_tracking, capture_amount, carries_shipping_fee, created_at, updated_at, needs_review, internal_comment) VALUES ({oid}, {n}, 'pending', 0, 0, '', '', 0, '', '', 1000, 0, 0, 0, 0, ''); \
         INSERT INTO shipment_lines (order_id, number, line_id, quantity) VALUES ({oid}, {n}, {oid}, 1); \
         UPDATE order_lines SET allocated = allocated + 1, in_capture = in_capture + 1 WHERE order_id = {oid} AND line_id = {oid} AND allocated + 1 <= quantity; \
         INSERT INTO capture_attempts (order_id, number, attempt, idempotency_key, amount, final_capture, state, created_at, updated_at, passes, void_on_decline) VALUES ({oid}, {n}, 1, 'bench-{oid}-{n}', 1000, 0, 'pending', 0, 0, 0, 1);"
    ))?;
    Ok(n)
}

/// The settle transaction's statements for shipment `n` of order `oid`, invoice `invoice`.
fn settle(
    c: &mut SqliteConnection,
    oid: i64,
    n: i32,
    invoice: i64,
) -> Result<(), diesel::result::Error> {
    c.batch_execute(&format!(
        "UPDATE capture_attempts SET state = 'succeeded', provider_reference = 'ref', updated_at = 1 WHERE order_id = {oid} AND idempotency_key = 'bench-{oid}-{n}' AND state IN ('pending', 'unknown', 'needs_review'); \
         UPDATE shipments SET state = 'captured', capture_reference = 'ref', needs_review = 0, updated_at = 1 WHERE order_id = {oid} AND number = {n} AND state = 'pending'; \
         UPDATE counters SET value = value + 1 WHERE name = 'invoice_number'; \
         INSERT INTO invoices (number, order_id, shipment_number, amount, issued_at) VALUES ({invoice}, {oid}, {n}, 1000, 0);"
    ))
}
