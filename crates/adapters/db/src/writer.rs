//! SQLite's single writer: one thread owns the write connection and commits queued writes in
//! groups.
//!
//! SQLite lets one connection write at a time, and with `synchronous = FULL` every commit is an
//! fsync. Handing each write to the blocking pool in turn left the write lock idle while the
//! next thread woke up, and paid one fsync per transaction. Here the writer thread takes every
//! write that is queued when it looks (up to [`MAX_GROUP`]), runs each in a savepoint of one
//! transaction and commits them together: one fsync for the group, and no answer before the
//! commit that makes it durable. A write that fails rolls back its own savepoint only. If the
//! group's commit fails, each write of the group runs again alone, so one write's trouble never
//! becomes another's.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::Connection;
use tokio::sync::oneshot;

use crate::connection::{AnyConnection, Manager};
use crate::error::DbError;

/// The most writes committed together: bounds the time the first of them waits for the others.
const MAX_GROUP: usize = 64;

/// Queues writes for the writer thread. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Writer {
    jobs: mpsc::Sender<Box<dyn Job>>,
    /// Writes queued and not yet taken (shared with the pool's waiting count, for metrics).
    waiting: Arc<AtomicU32>,
    wait_limit: Duration,
}

impl Writer {
    /// Starts the writer thread on a connection of its own.
    pub(crate) fn start(
        manager: Manager,
        waiting: Arc<AtomicU32>,
        wait_limit: Duration,
    ) -> Result<Writer, DbError> {
        let conn = manager
            .open()
            .map_err(|e| DbError::Connect(e.to_string()))?;
        let (jobs, queue) = mpsc::channel();
        let taken = waiting.clone();
        std::thread::Builder::new()
            .name("consign-sqlite-writer".into())
            .spawn(move || serve(conn, &manager, &queue, &taken))
            .map_err(|e| DbError::Task(e.to_string()))?;
        Ok(Writer {
            jobs,
            waiting,
            wait_limit,
        })
    }

    /// Runs `work` on the writer thread and answers once its write is committed. A write still
    /// queued after the wait limit (or whose caller has gone) is not run.
    pub(crate) async fn run<T, F>(&self, work: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: Fn(&mut AnyConnection) -> Result<T, DbError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Queued {
            work,
            result: None,
            reply,
            deadline: Instant::now() + self.wait_limit,
            wait_limit: self.wait_limit,
        };
        self.waiting.fetch_add(1, Ordering::Relaxed);
        if self.jobs.send(Box::new(job)).is_err() {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            return Err(DbError::Task("the SQLite writer has stopped".into()));
        }
        answer
            .await
            .map_err(|_| DbError::Task("the SQLite writer dropped a write".into()))?
    }
}

/// One queued write, its result until the commit, and where the answer goes.
trait Job: Send {
    /// Its caller has gone or waited too long: it is answered without being run.
    fn expired(&self, now: Instant) -> bool;
    /// Runs the write (again on transient failures) and keeps the result.
    fn run(&mut self, conn: &mut AnyConnection);
    /// Sends the kept result: the write is committed, or it failed and was rolled back.
    fn answer(self: Box<Self>);
    /// Sends `error` instead of a result.
    fn fail(self: Box<Self>, error: DbError);
    /// The error for a write that was not run in time.
    fn too_late(&self) -> DbError;
}

struct Queued<T, F> {
    work: F,
    result: Option<Result<T, DbError>>,
    reply: oneshot::Sender<Result<T, DbError>>,
    deadline: Instant,
    wait_limit: Duration,
}

impl<T, F> Job for Queued<T, F>
where
    T: Send + 'static,
    F: Fn(&mut AnyConnection) -> Result<T, DbError> + Send + 'static,
{
    fn expired(&self, now: Instant) -> bool {
        self.reply.is_closed() || now > self.deadline
    }

    fn run(&mut self, conn: &mut AnyConnection) {
        self.result = Some(crate::retry::with_retries(&self.work, conn));
    }

    fn answer(self: Box<Self>) {
        let result = self
            .result
            .unwrap_or_else(|| Err(DbError::Task("a write was answered before it ran".into())));
        let _ = self.reply.send(result);
    }

    fn fail(self: Box<Self>, error: DbError) {
        let _ = self.reply.send(Err(error));
    }

    fn too_late(&self) -> DbError {
        DbError::PoolTimeout(format!(
            "no turn at the database within {:?}",
            self.wait_limit
        ))
    }
}

/// The writer thread: until every [`Writer`] is dropped, takes what is queued and commits it.
fn serve(
    mut conn: AnyConnection,
    manager: &Manager,
    queue: &mpsc::Receiver<Box<dyn Job>>,
    waiting: &AtomicU32,
) {
    while let Ok(first) = queue.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        waiting.fetch_sub(group.len() as u32, Ordering::Relaxed);
        let now = Instant::now();
        let (live, late): (Vec<_>, Vec<_>) = group.into_iter().partition(|j| !j.expired(now));
        for job in late {
            let error = job.too_late();
            job.fail(error);
        }
        if live.len() == 1 {
            for job in live {
                run_alone(&mut conn, manager, job);
            }
        } else if !live.is_empty() {
            run_group(&mut conn, manager, live);
        }
    }
}

/// One write in its own transaction (the work opens it).
fn run_alone(conn: &mut AnyConnection, manager: &Manager, mut job: Box<dyn Job>) {
    match catch_unwind(AssertUnwindSafe(|| job.run(conn))) {
        Ok(()) => job.answer(),
        Err(_) => {
            reopen(conn, manager);
            job.fail(DbError::Task("a database write panicked".into()));
        }
    }
}

/// Several writes, each in a savepoint of one transaction, committed together.
fn run_group(conn: &mut AnyConnection, manager: &Manager, mut group: Vec<Box<dyn Job>>) {
    let committed = catch_unwind(AssertUnwindSafe(|| {
        conn.transaction::<_, diesel::result::Error, _>(|conn| {
            for job in group.iter_mut() {
                job.run(conn);
            }
            Ok(())
        })
    }));
    match committed {
        Ok(Ok(())) => group.into_iter().for_each(|job| job.answer()),
        Ok(Err(error)) => {
            tracing::warn!(%error, writes = group.len(), "group commit failed; running its writes one by one");
            for job in group {
                run_alone(conn, manager, job);
            }
        }
        Err(_) => {
            // A panic leaves the transaction half open: a new connection rolls it back. Which
            // write panicked is not known, so each runs again alone (the culprit panics alone).
            reopen(conn, manager);
            for job in group {
                run_alone(conn, manager, job);
            }
        }
    }
}

/// Replaces a connection left in an unknown state; dropping it rolls back what it had open.
fn reopen(conn: &mut AnyConnection, manager: &Manager) {
    loop {
        match manager.open() {
            Ok(fresh) => {
                *conn = fresh;
                return;
            }
            Err(error) => {
                tracing::error!(%error, "cannot reopen the SQLite write connection; retrying");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
}
