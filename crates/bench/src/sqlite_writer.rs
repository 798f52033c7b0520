//! SQLite's single writer as Consign's commits: one thread takes every write queued when it
//! looks, runs each in a savepoint of one transaction, commits, then answers them; and the
//! ceiling's writes for a shipment (its reserve, a later capture's start, its settle). Shared by
//! SQLite's ceiling (`queued_writer`, client threads calling it directly) and the floor server on
//! SQLite (`consign-floor`, HTTP workers calling it as Consign's do).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::BigInt;

use crate::prepared::{sql, stmt, Stmt};

/// The most writes one commit takes, as Consign's writer.
const MAX_GROUP: usize = 64;

/// What the writer keeps between writes: the next invoice and outbox numbers.
pub struct Counters {
    invoice: i64,
    outbox: i64,
}

pub type Work = Box<dyn FnOnce(&mut SqliteConnection, &mut Counters) -> QueryResult<i64> + Send>;

/// Where a write's answer goes once its commit is durable (or has failed).
pub type Reply = Box<dyn FnOnce(Result<i64, String>) + Send>;

/// A write and where its answer goes once it is committed.
pub struct Job {
    pub work: Work,
    /// Its caller writes again at once (a reserve with capture, a capture's start): answered
    /// before the rest of its group, as Consign's writer answers them.
    pub more_follows: bool,
    pub reply: Reply,
}

/// A running writer.
pub struct Writer {
    /// Where writes are queued; the writer stops once every sender is dropped.
    pub queue: mpsc::Sender<Job>,
    /// Its commits so far.
    pub commits: Arc<AtomicU64>,
    /// Its thread, which answers the CPU seconds it spent once it stops.
    pub thread: JoinHandle<f64>,
}

/// Queues `work` on `writer`; `reply` gets its answer once the commit that holds it is durable.
pub fn queue(
    writer: &mpsc::Sender<Job>,
    more_follows: bool,
    work: impl FnOnce(&mut SqliteConnection, &mut Counters) -> QueryResult<i64> + Send + 'static,
    reply: impl FnOnce(Result<i64, String>) + Send + 'static,
) -> Result<(), String> {
    writer
        .send(Job {
            work: Box::new(work),
            more_follows,
            reply: Box::new(reply),
        })
        .map_err(|_| "the writer stopped".to_string())
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

/// Opens `path` as Consign's writer opens its database and starts the writer on a thread named
/// `thread_name`.
pub fn start(path: &str, thread_name: &str) -> Result<Writer, String> {
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
    let (queue, jobs) = mpsc::channel::<Job>();
    let commits = Arc::new(AtomicU64::new(0));
    let counted = commits.clone();
    let thread = std::thread::Builder::new()
        .name(thread_name.into())
        .spawn(move || serve(conn, counters, jobs, &counted))
        .map_err(|e| e.to_string())?;
    Ok(Writer {
        queue,
        commits,
        thread,
    })
}

/// The writer: takes every write queued when it looks (up to [`MAX_GROUP`]), runs each in a
/// savepoint of one transaction, commits, then answers them. Answers its CPU seconds.
fn serve(
    mut conn: SqliteConnection,
    mut counters: Counters,
    queue: mpsc::Receiver<Job>,
    commits: &AtomicU64,
) -> f64 {
    let cpu_before = crate::cpu::this_thread_seconds();
    while let Ok(first) = queue.recv() {
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
        commits.fetch_add(1, Ordering::Relaxed);
        replies.sort_by_key(|(more_follows, _, _)| !*more_follows);
        for (_, reply, done) in replies {
            reply(match &committed {
                Ok(()) => done,
                Err(e) => Err(e.to_string()),
            });
        }
    }
    crate::cpu::this_thread_seconds() - cpu_before
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

/// The reserve: the order's counters, the shipment, its line, the line's allocation and, when
/// captured, the pending attempt; answers the shipment's number.
pub fn reserve(c: &mut SqliteConnection, oid: i64, captured: bool) -> QueryResult<i64> {
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
pub fn begin_capture(c: &mut SqliteConnection, oid: i64, n: i64) -> QueryResult<i64> {
    once(c, stmt::<StartCapture>(vec![oid, n]))?;
    once(c, stmt::<LineInCapture>(vec![oid, oid]))?;
    once(c, stmt::<CommitOrder>(vec![oid]))?;
    once(c, stmt::<InsertAttempt>(vec![oid, n, oid, n, 0, 1]))?;
    Ok(n)
}

/// The settle of a capture that succeeded: the attempt, the shipment captured (and, for a
/// completion, shipped with its tracking and its confirmation queued), the invoice. Answers the
/// queued message's id (0 when none).
pub fn settle(
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
