//! The database handle: a pool, a bound on blocking work, and the retry of transient failures.

use std::sync::Arc;

use diesel::prelude::*;
use tokio::sync::Semaphore;

use crate::config::{Backend, DbConfig};
use crate::connection::{
    build_pool, forget_if_lost, run_migrations, AnyConnection, Manager, Pool, PooledConnection,
};
use crate::error::DbError;
use crate::reserved::{ReservedShipments, UncapturedShipments};
use crate::schema::settings;
use crate::snapshots::OrderSnapshots;
use crate::statements::StatementCounter;
use crate::writer::Writer;

/// How long a request that found no idle connection waits before it looks again, at first: a
/// new connection takes a few milliseconds to open. Each look that finds none doubles the wait,
/// up to [`CONNECTION_POLL_MAX`], so a database that is away is not asked a thousand times a
/// second by every waiting request.
const CONNECTION_POLL: std::time::Duration = std::time::Duration::from_millis(1);
const CONNECTION_POLL_MAX: std::time::Duration = std::time::Duration::from_millis(8);

/// The Diesel store for PostgreSQL and SQLite. Cheap to clone.
#[derive(Clone)]
pub struct Database {
    pool: Pool,
    /// Blocking database work never exceeds the pool size, so it cannot starve the runtime.
    permits: Arc<Semaphore>,
    /// SQLite has one writer at a time: writes go to one thread that owns the write connection
    /// and commits what is queued together. `None` on PostgreSQL, whose row locks let writes to
    /// different orders run in parallel on the pool.
    writer: Option<Writer>,
    /// Orders as this instance last wrote them, to plan a shipment without reading first: on
    /// PostgreSQL a read is a round trip; on SQLite the plan is made off the writer thread.
    snapshots: Arc<OrderSnapshots>,
    /// SQLite: shipments reserved with capture, until their settle (which answers from them).
    reserved: Arc<ReservedShipments>,
    /// SQLite: shipments reserved without capture, until their capture starts (which is
    /// decided from them and the order's snapshot).
    uncaptured: Arc<UncapturedShipments>,
    /// The longest wait for a turn at the database before answering "unavailable".
    wait_limit: std::time::Duration,
    /// Requests waiting for a permit (for metrics).
    waiting: Arc<std::sync::atomic::AtomicU32>,
    pool_size: u32,
    /// Statements sent by every connection of this database (pool and writer).
    statements: StatementCounter,
    backend: Backend,
    /// Random per database; part of every provider idempotency key, so two databases (a test and
    /// production, say) can never send the same key for different captures.
    installation: Arc<str>,
    /// Random per database: signs document links, so they work on every instance.
    document_secret: Arc<str>,
}

impl Database {
    /// Opens the database, applies pending migrations and reads (or creates) its installation id.
    pub fn open(config: &DbConfig) -> Result<Database, DbError> {
        if config.backend == Backend::Sqlite && is_in_memory(&config.target) {
            return Err(DbError::Connect(
                "an in-memory SQLite database is not supported: the writer and the readers each \
                 have a connection, and each would see a database of its own; give a file path"
                    .into(),
            ));
        }
        let statements = StatementCounter::default();
        // Migrations on a connection of its own: the pool's sessions limit lock waits, and an
        // instance starting while another migrates must wait for the migrations' lock.
        let mut conn = Manager::new(config, statements.clone())
            .open()
            .map_err(|e| DbError::Connect(e.to_string()))?;
        run_migrations(&mut conn)?;
        let installation = setting_or_create(&mut conn, "installation_id", 8)?;
        let document_secret = setting_or_create(&mut conn, "document_secret", 32)?;
        drop(conn);
        let pool = build_pool(config, statements.clone())?;
        let waiting = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let writer = match config.backend {
            Backend::Sqlite => Some(Writer::start(
                Manager::new(config, statements.clone()),
                waiting.clone(),
                config.connection_timeout,
            )?),
            Backend::Postgres => None,
        };
        Ok(Database {
            snapshots: Arc::default(),
            reserved: Arc::default(),
            uncaptured: Arc::default(),
            permits: Arc::new(Semaphore::new(config.pool_size as usize)),
            waiting,
            writer,
            wait_limit: config.connection_timeout,
            pool_size: config.pool_size,
            statements,
            pool,
            backend: config.backend,
            installation: installation.into(),
            document_secret: document_secret.into(),
        })
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Connections checked out of the pool right now (for tests that prove none is held while
    /// the gateway is called, and for metrics).
    pub fn connections_in_use(&self) -> u32 {
        let state = self.pool.state();
        state.connections - state.idle_connections
    }

    /// The secret that signs document links (created with the database; the same on every
    /// instance sharing it).
    pub fn document_secret(&self) -> &str {
        &self.document_secret
    }

    /// (in use, waiting, size) of the connection pool.
    pub fn pool_figures(&self) -> (u32, u32, u32) {
        (
            self.connections_in_use(),
            self.waiting.load(std::sync::atomic::Ordering::Relaxed),
            self.pool_size,
        )
    }

    /// Statements sent to the database since it was opened, prepares included: on PostgreSQL
    /// each one is a round trip (for metrics, and the benchmark's round trips per request).
    pub fn statements_sent(&self) -> u64 {
        self.statements.sent()
    }

    /// On SQLite, the transactions its writer thread has committed (or tried to) so far: a group
    /// of writes once, a write run alone once. 0 on PostgreSQL, where each write commits on a
    /// connection of its own.
    pub fn writer_commits(&self) -> u64 {
        self.writer.as_ref().map_or(0, |w| w.commits())
    }

    /// On SQLite, the most writes one group commit has held so far (`None` on PostgreSQL).
    pub fn largest_write_group(&self) -> Option<usize> {
        self.writer.as_ref().map(|w| w.largest_group())
    }

    /// The order snapshots.
    pub(crate) fn snapshots(&self) -> Arc<OrderSnapshots> {
        self.snapshots.clone()
    }

    /// The shipments reserved with capture and not yet settled (kept on SQLite only).
    pub(crate) fn reserved(&self) -> &ReservedShipments {
        &self.reserved
    }

    /// The shipments reserved without capture whose capture has not started (kept on SQLite
    /// only).
    pub(crate) fn uncaptured(&self) -> &UncapturedShipments {
        &self.uncaptured
    }

    /// Forgets the snapshot of `order` after a write that changed its version (a locked
    /// transaction): the next shipment reads the order instead of first trying a write that
    /// cannot match.
    pub(crate) fn outdated(&self, order: consign_domain::OrderId) {
        self.snapshots.forget(order.0);
    }

    pub(crate) fn installation(&self) -> &str {
        &self.installation
    }

    /// A permit, or "unavailable" after `CONSIGN_DB_TIMEOUT`: under overload requests are answered
    /// 503 instead of queueing without bound.
    async fn wait_for(
        &self,
        semaphore: &Arc<Semaphore>,
    ) -> Result<tokio::sync::OwnedSemaphorePermit, DbError> {
        match tokio::time::timeout(self.wait_limit, semaphore.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            // Closed at a stop: nothing more is taken.
            Ok(Err(closed)) => Err(DbError::Stopped(closed.to_string())),
            Err(_) => Err(DbError::PoolTimeout(format!(
                "no turn at the database within {:?}",
                self.wait_limit
            ))),
        }
    }

    /// A turn at the database: a permit, counted as waiting until it is given.
    async fn turn(&self) -> Result<tokio::sync::OwnedSemaphorePermit, DbError> {
        use std::sync::atomic::Ordering;
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let permit = self.wait_for(&self.permits).await;
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        permit
    }

    /// Work that writes: a short transaction on one order (the saga's steps, imports, updates).
    /// On SQLite it goes to the writer thread; on PostgreSQL it runs on the calling thread
    /// ([`Database::run_here`]).
    pub(crate) async fn run_write<T, F>(&self, work: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: Fn(&mut AnyConnection) -> Result<T, DbError> + Send + 'static,
    {
        match &self.writer {
            Some(writer) => writer.run(work).await,
            None => self.run_here(work).await,
        }
    }

    /// [`Database::run_write`] for a write its caller follows with another at once (a capture's
    /// start, before its settle): on SQLite it is answered before the rest of its group, so
    /// that the next write can still join the group the writer is running.
    pub(crate) async fn run_write_before_more<T, F>(&self, work: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: Fn(&mut AnyConnection) -> Result<T, DbError> + Send + 'static,
    {
        match &self.writer {
            Some(writer) => writer.run_before_more(work).await,
            None => self.run_here(work).await,
        }
    }

    /// A read of rows by key (no scan): on the calling thread, as [`Database::run_here`] runs a
    /// write, instead of two thread wake-ups for a hop to the blocking pool and back.
    pub(crate) async fn run_short_read<T, F>(&self, work: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: Fn(&mut AnyConnection) -> Result<T, DbError> + Send + 'static,
    {
        self.run_here(work).await
    }

    /// Runs short work on the calling thread with an idle pooled connection, once.
    ///
    /// Why: a hop to the blocking pool and back is two thread wake-ups per call; dropping them
    /// cut the server's CPU per request by about a quarter (docs/benchmarks.md). The work is one
    /// order's short transaction and holds nothing across an await, so the thread is blocked
    /// for its few round trips only, and the permit bounds it as it bounds the blocking pool.
    /// A transient failure goes to the blocking pool instead, for its backoff and retries.
    async fn run_here<T, F>(&self, work: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: Fn(&mut AnyConnection) -> Result<T, DbError> + Send + 'static,
    {
        let permit = self.turn().await?;
        let mut conn = self.idle_connection().await?;
        let first = work(&mut conn);
        forget_if_lost(&mut conn, &first);
        drop(conn);
        drop(permit);
        match first {
            Err(error) if error.is_transient() => self.run(work).await,
            result => result,
        }
    }

    /// An idle pooled connection for the holder of a turn, waited for without taking a thread.
    ///
    /// Why: every turn has a connection once the pool has opened them all, so the wait is for
    /// the pool to open one (it opens them as they are needed) or for the database to come
    /// back. A blocking wait took a blocking-pool thread per waiting request, and 256 clients
    /// arriving at once left such threads and their memory behind for the rest of the run
    /// (docs/benchmarks.md, sets 19 and 20).
    async fn idle_connection(&self) -> Result<PooledConnection, DbError> {
        if let Some(conn) = self.pool.try_get() {
            return Ok(conn);
        }
        let deadline = tokio::time::Instant::now() + self.wait_limit;
        let mut pause = CONNECTION_POLL;
        loop {
            // A wait of zero asks the pool to open one more connection, if it may have one
            // more, and returns at once.
            match self.pool.get_timeout(std::time::Duration::ZERO) {
                Ok(conn) => return Ok(conn),
                Err(error) if tokio::time::Instant::now() >= deadline => {
                    return Err(DbError::PoolTimeout(format!(
                        "no database connection within {:?}: {error}",
                        self.wait_limit
                    )))
                }
                Err(_) => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(CONNECTION_POLL_MAX);
                }
            }
        }
    }

    /// Runs `work` on a pooled connection on the blocking pool, again on transient failures:
    /// reads that may scan (listings, figures, recovery) and what [`Database::run_here`] hands on.
    pub(crate) async fn run<T, F>(&self, work: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: Fn(&mut AnyConnection) -> Result<T, DbError> + Send + 'static,
    {
        let _permit = self.turn().await?;
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = pool
                .get()
                .map_err(|e| DbError::PoolTimeout(e.to_string()))?;
            let result = crate::retry::with_retries(&work, &mut conn);
            forget_if_lost(&mut conn, &result);
            result
        })
        .await
        .map_err(|e| DbError::Task(e.to_string()))?
    }
}

/// Whether a SQLite target names an in-memory database rather than a file.
fn is_in_memory(target: &str) -> bool {
    target == ":memory:" || target.starts_with("file::memory:") || target.contains("mode=memory")
}

/// A random value kept in `settings`, created on first use; `bytes` of entropy, hex-encoded.
fn setting_or_create(
    conn: &mut AnyConnection,
    name: &str,
    bytes: usize,
) -> Result<String, DbError> {
    let existing: Option<String> = settings::table
        .find(name)
        .select(settings::value)
        .first(conn)
        .optional()?;
    if let Some(value) = existing {
        return Ok(value);
    }
    let mut random = vec![0u8; bytes];
    getrandom::getrandom(&mut random)
        .map_err(|e| DbError::Connect(format!("no randomness for {name}: {e}")))?;
    let value = hex(&random);
    // Another instance may have raced us here: whichever row exists is the value.
    let _ = diesel::insert_into(settings::table)
        .values((settings::name.eq(name), settings::value.eq(&value)))
        .execute(conn);
    Ok(settings::table
        .find(name)
        .select(settings::value)
        .first(conn)?)
}

/// Lowercase hexadecimal.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use diesel::dsl::sql;
    use diesel::sql_types::Integer;

    use super::*;
    use crate::testing::Throwaway;

    fn one(conn: &mut AnyConnection) -> Result<i32, DbError> {
        Ok(diesel::select(sql::<Integer>("1")).get_result(conn)?)
    }

    /// A runtime whose one blocking thread is kept busy until the returned sender is used or
    /// dropped: work handed to the blocking pool waits until then.
    fn runtime_with_its_blocking_thread_busy(
    ) -> (tokio::runtime::Runtime, std::sync::mpsc::Sender<()>) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .max_blocking_threads(1)
            .build()
            .expect("runtime");
        let (release, released) = std::sync::mpsc::channel::<()>();
        let _busy = runtime.spawn_blocking(move || {
            let _ = released.recv();
        });
        (runtime, release)
    }

    /// A request that finds every connection in use waits for one without a thread of its
    /// own: here the only blocking thread is busy until the read is answered, so a read that
    /// waited on one would not be answered.
    #[test]
    fn a_request_waits_for_a_connection_without_a_blocking_thread() {
        let file = Throwaway::sqlite();
        let mut config = file.config.clone();
        config.pool_size = 2;
        let db = Database::open(&config).expect("open");
        let held: Vec<_> = (0..2)
            .map(|_| db.pool.get().expect("a connection"))
            .collect();
        let (runtime, release) = runtime_with_its_blocking_thread_busy();
        let returner = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            drop(held);
        });
        let answer = runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(3), db.run_short_read(one)).await
        });
        drop(release);
        returner.join().expect("returner");
        assert_eq!(answer.expect("answered in time").expect("read"), 1);
    }

    /// A part of a page (no offset to skip, bounded by shipments) is read on the calling
    /// thread: here the only blocking thread is busy until it is answered.
    #[test]
    fn a_part_of_a_page_is_read_without_a_blocking_thread() {
        use consign_ports::{OrderQuery, OrderStore};
        let file = Throwaway::sqlite();
        let db = Database::open(&file.config).expect("open");
        let (runtime, release) = runtime_with_its_blocking_thread_busy();
        let part = runtime.block_on(async {
            let query = OrderQuery {
                shipments_at_most: Some(1_000),
                ..OrderQuery::default()
            };
            tokio::time::timeout(Duration::from_secs(3), db.list_orders(query)).await
        });
        drop(release);
        assert!(part.expect("answered in time").expect("read").is_empty());
    }

    /// When no connection comes back, the wait ends after the configured limit with
    /// "unavailable", not never.
    #[test]
    fn the_wait_for_a_connection_ends_at_the_limit() {
        let file = Throwaway::sqlite();
        let mut config = file.config.clone();
        config.pool_size = 1;
        config.connection_timeout = Duration::from_millis(200);
        let db = Database::open(&config).expect("open");
        let _held = db.pool.get().expect("a connection");
        let (runtime, _release) = runtime_with_its_blocking_thread_busy();
        let answer = runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(3), db.run_short_read(one)).await
        });
        match answer.expect("answered in time") {
            Err(DbError::PoolTimeout(why)) => assert!(why.contains("200ms"), "{why}"),
            other => panic!("expected unavailable, got {other:?}"),
        }
    }
}
