//! SQLite's single writer: one thread owns the write connection and commits queued writes in
//! groups.
//!
//! SQLite lets one connection write at a time, and with `synchronous = FULL` every commit is an
//! fsync. Handing each write to the blocking pool in turn left the write lock idle while the
//! next thread woke up, and paid one fsync per transaction. Here the writer thread takes every
//! write that is queued when it looks, and those queued while they run (up to [`MAX_GROUP`]),
//! runs each in a savepoint of one transaction and commits them together: one fsync for the
//! group, and no answer before the commit that makes it durable. A write that fails rolls back
//! its own savepoint only. If the group's commit fails, each write of the group runs again
//! alone, so one write's trouble never becomes another's.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::R2D2Connection;
use tokio::sync::oneshot;

use crate::connection::{AnyConnection, Manager};
use crate::error::DbError;

/// The most writes committed together: bounds the time the first of them waits for the others.
const MAX_GROUP: usize = 64;

/// Queues writes for the writer thread. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Writer {
    jobs: mpsc::Sender<Box<dyn Job>>,
    wait_limit: Duration,
    figures: Arc<Figures>,
}

impl Writer {
    /// Starts the writer thread on a connection of its own.
    pub(crate) fn start(
        manager: Manager,
        waiting: Arc<AtomicU32>,
        wait_limit: Duration,
    ) -> Result<Writer, DbError> {
        let conn = open(&manager)?;
        let (jobs, queue) = mpsc::channel();
        let figures = Arc::new(Figures {
            waiting,
            largest_group: AtomicUsize::new(0),
            commits: AtomicU64::new(0),
        });
        let shared = figures.clone();
        std::thread::Builder::new()
            .name("consign-sqlite-writer".into())
            .spawn(move || serve(conn, &manager, &queue, &shared))
            .map_err(|e| DbError::Task(e.to_string()))?;
        Ok(Writer {
            jobs,
            wait_limit,
            figures,
        })
    }

    /// The most writes one group has committed together so far.
    pub(crate) fn largest_group(&self) -> usize {
        self.figures.largest_group.load(Ordering::Relaxed)
    }

    /// Transactions committed (or tried) so far: with the writes answered, how many writes a
    /// commit holds on average.
    pub(crate) fn commits(&self) -> u64 {
        self.figures.commits.load(Ordering::Relaxed)
    }

    /// Runs `work` on the writer thread and answers once its write is committed. A write still
    /// queued after the wait limit (or whose caller has gone) is not run. `work` answers every
    /// failed statement with an error (it never goes on after one): the group it runs in learns
    /// from its error whether SQLite ended the group's transaction.
    pub(crate) async fn run<T, F>(&self, work: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: Fn(&mut AnyConnection) -> Result<T, DbError> + Send + 'static,
    {
        self.queue(work, false).await
    }

    /// [`Writer::run`] for a write whose caller writes again as soon as it is answered (a
    /// capture's start, before its settle): answered before the other writes of its group.
    pub(crate) async fn run_before_more<T, F>(&self, work: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: Fn(&mut AnyConnection) -> Result<T, DbError> + Send + 'static,
    {
        self.queue(work, true).await
    }

    /// Queues `work` and waits for its answer.
    async fn queue<T, F>(&self, work: F, more_follows: bool) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: Fn(&mut AnyConnection) -> Result<T, DbError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Queued {
            work,
            more_follows,
            result: None,
            reply,
            deadline: Instant::now() + self.wait_limit,
            wait_limit: self.wait_limit,
        };
        self.figures.waiting.fetch_add(1, Ordering::Relaxed);
        if self.jobs.send(Box::new(job)).is_err() {
            self.figures.waiting.fetch_sub(1, Ordering::Relaxed);
            return Err(DbError::Stopped("the SQLite writer has stopped".into()));
        }
        answer
            .await
            .map_err(|_| DbError::Stopped("the SQLite writer dropped a write".into()))?
    }
}

/// One queued write, its result until the commit, and where the answer goes.
trait Job: Send {
    /// Its caller has gone or waited too long: it is answered without being run.
    fn expired(&self, now: Instant) -> bool;
    /// Runs the write and keeps the result; alone, again after transient failures (in a group a
    /// retry would meet the same lock inside the same transaction).
    fn run(&mut self, conn: &mut AnyConnection, alone: bool);
    /// Its caller writes again as soon as it is answered.
    fn more_follows(&self) -> bool;
    /// Its kept result is a failure.
    fn failed(&self) -> bool;
    /// Its kept result is a failure that may pass when it runs again alone.
    fn failed_transiently(&self) -> bool;
    /// Sends the kept result: the write is committed, or it failed and was rolled back.
    fn answer(self: Box<Self>);
    /// Sends `error` instead of a result.
    fn fail(self: Box<Self>, error: DbError);
    /// The error for a write that was not run in time.
    fn too_late(&self) -> DbError;
}

struct Queued<T, F> {
    work: F,
    more_follows: bool,
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

    fn run(&mut self, conn: &mut AnyConnection, alone: bool) {
        self.result = Some(if alone {
            crate::retry::with_retries(&self.work, conn)
        } else {
            (self.work)(conn)
        });
    }

    fn more_follows(&self) -> bool {
        self.more_follows
    }

    fn failed(&self) -> bool {
        matches!(&self.result, Some(Err(_)))
    }

    fn failed_transiently(&self) -> bool {
        matches!(&self.result, Some(Err(e)) if e.is_transient())
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

/// What the writer thread shares with its [`Writer`]s.
struct Figures {
    /// Writes queued and not yet taken (shared with the pool's waiting count, for metrics).
    waiting: Arc<AtomicU32>,
    /// The most writes one group has committed together (tests check that groups form).
    largest_group: AtomicUsize,
    /// Transactions the writer has committed or tried to (a group once, a write run alone once).
    commits: AtomicU64,
}

/// The writer thread: until every [`Writer`] is dropped, takes what is queued and commits it.
fn serve(
    mut conn: AnyConnection,
    manager: &Manager,
    queue: &mpsc::Receiver<Box<dyn Job>>,
    figures: &Figures,
) {
    let waiting = &*figures.waiting;
    while let Ok(first) = queue.recv() {
        let mut live = Vec::new();
        take(first, &mut live);
        take_queued(queue, waiting, &mut live);
        waiting.fetch_sub(1, Ordering::Relaxed);
        if live.len() == 1 {
            for job in live {
                run_alone(&mut conn, manager, job, figures);
            }
        } else if !live.is_empty() {
            run_group(&mut conn, manager, live, queue, figures);
        }
    }
}

/// Adds `job` to `live`, or answers it at once if it was not run in time.
fn take(job: Box<dyn Job>, live: &mut Vec<Box<dyn Job>>) {
    if job.expired(Instant::now()) {
        let error = job.too_late();
        job.fail(error);
    } else {
        live.push(job);
    }
}

/// Moves what is queued now into `live`, up to [`MAX_GROUP`] writes.
fn take_queued(
    queue: &mpsc::Receiver<Box<dyn Job>>,
    waiting: &AtomicU32,
    live: &mut Vec<Box<dyn Job>>,
) {
    while live.len() < MAX_GROUP {
        match queue.try_recv() {
            Ok(job) => {
                waiting.fetch_sub(1, Ordering::Relaxed);
                take(job, live);
            }
            Err(_) => break,
        }
    }
}

/// One write in its own transaction (the work opens it).
fn run_alone(
    conn: &mut AnyConnection,
    manager: &Manager,
    mut job: Box<dyn Job>,
    figures: &Figures,
) {
    figures.commits.fetch_add(1, Ordering::Relaxed);
    match catch_unwind(AssertUnwindSafe(|| job.run(conn, true))) {
        Ok(()) => {
            job.answer();
            if R2D2Connection::is_broken(conn) {
                reopen(conn, manager);
            }
        }
        Err(_) => {
            reopen(conn, manager);
            job.fail(DbError::Task("a database write panicked".into()));
        }
    }
}

/// Several writes, each in a savepoint of one transaction, committed together.
///
/// The writes queued while the group runs join it before the commit (up to [`MAX_GROUP`]):
/// a client answered by the last commit queues its next write while this group runs, and
/// would otherwise wait for this group's commit and the whole next group, so the clients
/// split into two cohorts that each commit every other time, in groups half as large.
///
/// SQLite ends the whole transaction itself on some errors (disk full, I/O, out of memory). The
/// writes after that would each commit on their own, and running the group again would apply
/// them twice; so a marker row written at the start of the group is looked for after every
/// write that failed (only a failed statement ends it, and a write that runs in a transaction
/// of its own fails when it cannot release it), and the group stops at the first write after
/// which it is gone. Everything before was rolled back and nothing after ran, so every write
/// of the group can run again alone.
///
/// Once committed, the writes whose callers write again at once (a capture's start, before its
/// settle) are answered first: their next writes reach the queue while the next group runs and
/// join it, instead of waiting behind the answers that end their requests (an HTTP answer, the
/// client's next request and its decision take longer than a settle's queueing).
fn run_group(
    conn: &mut AnyConnection,
    manager: &Manager,
    mut group: Vec<Box<dyn Job>>,
    queue: &mpsc::Receiver<Box<dyn Job>>,
    figures: &Figures,
) {
    let waiting = &*figures.waiting;
    let committed = catch_unwind(AssertUnwindSafe(|| {
        conn.transaction::<_, diesel::result::Error, _>(|conn| {
            conn.batch_execute("INSERT INTO temp.consign_group VALUES (1)")?;
            let mut next = 0;
            while next < group.len() {
                let job = &mut group[next];
                job.run(conn, false);
                if job.failed() && !group_is_open(conn) {
                    return Err(diesel::result::Error::RollbackTransaction);
                }
                next += 1;
                if next == group.len() {
                    take_queued(queue, waiting, &mut group);
                }
            }
            conn.batch_execute("DELETE FROM temp.consign_group")?;
            Ok(())
        })
    }));
    // Before any answer: a caller that saw its write committed sees its group counted.
    figures.commits.fetch_add(1, Ordering::Relaxed);
    figures
        .largest_group
        .fetch_max(group.len(), Ordering::Relaxed);
    let failed = match committed {
        Ok(Ok(())) => {
            // Transient failures rolled back their savepoints: they run again alone, with retries.
            let (again, done): (Vec<_>, Vec<_>) =
                group.into_iter().partition(|job| job.failed_transiently());
            let (first, rest): (Vec<_>, Vec<_>) =
                done.into_iter().partition(|job| job.more_follows());
            first.into_iter().chain(rest).for_each(|job| job.answer());
            again
        }
        Ok(Err(error)) => {
            tracing::warn!(%error, writes = group.len(), "group commit failed; running its writes one by one");
            group
        }
        Err(_) => {
            // A panic leaves the transaction half open: a new connection rolls it back. Which
            // write panicked is not known, so each runs again alone (the culprit panics alone).
            reopen(conn, manager);
            group
        }
    };
    if R2D2Connection::is_broken(conn) {
        reopen(conn, manager);
    }
    for job in failed {
        run_alone(conn, manager, job, figures);
    }
}

/// Whether the group's transaction still holds its marker row (SQLite has not ended it).
fn group_is_open(conn: &mut AnyConnection) -> bool {
    #[derive(QueryableByName)]
    struct Marks {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        marks: i64,
    }
    if !matches!(conn, AnyConnection::Sqlite(_)) {
        return false;
    }
    // Kept prepared: this runs after every write (`sql_query` would be parsed each time).
    crate::prepared::returning_one::<Marks, _>(
        conn,
        crate::prepared::statement!("SELECT count(*) AS marks FROM temp.consign_group"),
        Vec::new(),
    )
    .is_ok_and(|m| m.is_some_and(|m| m.marks == 1))
}

/// WAL pages past which a commit copies the log into the database file (SQLite's default:
/// 1,000). The copy runs on this thread, inside the commit that crossed the mark, and writes
/// each page changed since the last one once, however often it changed: the same pages (an
/// order, its lines, the counters, the tables' last index pages) change in write after write,
/// so a longer interval copies far fewer pages per shipment. 8,000 pages (32 MiB of log at
/// most between copies) took SQLite's throughput from about 2,200 to 2,650 shipments/s and
/// its p90 from 12 to 6 ms in the benchmark, the p99 from 15 to 18 ms (a longer copy now and
/// then); docs/benchmarks.md.
pub const WAL_AUTOCHECKPOINT_PAGES: u32 = 8_000;

/// The write connection, with the temporary table that marks a group's transaction.
fn open(manager: &Manager) -> Result<AnyConnection, DbError> {
    let mut conn = manager
        .open()
        .map_err(|e| DbError::Connect(e.to_string()))?;
    // Each write's savepoint copies the pages it changes to a sub-journal first, kept in one
    // block of memory up to SQLITE_STMTJRNL_SPILL bytes (`.cargo/config.toml`): no file write,
    // and one allocation per write instead of one per KiB (`temp_store = MEMORY` would take it
    // in 1 KiB blocks).
    conn.batch_execute(&format!(
        "PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES}; \
         CREATE TEMP TABLE IF NOT EXISTS consign_group (mark INTEGER)"
    ))?;
    Ok(conn)
}

/// Replaces a connection left in an unknown state; dropping it rolls back what it had open.
fn reopen(conn: &mut AnyConnection, manager: &Manager) {
    loop {
        match open(manager) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DbConfig;

    /// A SQLite file of its own, removed afterwards.
    struct File(String);

    impl Drop for File {
        fn drop(&mut self) {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", self.0));
            }
        }
    }

    fn writer() -> (Writer, File) {
        let path = std::env::temp_dir().join(format!(
            "consign_writer_{}_{:?}.db",
            std::process::id(),
            std::thread::current().id()
        ));
        let file = File(path.display().to_string());
        let config = DbConfig::from_url(&format!("sqlite://{}", file.0));
        let mut conn = Manager::new(&config, Default::default()).open().unwrap();
        conn.batch_execute("CREATE TABLE t (x INTEGER NOT NULL)")
            .unwrap();
        let writer = Writer::start(
            Manager::new(&config, Default::default()),
            Arc::new(AtomicU32::new(0)),
            Duration::from_secs(5),
        )
        .unwrap();
        (writer, file)
    }

    fn insert(x: i64) -> impl Fn(&mut AnyConnection) -> Result<(), DbError> {
        move |conn| {
            conn.transaction(|conn| {
                conn.batch_execute(&format!("INSERT INTO t VALUES ({x})"))?;
                Ok(())
            })
        }
    }

    async fn count(writer: &Writer, x: i64) -> i64 {
        #[derive(QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        writer
            .run(move |conn| {
                let AnyConnection::Sqlite(c) = conn else {
                    unreachable!("the writer is SQLite's")
                };
                Ok(
                    diesel::sql_query(format!("SELECT count(*) AS n FROM t WHERE x = {x}"))
                        .get_result::<N>(c)?
                        .n,
                )
            })
            .await
            .unwrap()
    }

    /// Three writes queued behind a slow one form one group; the middle one ends the whole
    /// transaction (as SQLite does itself on disk-full or I/O errors). The others must each be
    /// committed exactly once: not lost with the group, and not applied twice when the group
    /// runs again write by write.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_that_ends_the_groups_transaction_leaves_the_others_applied_once() {
        let (writer, _file) = writer();
        let slow = writer.run(|_| {
            std::thread::sleep(Duration::from_millis(200));
            Ok(())
        });
        let (first, ending, last) = {
            let queued = async {
                // Queued while the slow write holds the writer: the next group is these three.
                tokio::time::sleep(Duration::from_millis(50)).await;
                tokio::join!(
                    writer.run(insert(1)),
                    writer.run(|conn| {
                        conn.transaction(|conn| {
                            conn.batch_execute("ROLLBACK")?;
                            Err::<(), _>(DbError::Corrupt("ended the transaction".into()))
                        })
                    }),
                    writer.run(insert(3)),
                )
            };
            let (_, results) = tokio::join!(slow, queued);
            results
        };
        assert_eq!(
            writer.largest_group(),
            3,
            "the three queued writes formed one group"
        );
        assert!(first.is_ok() && last.is_ok(), "{first:?} {last:?}");
        assert!(ending.is_err());
        assert_eq!(count(&writer, 1).await, 1, "the first write");
        assert_eq!(count(&writer, 3).await, 1, "the last write");
    }

    /// Writes queued while a group runs join it before its commit: a group of two whose first
    /// write is slow takes the two queued meanwhile, and all four are committed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_queued_while_a_group_runs_join_it() {
        let (writer, _file) = writer();
        let slow = |x: i64, millis: u64| {
            let insert = insert(x);
            move |conn: &mut AnyConnection| {
                std::thread::sleep(Duration::from_millis(millis));
                insert(conn)
            }
        };
        // Holds the writer while the next two are queued: they start a group together.
        let holding = writer.run(slow(0, 100));
        let group = async {
            tokio::time::sleep(Duration::from_millis(30)).await;
            tokio::join!(writer.run(slow(1, 300)), writer.run(insert(2)))
        };
        // Queued while the group's first write runs.
        let joining = async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            tokio::join!(writer.run(insert(3)), writer.run(insert(4)))
        };
        let (held, (first, second), (third, fourth)) = tokio::join!(holding, group, joining);
        for result in [held, first, second, third, fourth] {
            result.unwrap();
        }
        assert_eq!(
            writer.largest_group(),
            4,
            "the two queued later joined the group"
        );
        assert_eq!(
            writer.commits(),
            2,
            "the first write alone, then the four in one commit"
        );
        for x in 0..=4 {
            assert_eq!(count(&writer, x).await, 1, "write {x}");
        }
    }

    /// The writes of a group whose callers write again at once are answered before the others,
    /// whatever their order in the queue. Each caller is a task of its own on one thread, so the
    /// order in which they go on is the order of their answers.
    #[tokio::test(flavor = "current_thread")]
    async fn writes_followed_by_more_are_answered_first() {
        let (writer, _file) = writer();
        let answered = Arc::new(std::sync::Mutex::new(Vec::new()));
        // Holds the writer while the four below are queued: they form the next group.
        let holding = tokio::spawn({
            let writer = writer.clone();
            async move {
                writer
                    .run(|_| {
                        std::thread::sleep(Duration::from_millis(300));
                        Ok(())
                    })
                    .await
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut tasks = Vec::new();
        for x in 1..=4_i64 {
            let (writer, answered) = (writer.clone(), answered.clone());
            tasks.push(tokio::spawn(async move {
                let result = if x % 2 == 0 {
                    writer.run_before_more(insert(x)).await
                } else {
                    writer.run(insert(x)).await
                };
                answered.lock().unwrap().push(x);
                result
            }));
            // Queued in this order.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        holding.await.unwrap().unwrap();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert_eq!(writer.largest_group(), 4, "the four formed one group");
        assert_eq!(*answered.lock().unwrap(), vec![2, 4, 1, 3]);
    }

    /// The log grows past SQLite's default 1,000 pages before a commit copies it into the
    /// database file, and is copied before it passes the writer's mark.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_log_is_copied_into_the_database_every_few_thousand_pages() {
        let (writer, file) = writer();
        let wal_pages =
            || std::fs::metadata(format!("{}-wal", file.0)).map_or(0, |m| m.len()) / 4096;
        let mut most = 0;
        // A write of 8,000 rows changes about 16 pages: 600 writes pass the mark once.
        for x in 0..600 {
            writer
                .run(move |conn| {
                    conn.transaction(|conn| {
                        conn.batch_execute(&format!(
                            "INSERT INTO t SELECT {x} FROM (WITH RECURSIVE s(i) AS \
                             (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 8000) \
                             SELECT i FROM s)"
                        ))?;
                        Ok(())
                    })
                })
                .await
                .unwrap();
            most = most.max(wal_pages());
        }
        let mark = u64::from(WAL_AUTOCHECKPOINT_PAGES);
        assert!(most > 2_000, "the log reached {most} pages only");
        // The log file keeps its size after a copy (later commits write it from the start),
        // so its largest size is the mark plus one commit's pages.
        assert!(most <= mark + 100, "the log reached {most} pages");
        assert_eq!(count(&writer, 599).await, 8_000);
    }
}
