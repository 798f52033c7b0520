//! SQLite's ceiling as Consign commits: one writer thread that commits what is queued.
//!
//! Consign's clients each wait for a shipment's reserve to be committed before its capture, and
//! for its settle before the answer, and its writer commits whatever writes are queued when it
//! looks, each in a savepoint of one transaction. Here `clients` threads do the same durable
//! work in the same order (a shipment is two writes, each answered after the commit that holds
//! it) against one writer thread that groups what is queued the same way: the database's limit
//! for Consign's way of committing, without HTTP, JSON or the domain.
//!
//! A share of the shipments (`uncaptured_percent`, as the load's) is created uncaptured and
//! completed: the reserve without capture, the capture's start, and a settle that also applies
//! the completion and queues the confirmation. Consign claims confirmations and marks them sent
//! a pass at a time (up to 20 in one statement each); both are left out, so this does a little
//! less than Consign.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::BigInt;

use crate::prepared::{sql, stmt, Stmt};
use crate::report::{Measured, WriterFigures};

/// The most writes one commit takes, as Consign's writer.
const MAX_GROUP: usize = 64;

/// What the writer keeps between writes: the next invoice and outbox numbers.
struct Counters {
    invoice: i64,
    outbox: i64,
}

type Work = Box<dyn FnOnce(&mut SqliteConnection, &mut Counters) -> QueryResult<i64> + Send>;

/// A write and where its answer goes once it is committed.
struct Job {
    work: Work,
    /// Its client writes again at once (a reserve with capture, a capture's start): answered
    /// before the rest of its group, as Consign's writer answers them.
    more_follows: bool,
    reply: mpsc::Sender<Result<i64, String>>,
}

#[derive(QueryableByName)]
struct Value {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn counter(conn: &mut SqliteConnection, name: &str) -> Result<i64, String> {
    diesel::sql_query(format!(
        "SELECT CAST(value AS INTEGER) AS n FROM counters WHERE name = '{name}'"
    ))
    .get_result::<Value>(conn)
    .map(|v| v.n)
    .map_err(|e| e.to_string())
}

/// The writer: takes every write queued when it looks (up to [`MAX_GROUP`]), runs each in a
/// savepoint of one transaction, commits, then answers them. Answers its commits and CPU.
fn serve(
    mut conn: SqliteConnection,
    mut counters: Counters,
    queue: mpsc::Receiver<Job>,
) -> WriterFigures {
    let cpu_before = crate::cpu::this_thread_seconds();
    let mut commits = 0;
    while let Ok(first) = queue.recv() {
        commits += 1;
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let mut replies = Vec::with_capacity(group.len());
        let committed = conn.transaction::<_, diesel::result::Error, _>(|c| {
            // The writes queued while the group runs join it, as they do Consign's.
            while !group.is_empty() {
                for job in group.drain(..) {
                    let done = c.transaction(|c| (job.work)(c, &mut counters));
                    replies.push((job.more_follows, job.reply, done.map_err(|e| e.to_string())));
                }
                while replies.len() + group.len() < MAX_GROUP {
                    match queue.try_recv() {
                        Ok(job) => group.push(job),
                        Err(_) => break,
                    }
                }
            }
            Ok(())
        });
        replies.sort_by_key(|(more_follows, _, _)| !*more_follows);
        for (_, reply, done) in replies {
            let answer = match &committed {
                Ok(()) => done,
                Err(e) => Err(e.to_string()),
            };
            let _ = reply.send(answer);
        }
    }
    WriterFigures {
        commits,
        cpu_seconds: crate::cpu::this_thread_seconds() - cpu_before,
    }
}

/// Queues `work` and waits for its commit.
fn call(
    writer: &mpsc::Sender<Job>,
    more_follows: bool,
    work: impl FnOnce(&mut SqliteConnection, &mut Counters) -> QueryResult<i64> + Send + 'static,
) -> Result<i64, String> {
    let (reply, answer) = mpsc::channel();
    writer
        .send(Job {
            work: Box::new(work),
            more_follows,
            reply,
        })
        .map_err(|_| "the writer stopped".to_string())?;
    answer
        .recv()
        .map_err(|_| "the writer stopped".to_string())?
}

/// `clients` threads shipping from orders 1..=`orders` for `duration` through one writer.
pub fn run(
    path: &str,
    clients: usize,
    duration: Duration,
    orders: usize,
    uncaptured_percent: u32,
) -> Result<Measured, String> {
    let mut conn = SqliteConnection::establish(path).map_err(|e| e.to_string())?;
    conn.batch_execute(&format!(
        // As Consign's writer: WAL, a commit durable before it is answered, its savepoints'
        // sub-journal in one block of memory (the build's SQLITE_STMTJRNL_SPILL), its checkpoint
        // interval.
        "PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
         PRAGMA foreign_keys = ON; PRAGMA wal_autocheckpoint = {};",
        consign_db::WAL_AUTOCHECKPOINT_PAGES
    ))
    .map_err(|e| e.to_string())?;
    let counters = Counters {
        invoice: counter(&mut conn, "invoice_number")?,
        outbox: counter(&mut conn, "outbox_id")?,
    };
    let (writer, queue) = mpsc::channel::<Job>();
    let cpu_before = crate::cpu::own_seconds();
    let server = std::thread::Builder::new()
        .name("ceiling-writer".into())
        .spawn(move || serve(conn, counters, queue))
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    let deadline = started + duration;
    let threads: Vec<_> = (0..clients)
        .map(|c| {
            let writer = writer.clone();
            std::thread::spawn(move || {
                client(
                    &writer,
                    c as u64,
                    deadline,
                    orders as u64,
                    uncaptured_percent,
                )
            })
        })
        .collect();
    drop(writer);
    let mut latencies = Vec::new();
    for thread in threads {
        latencies.extend(
            thread
                .join()
                .map_err(|_| "a client thread panicked".to_string())??,
        );
    }
    let elapsed = started.elapsed();
    let writer = server
        .join()
        .map_err(|_| "the writer thread panicked".to_string())?;
    let cpu = crate::cpu::own_seconds() - cpu_before;
    let mut measured = Measured::of_baseline(
        format!("SQLite ceiling: one writer, what {clients} clients queued per commit"),
        latencies,
        elapsed,
        cpu,
    );
    measured.writer = Some(writer);
    Ok(measured)
}

/// One client: shipments until `deadline`, each its writes in turn; answers their latencies
/// (microseconds, a shipment from its reserve to its settle).
fn client(
    writer: &mpsc::Sender<Job>,
    c: u64,
    deadline: Instant,
    orders: u64,
    uncaptured_percent: u32,
) -> Result<Vec<u64>, String> {
    let mut seed = 0x9e37_79b9_7f4a_7c15 ^ (c + 1).wrapping_mul(0x2545_f491_4f6c_dd1d);
    let mut latencies = Vec::new();
    while Instant::now() < deadline {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let oid = 1 + (seed % orders) as i64;
        let captured = ((seed >> 32) % 100) as u32 >= uncaptured_percent;
        let t = Instant::now();
        let n = call(writer, captured, move |c, _| reserve(c, oid, captured))?;
        if captured {
            call(writer, false, move |c, k| settle(c, k, oid, n, false))?;
        } else {
            call(writer, true, move |c, _| begin_capture(c, oid, n))?;
            call(writer, false, move |c, k| settle(c, k, oid, n, true))?;
        }
        latencies.push(t.elapsed().as_micros() as u64);
    }
    Ok(latencies)
}

sql!(
    ReserveOrder,
    "UPDATE orders SET next_shipment_number = next_shipment_number + 1, \
     committed = committed + ?, updated_at = 1, version = version + 1 WHERE id = ? \
     RETURNING next_shipment_number - 1 AS n"
);
sql!(
    ReadLines,
    "SELECT line_id AS n FROM order_lines WHERE order_id = ? ORDER BY position"
);
sql!(
    InsertShipment,
    "INSERT INTO shipments (order_id, number, state, gtg, shipped, carrier, service, packages, \
     tracking, return_slip_tracking, capture_amount, carries_shipping_fee, created_at, \
     updated_at, needs_review, internal_comment) VALUES (?, ?, CASE WHEN ? = 1 THEN 'pending' \
     ELSE 'uncaptured' END, 0, 0, '', '', 0, '', '', NULLIF(?, 0), 0, 0, 0, 0, '')"
);
sql!(
    InsertLine,
    "INSERT INTO shipment_lines (order_id, number, line_id, quantity) VALUES (?, ?, ?, 1)"
);
sql!(
    AllocateLine,
    "UPDATE order_lines SET allocated = allocated + 1, in_capture = in_capture + ? \
     WHERE order_id = ? AND line_id = ? AND allocated + 1 <= quantity"
);
sql!(
    InsertAttempt,
    "INSERT INTO capture_attempts (order_id, number, attempt, idempotency_key, amount, \
     final_capture, state, created_at, updated_at, passes, void_on_decline, on_capture) \
     VALUES (?, ?, 1, 'bench-' || ? || '-' || ?, 1000, 0, 'pending', 0, 0, 0, ?, \
     CASE WHEN ? = 1 THEN 'tracking=T1' END)"
);
sql!(
    StartCapture,
    "UPDATE shipments SET state = 'pending', capture_amount = 1000, updated_at = 1 \
     WHERE order_id = ? AND number = ? AND state = 'uncaptured'"
);
sql!(
    LineInCapture,
    "UPDATE order_lines SET in_capture = in_capture + 1 \
     WHERE order_id = ? AND line_id = ? AND in_capture + 1 <= allocated"
);
sql!(
    CommitOrder,
    "UPDATE orders SET committed = committed + 1000, version = version + 1 WHERE id = ?"
);
sql!(
    SettleAttempt,
    "UPDATE capture_attempts SET state = 'succeeded', provider_reference = 'ref', \
     updated_at = 1 WHERE order_id = ? AND idempotency_key = 'bench-' || ? || '-' || ? \
     AND state <> 'succeeded' AND state <> 'failed'"
);
sql!(
    CaptureShipment,
    "UPDATE shipments SET state = 'captured', capture_reference = 'ref', needs_review = 0, \
     shipped = ?, tracking = CASE WHEN ? = 1 THEN 'T1' ELSE '' END, updated_at = 1 \
     WHERE order_id = ? AND number = ? AND state = 'pending'"
);
sql!(
    BumpInvoice,
    "UPDATE counters SET value = value + 1 WHERE name = 'invoice_number'"
);
sql!(
    InsertInvoice,
    "INSERT INTO invoices (number, order_id, shipment_number, amount, issued_at) \
     VALUES (?, ?, ?, 1000, 0)"
);
sql!(
    BumpOutbox,
    "UPDATE counters SET value = value + 1 WHERE name = 'outbox_id'"
);
sql!(
    QueueConfirmation,
    "INSERT INTO outbox (id, order_id, number, kind, state, attempts, due_at, created_at) \
     VALUES (?, ?, ?, 'shipping_confirmation', 'pending', 0, 0, 0)"
);

/// The reserve: the order's counters, the shipment, its line, the line's allocation and, when
/// captured, the pending attempt; answers the shipment's number.
/// Runs a write that must change exactly one row: a guard that did not hold would make the
/// ceiling do less work than it claims, unnoticed.
fn once<S: crate::prepared::Sql>(c: &mut SqliteConnection, write: Stmt<S>) -> QueryResult<()> {
    match write.execute(c)? {
        1 => Ok(()),
        n => Err(diesel::result::Error::QueryBuilderError(
            format!("{n} rows changed by {}", S::SQL).into(),
        )),
    }
}

fn reserve(c: &mut SqliteConnection, oid: i64, captured: bool) -> QueryResult<i64> {
    let captured = i64::from(captured);
    let n = stmt::<ReserveOrder>(vec![1000 * captured, oid])
        .get_result::<Value>(c)?
        .n;
    stmt::<ReadLines>(vec![oid]).load::<Value>(c)?;
    once(
        c,
        stmt::<InsertShipment>(vec![oid, n, captured, 1000 * captured]),
    )?;
    once(c, stmt::<InsertLine>(vec![oid, n, oid]))?;
    once(c, stmt::<AllocateLine>(vec![captured, oid, oid]))?;
    if captured == 1 {
        once(c, stmt::<InsertAttempt>(vec![oid, n, oid, n, 1, 0]))?;
    }
    Ok(n)
}

/// A later capture's start: the shipment pending with its amount, the line in capture, the
/// order's committed amount, the attempt carrying the completion that waits for it.
fn begin_capture(c: &mut SqliteConnection, oid: i64, n: i64) -> QueryResult<i64> {
    once(c, stmt::<StartCapture>(vec![oid, n]))?;
    once(c, stmt::<LineInCapture>(vec![oid, oid]))?;
    once(c, stmt::<CommitOrder>(vec![oid]))?;
    once(c, stmt::<InsertAttempt>(vec![oid, n, oid, n, 0, 1]))?;
    Ok(n)
}

/// The settle of a capture that succeeded: the attempt, the shipment captured (and, for a
/// completion, shipped with its tracking and its confirmation queued), the invoice. Answers the
/// queued message's id (0 when none).
fn settle(
    c: &mut SqliteConnection,
    k: &mut Counters,
    oid: i64,
    n: i64,
    completes: bool,
) -> QueryResult<i64> {
    let completes = i64::from(completes);
    once(c, stmt::<SettleAttempt>(vec![oid, oid, n]))?;
    once(
        c,
        stmt::<CaptureShipment>(vec![completes, completes, oid, n]),
    )?;
    k.invoice += 1;
    once(c, stmt::<BumpInvoice>(vec![]))?;
    once(c, stmt::<InsertInvoice>(vec![k.invoice, oid, n]))?;
    if completes == 0 {
        return Ok(0);
    }
    k.outbox += 1;
    once(c, stmt::<BumpOutbox>(vec![]))?;
    once(c, stmt::<QueueConfirmation>(vec![k.outbox, oid, n]))?;
    Ok(k.outbox)
}
