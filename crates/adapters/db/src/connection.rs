//! One connection type for both backends, the pool that hands it out, and migrations.

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::r2d2::{self, ManageConnection};
use diesel::{Connection, PgConnection, SqliteConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::config::{Backend, DbConfig};
use crate::error::DbError;
use crate::statements::StatementCounter;

/// The migrations in `migrations/`, written once for both backends and embedded in the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// A connection to PostgreSQL or SQLite; every query in this crate is written once against it.
#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    /// PostgreSQL (production, several instances).
    Postgresql(PgConnection),
    /// SQLite (embedded default, one instance).
    Sqlite(SqliteConnection),
}

/// Runs a Diesel query on the backend's own connection: `on_backend!(conn, |c| query.load(c))`.
///
/// Why: through `AnyConnection` every run of a query writes its whole SQL text again, even when
/// the statement is cached (the multi-backend wrapper renders it to collect the binds); on the
/// backend's own connection a cached statement only collects its binds. For the reads every
/// shipment makes; the query is written once, the body is compiled once per backend.
macro_rules! on_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::connection::AnyConnection::Postgresql($c) => $body,
            $crate::connection::AnyConnection::Sqlite($c) => $body,
        }
    };
}
pub(crate) use on_backend;

/// Per-connection SQLite settings: a busy timeout first (switching to WAL needs the lock another
/// connection may be holding while it closes), WAL so readers never block the writer, FULL sync
/// because a capture attempt must survive a power cut.
const SQLITE_PRAGMAS: &str = "PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; \
     PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;";

/// The pool's SQLite connections only read (the writer thread has its own connection), and in
/// WAL mode a reader drops its whole page cache whenever a write has committed since its last
/// read, which under load is every read: a large cache saves nothing there and holds memory in
/// each reader (64 KiB instead of SQLite's 2 MiB default took about 5 MiB off the server's peak
/// RSS under the benchmark's load, at the same CPU; docs/benchmarks.md). The writer keeps the
/// default: its cache survives its own commits.
const SQLITE_READER_PRAGMAS: &str = "PRAGMA cache_size = -64;";

/// The pool's PostgreSQL session settings, for a request's wait of `wait` (`CONSIGN_DB_TIMEOUT`).
///
/// Why: without them a row lock held by a session that stopped moving (a peer instance frozen
/// mid-transaction, an operator's `psql` left open in a transaction) held every request behind
/// it for as long as it lasted, each with a pooled connection, until the pool was empty. A
/// statement now waits for a lock at most `wait` (then the request answers 503, nothing
/// written), and a session of this pool left idle inside a transaction for twice that (at
/// least a second: a worker preempted between two statements is not frozen) is ended by the
/// server, so its locks go with it. Consign never waits inside a transaction for anything but
/// the database, so neither limit cuts its own work short. Migrations run on a connection of
/// their own without them: an instance that starts while another migrates waits its turn.
pub(crate) fn postgres_session_settings(wait: Duration) -> String {
    let lock = wait.as_millis().max(1);
    let idle = lock.saturating_mul(2).max(1000);
    format!("SET lock_timeout = {lock}; SET idle_in_transaction_session_timeout = {idle};")
}

/// Opens connections of the configured backend (no guessing from the URL at each connect).
pub struct Manager {
    backend: Backend,
    target: String,
    statements: StatementCounter,
    wait: Duration,
}

impl Manager {
    pub(crate) fn new(config: &DbConfig, statements: StatementCounter) -> Self {
        Manager {
            backend: config.backend,
            target: config.target.clone(),
            statements,
            wait: config.connection_timeout,
        }
    }

    pub(crate) fn open(&self) -> Result<AnyConnection, diesel::ConnectionError> {
        match self.backend {
            Backend::Postgres => {
                let mut conn = PgConnection::establish(&self.target)?;
                conn.set_instrumentation(self.statements.instrumentation());
                Ok(AnyConnection::Postgresql(conn))
            }
            Backend::Sqlite => {
                let mut conn = SqliteConnection::establish(&self.target)?;
                conn.set_instrumentation(self.statements.instrumentation());
                conn.batch_execute(SQLITE_PRAGMAS)
                    .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                Ok(AnyConnection::Sqlite(conn))
            }
        }
    }
}

impl ManageConnection for Manager {
    type Connection = AnyConnection;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<AnyConnection, r2d2::Error> {
        let mut conn = self.open().map_err(r2d2::Error::ConnectionError)?;
        match &mut conn {
            AnyConnection::Sqlite(reader) => reader.batch_execute(SQLITE_READER_PRAGMAS),
            AnyConnection::Postgresql(session) => {
                session.batch_execute(&postgres_session_settings(self.wait))
            }
        }
        .map_err(r2d2::Error::QueryError)?;
        Ok(conn)
    }

    fn is_valid(&self, conn: &mut AnyConnection) -> Result<(), r2d2::Error> {
        conn.batch_execute("SELECT 1")
            .map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut AnyConnection) -> bool {
        diesel::r2d2::R2D2Connection::is_broken(conn)
    }
}

/// The pool: bounded, with a bounded wait for a connection.
pub type Pool = r2d2::Pool<Manager>;

/// A connection checked out of the [`Pool`], returned to it on drop.
pub type PooledConnection = r2d2::PooledConnection<Manager>;

/// Marks a pooled connection that `result` found ended by the database (a restart, a
/// failover) as broken, so the pool drops it when it comes back instead of handing it out
/// again. Diesel counts a connection broken only when a transaction on it could not end, and a
/// single statement on a dead connection leaves none open: without this, every dead connection
/// went on failing a request at a time until its lifetime ran out.
pub(crate) fn forget_if_lost<T>(conn: &mut AnyConnection, result: &Result<T, DbError>) {
    use diesel::connection::TransactionManager;
    if result.as_ref().is_err_and(DbError::is_connection_lost) {
        <AnyConnection as Connection>::TransactionManager::transaction_manager_status_mut(conn)
            .set_in_error();
    }
}

pub(crate) fn build_pool(config: &DbConfig, statements: StatementCounter) -> Result<Pool, DbError> {
    r2d2::Pool::builder()
        .max_size(config.pool_size)
        // No `SELECT 1` before every checkout: it doubled the round trips of short
        // transactions. A broken connection fails its query, which is answered 503 (not
        // retried: a write may have committed) and the connection replaced.
        .test_on_check_out(false)
        .min_idle(Some(1))
        .connection_timeout(config.connection_timeout)
        .idle_timeout(Some(Duration::from_secs(600)))
        .build(Manager::new(config, statements))
        .map_err(|e| DbError::Connect(e.to_string()))
}

/// Applies pending migrations. On PostgreSQL an advisory lock makes instances that start at
/// once take turns; on SQLite the file's write lock does the same.
pub fn run_migrations(conn: &mut AnyConnection) -> Result<usize, DbError> {
    let failed = |e: Box<dyn std::error::Error + Send + Sync>| DbError::Migration(e.to_string());
    match conn {
        AnyConnection::Postgresql(pg) => {
            pg.batch_execute("SELECT pg_advisory_lock(7235019)")?;
            let result = pg
                .run_pending_migrations(MIGRATIONS)
                .map(|applied| applied.len())
                .map_err(failed);
            pg.batch_execute("SELECT pg_advisory_unlock(7235019)")?;
            result
        }
        AnyConnection::Sqlite(sqlite) => sqlite
            .run_pending_migrations(MIGRATIONS)
            .map(|applied| applied.len())
            .map_err(failed),
    }
}

#[cfg(test)]
mod tests {
    use diesel::sql_types::BigInt;
    use diesel::{QueryableByName, RunQueryDsl};

    use super::*;
    use crate::config::DbConfig;

    #[derive(QueryableByName)]
    struct CacheSize {
        #[diesel(sql_type = BigInt)]
        cache_size: i64,
    }

    fn cache_size(conn: &mut AnyConnection) -> i64 {
        let AnyConnection::Sqlite(sqlite) = conn else {
            panic!("a SQLite connection")
        };
        diesel::sql_query("PRAGMA cache_size")
            .get_result::<CacheSize>(sqlite)
            .unwrap()
            .cache_size
    }

    #[test]
    fn sqlite_readers_keep_a_small_page_cache_and_the_writer_the_default() {
        let path = std::env::temp_dir().join(format!("consign_cache_{}.db", std::process::id()));
        let config = DbConfig::from_url(&format!("sqlite://{}", path.display()));
        let manager = Manager::new(&config, Default::default());
        let mut reader = manager.connect().unwrap();
        let mut writer = manager.open().unwrap();
        let (read, written) = (cache_size(&mut reader), cache_size(&mut writer));
        drop((reader, writer));
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        assert_eq!(read, -64, "a pool (reader) connection's cache, in KiB");
        assert_eq!(written, -2000, "the writer's cache: SQLite's default");
    }

    #[derive(QueryableByName)]
    struct TableName {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
    }

    /// Reverts the `depth` newest migrations, newest first (answering the tables then left),
    /// and applies them again (answering how many were applied).
    fn revert_and_apply_again(conn: &mut AnyConnection, depth: usize) -> (Vec<String>, usize) {
        fn revert<C, DB>(c: &mut C, depth: usize) -> Result<(), String>
        where
            DB: diesel::backend::Backend,
            C: MigrationHarness<DB>,
        {
            for _ in 0..depth {
                c.revert_last_migration(MIGRATIONS)
                    .map_err(|e| e.to_string())?;
            }
            Ok(())
        }
        let (reverted, left) = match conn {
            AnyConnection::Sqlite(c) => (
                revert(c, depth),
                diesel::sql_query(
                    "SELECT name FROM sqlite_master WHERE type = 'table' \
                     AND name NOT LIKE 'sqlite_%' ORDER BY name",
                )
                .load::<TableName>(c)
                .unwrap(),
            ),
            AnyConnection::Postgresql(c) => (
                revert(c, depth),
                diesel::sql_query(
                    "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' \
                     ORDER BY tablename",
                )
                .load::<TableName>(c)
                .unwrap(),
            ),
        };
        if let Err(e) = reverted {
            panic!("reverting the {depth} newest migrations: {e}");
        }
        let applied = run_migrations(conn)
            .unwrap_or_else(|e| panic!("applying the {depth} newest migrations again: {e}"));
        (left.into_iter().map(|t| t.name).collect(), applied)
    }

    /// Every migration's `down.sql` undoes its `up.sql` on both backends: reverted with those
    /// after it (newest first), each applies again (a column or table a down left behind
    /// fails its up), and all reverted leave nothing but diesel's own table. An operator
    /// rolling a release back with `diesel migration revert` depends on them.
    #[test]
    fn every_migration_reverts_and_applies_again_on_both_backends() {
        let sqlite = crate::testing::Throwaway::sqlite();
        let postgres = crate::testing::Throwaway::postgres();
        if let Err(why) = &postgres {
            assert!(!crate::testing::postgres_required(), "{why}");
        }
        for db in std::iter::once(&sqlite).chain(postgres.as_ref().ok()) {
            let manager = Manager::new(&db.config, Default::default());
            let mut conn = manager.open().unwrap();
            let all = run_migrations(&mut conn).unwrap();
            assert!(all > 10, "{all} migrations");
            for depth in 1..=all {
                let (left, applied) = revert_and_apply_again(&mut conn, depth);
                assert_eq!(applied, depth, "{}", db.url);
                if depth == all {
                    assert_eq!(left, ["__diesel_schema_migrations"], "{}", db.url);
                }
            }
        }
    }

    /// The pool's PostgreSQL sessions are ended by the server when left inside a transaction
    /// (a frozen peer's locks go with them), and wait a bounded time for a lock; the
    /// migrations' connection has neither limit.
    #[test]
    fn pooled_postgres_sessions_may_not_sit_in_a_transaction_or_wait_for_ever() {
        #[derive(QueryableByName)]
        struct LockTimeout {
            #[diesel(sql_type = diesel::sql_types::Text)]
            lock_timeout: String,
        }
        let db = match crate::testing::Throwaway::postgres() {
            Ok(db) => db,
            Err(why) => return assert!(!crate::testing::postgres_required(), "{why}"),
        };
        let mut config = db.config.clone();
        config.connection_timeout = Duration::from_millis(250);
        let manager = Manager::new(&config, Default::default());
        let (mut pooled, mut migrating) = (manager.connect().unwrap(), manager.open().unwrap());
        let AnyConnection::Postgresql(session) = &mut pooled else {
            panic!("a PostgreSQL connection")
        };
        let shown = diesel::sql_query("SHOW lock_timeout")
            .get_result::<LockTimeout>(session)
            .unwrap();
        assert_eq!(shown.lock_timeout, "250ms");
        for conn in [&mut pooled, &mut migrating] {
            conn.batch_execute("BEGIN; SELECT 1").unwrap();
        }
        // Past the pooled session's limit: twice the wait, at least a second.
        std::thread::sleep(Duration::from_millis(1600));
        let ended = pooled.batch_execute("SELECT 1").map_err(DbError::from);
        assert!(
            ended.as_ref().is_err_and(DbError::is_connection_lost),
            "{ended:?}"
        );
        migrating.batch_execute("SELECT 1; COMMIT").unwrap();
    }

    #[derive(QueryableByName)]
    struct CompileOption {
        #[diesel(sql_type = diesel::sql_types::Text)]
        compile_options: String,
    }

    /// The bundled SQLite is built as `.cargo/config.toml` asks: no STAT4, multi-thread mode,
    /// no memory statistics, a savepoint's sub-journal in memory up to 120 KiB. A build that
    /// lost those flags would still pass every other test.
    #[test]
    fn the_bundled_sqlite_is_built_with_consigns_options() {
        let mut conn = diesel::SqliteConnection::establish(":memory:").unwrap();
        let options: Vec<String> = diesel::sql_query("PRAGMA compile_options")
            .load::<CompileOption>(&mut conn)
            .unwrap()
            .into_iter()
            .map(|o| o.compile_options)
            .collect();
        assert!(options.iter().any(|o| o == "THREADSAFE=2"), "{options:?}");
        assert!(
            options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
            "{options:?}"
        );
        assert!(!options.iter().any(|o| o == "ENABLE_STAT4"), "{options:?}");
        assert!(
            options.iter().any(|o| o == "STMTJRNL_SPILL=122880"),
            "{options:?}"
        );
    }
}
