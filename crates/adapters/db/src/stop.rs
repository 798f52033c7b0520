//! What a clean stop, and the end of a command, do to the database.
//!
//! SQLite in WAL mode keeps recent commits in its log beside the database file and copies them
//! into the file only every [`crate::WAL_AUTOCHECKPOINT_PAGES`] pages, or when the last
//! connection closes. A stopping process does not always close its last connection first, so
//! an operator who copied the database file after a clean stop could copy it without its
//! latest writes. At the stop the log is copied in and emptied, so the file alone holds every
//! write; a command copies in what it can without holding up a server on the same file.
//! PostgreSQL needs nothing.

use diesel::sql_types::Integer;
use diesel::{QueryableByName, RunQueryDsl};

use crate::config::Backend;
use crate::connection::AnyConnection;
use crate::database::Database;
use crate::error::DbError;

/// `PRAGMA wal_checkpoint`'s answer: whether a connection kept it from finishing, the log's
/// pages and how many of them are now in the database file.
#[derive(QueryableByName)]
struct Checkpoint {
    #[diesel(sql_type = Integer)]
    busy: i32,
    #[diesel(sql_type = Integer)]
    log: i32,
    #[diesel(sql_type = Integer)]
    checkpointed: i32,
}

impl Database {
    /// Copies SQLite's log into the database file and empties it, once the service stopped
    /// writing (after the HTTP server drained). Fails if a connection kept it from finishing.
    pub async fn checkpoint_at_stop(&self) -> Result<(), DbError> {
        if self.backend() == Backend::Postgres {
            return Ok(());
        }
        // A pool connection, not the writer's: the writer's work runs inside its group's
        // transaction, where a checkpoint cannot finish.
        self.run(|conn| match conn {
            AnyConnection::Sqlite(sqlite) => {
                let answer: Checkpoint =
                    diesel::sql_query("PRAGMA wal_checkpoint(TRUNCATE)").get_result(sqlite)?;
                if answer.busy == 0 {
                    Ok(())
                } else {
                    Err(DbError::Checkpoint(
                        "another connection was still reading or writing".into(),
                    ))
                }
            }
            AnyConnection::Postgresql(_) => Ok(()),
        })
        .await
    }

    /// Copies into the database file as much of SQLite's log as it can without waiting on
    /// another connection's locks or holding up its writes: what a command does before it ends,
    /// when a server may be running on the same file (`checkpoint_at_stop` would hold up that
    /// server's writes until it finished). [`LogCopy::Part`] when another connection still
    /// reads part of the log, or is copying it itself; that part reaches the file at a later
    /// checkpoint (the server's own, at the latest at its stop).
    pub async fn copy_log_into_file(&self) -> Result<LogCopy, DbError> {
        if self.backend() == Backend::Postgres {
            return Ok(LogCopy::All);
        }
        self.run(|conn| match conn {
            AnyConnection::Sqlite(sqlite) => {
                // Passive: no busy wait, no lock that keeps writers out.
                let answer: Checkpoint =
                    diesel::sql_query("PRAGMA wal_checkpoint(PASSIVE)").get_result(sqlite)?;
                Ok(if answer.busy == 0 && answer.log == answer.checkpointed {
                    LogCopy::All
                } else {
                    LogCopy::Part
                })
            }
            AnyConnection::Postgresql(_) => Ok(LogCopy::All),
        })
        .await
    }
}

/// How much of SQLite's log [`Database::copy_log_into_file`] copied into the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogCopy {
    /// All of it (or there is no log: PostgreSQL, or SQLite not in WAL mode).
    All,
    /// Part of it: another connection keeps the rest in use.
    Part,
}
