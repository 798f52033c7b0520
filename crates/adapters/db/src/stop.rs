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

/// `PRAGMA wal_checkpoint`'s answer: whether a connection kept it from finishing.
#[derive(QueryableByName)]
struct Checkpoint {
    #[diesel(sql_type = Integer)]
    busy: i32,
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
}
