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

use std::sync::{mpsc, Arc};
use std::time::Instant;

use crate::load::{Limit, Stop};
use crate::report::{Measured, WriterFigures};
use crate::sqlite_writer::{self, Counters, Job, Writer};
use diesel::prelude::*;

/// Queues `work` and waits for its commit.
fn call(
    writer: &mpsc::Sender<Job>,
    more_follows: bool,
    work: impl FnOnce(&mut SqliteConnection, &mut Counters) -> QueryResult<i64> + Send + 'static,
) -> Result<i64, String> {
    let (reply, answer) = mpsc::channel();
    sqlite_writer::queue(writer, more_follows, work, move |done| {
        let _ = reply.send(done);
    })?;
    answer
        .recv()
        .map_err(|_| "the writer stopped".to_string())?
}

/// `clients` threads shipping from orders 1..=`orders` through one writer until `limit`.
pub fn run(
    path: &str,
    clients: usize,
    limit: Limit,
    orders: usize,
    uncaptured_percent: u32,
) -> Result<Measured, String> {
    let Writer {
        queue: writer,
        commits,
        thread: server,
    } = sqlite_writer::start(path, "ceiling-writer")?;
    let cpu_before = crate::cpu::own_seconds();
    let started = Instant::now();
    let stop = Arc::new(Stop::new(limit));
    let threads: Vec<_> = (0..clients)
        .map(|c| {
            let (writer, stop) = (writer.clone(), stop.clone());
            std::thread::spawn(move || {
                client(&writer, c as u64, &stop, orders as u64, uncaptured_percent)
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
    let writer = WriterFigures {
        cpu_seconds: server
            .join()
            .map_err(|_| "the writer thread panicked".to_string())?,
        commits: commits.load(std::sync::atomic::Ordering::Relaxed),
    };
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

/// One client: shipments until `stop`, each its writes in turn; answers their latencies
/// (microseconds, a shipment from its reserve to its settle).
fn client(
    writer: &mpsc::Sender<Job>,
    c: u64,
    stop: &Stop,
    orders: u64,
    uncaptured_percent: u32,
) -> Result<Vec<u64>, String> {
    let mut seed = 0x9e37_79b9_7f4a_7c15 ^ (c + 1).wrapping_mul(0x2545_f491_4f6c_dd1d);
    let mut latencies = Vec::new();
    while stop.another() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let oid = 1 + (seed % orders) as i64;
        let captured = ((seed >> 32) % 100) as u32 >= uncaptured_percent;
        let t = Instant::now();
        let n = call(writer, captured, move |c, _| {
            sqlite_writer::reserve(c, oid, captured)
        })?;
        if captured {
            call(writer, false, move |c, k| {
                sqlite_writer::settle(c, k, oid, n, false)
            })?;
        } else {
            call(writer, true, move |c, _| {
                sqlite_writer::begin_capture(c, oid, n)
            })?;
            call(writer, false, move |c, k| {
                sqlite_writer::settle(c, k, oid, n, true)
            })?;
        }
        latencies.push(t.elapsed().as_micros() as u64);
    }
    Ok(latencies)
}
