//! What a clean stop does to the database.
//!
//! SQLite in WAL mode keeps recent commits in its log beside the database file and copies them
//! into the file only every [`crate::WAL_AUTOCHECKPOINT_PAGES`] pages, or when the last
//! connection closes. A stopping process does not always close its last connection first, so
//! an operator who copied the database file after a clean stop could copy it without its
//! latest writes. At the stop the log is copied in and emptied, so the file alone holds every
//! write. PostgreSQL needs nothing.

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

    /// Copies into the database file as much of SQLite's log as it can without waiting for
    /// another connection or holding up its writes: what a command does before it ends, when a
    /// server may be running on the same file (`checkpoint_at_stop` would stop that server's
    /// writes until it finished). `false` when part of the log was left, because another
    /// process was using it; that process copies it in later.
    pub async fn copy_log_into_file(&self) -> Result<bool, DbError> {
        if self.backend() == Backend::Postgres {
            return Ok(true);
        }
        self.run(|conn| match conn {
            AnyConnection::Sqlite(sqlite) => {
                let answer: Checkpoint =
                    diesel::sql_query("PRAGMA wal_checkpoint(PASSIVE)").get_result(sqlite)?;
                Ok(answer.busy == 0 && answer.log == answer.checkpointed)
            }
            AnyConnection::Postgresql(_) => Ok(true),
        })
        .await
    }
}
