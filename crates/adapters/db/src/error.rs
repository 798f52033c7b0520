//! The adapter's errors and how they become the port's [`StoreError`].

use consign_domain::{OrderId, ShipmentError, ShipmentId};
use consign_ports::StoreError;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

/// What went wrong inside the adapter.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database could not be opened.
    #[error("cannot connect to the database: {0}")]
    Connect(String),
    /// A migration failed.
    #[error("migration failed: {0}")]
    Migration(String),
    /// No pooled connection within the timeout.
    #[error("no database connection available: {0}")]
    PoolTimeout(String),
    /// A query failed.
    #[error(transparent)]
    Query(#[from] DieselError),
    /// The domain refused; the transaction was rolled back.
    #[error(transparent)]
    Rejected(#[from] ShipmentError),
    /// The domain's state machine refused a transition the statement was built for.
    #[error(transparent)]
    Illegal(#[from] consign_domain::IllegalTransition),
    /// Import of an existing order id.
    #[error("order {0} already exists")]
    OrderExists(OrderId),
    /// No such order.
    #[error("order {0} does not exist")]
    OrderNotFound(OrderId),
    /// No such shipment.
    #[error("shipment {0} does not exist")]
    ShipmentNotFound(ShipmentId),
    /// The domain refused a return or refund; the transaction was rolled back.
    #[error(transparent)]
    ReturnRejected(#[from] consign_domain::ReturnError),
    /// No such return.
    #[error("return {0} does not exist")]
    ReturnNotFound(consign_domain::ReturnId),
    /// A row that cannot be read back into the model.
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    /// The blocking task died (a panic: a bug, answered as internal).
    #[error("database task failed: {0}")]
    Task(String),
    /// The database is not taking work: SQLite's writer thread stopped (or its answer was lost
    /// with it), or the pool closed at a stop.
    #[error("the database is not taking work: {0}")]
    Stopped(String),
    /// Another import with the same idempotency key committed first (its request was taken
    /// over while it still ran): nothing written; a retry finds that import's order.
    #[error("another import with this idempotency key has just committed")]
    ImportKeyTaken,
    /// SQLite's log could not be copied into the database file at a stop.
    #[error("the log could not be copied into the database file: {0}")]
    Checkpoint(String),
}

impl DbError {
    /// Whether running the same transaction again may succeed: SQLite's busy lock, PostgreSQL's
    /// serialization failures and deadlocks.
    pub fn is_transient(&self) -> bool {
        match self {
            DbError::Query(DieselError::DatabaseError(kind, info)) => {
                matches!(kind, DatabaseErrorKind::SerializationFailure)
                    || info.message().contains("database is locked")
                    || info.message().contains("deadlock detected")
            }
            _ => false,
        }
    }
}

impl DbError {
    /// Whether the database ended this connection (a restart, a failover): it cannot be used
    /// again.
    pub(crate) fn is_connection_lost(&self) -> bool {
        matches!(
            self,
            DbError::Query(DieselError::DatabaseError(
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                _
            ))
        )
    }

    /// Whether the database was not there to do the work: a connection lost, refused or
    /// read-only (a restart, a failover), a disk full or failing, no connection or writer to
    /// take it. Answered as unavailable (503), so a client retries with its key, where an
    /// internal error (500) would tell it the request failed although a write whose
    /// acknowledgement was lost may have committed. Never retried here, for the same reason.
    fn is_unavailable(&self) -> bool {
        match self {
            DbError::PoolTimeout(_)
            | DbError::Connect(_)
            | DbError::Stopped(_)
            | DbError::ImportKeyTaken => true,
            DbError::Query(DieselError::DatabaseError(kind, info)) => {
                matches!(
                    kind,
                    DatabaseErrorKind::ClosedConnection
                        | DatabaseErrorKind::UnableToSendCommand
                        | DatabaseErrorKind::ReadOnlyTransaction
                ) || UNAVAILABLE_MESSAGES
                    .iter()
                    .any(|text| info.message().contains(text))
                    || info.message().contains(LOCK_WAIT_ENDED)
            }
            _ => false,
        }
    }
}

/// What PostgreSQL says when a statement waited for a row lock longer than the pool's sessions
/// allow (`lock_timeout`, see `connection::postgres_session_settings`). Nothing was written, but
/// the lock is still held: answered 503 at once, not run again here.
const LOCK_WAIT_ENDED: &str = "canceling statement due to lock timeout";

/// What SQLite says (it has no kinds for these) when its file cannot take the work: full, failing
/// or gone.
const UNAVAILABLE_MESSAGES: [&str; 3] = [
    "database or disk is full",
    "disk I/O error",
    "unable to open database file",
];

impl From<DbError> for StoreError {
    fn from(error: DbError) -> Self {
        match error {
            DbError::Rejected(e) => StoreError::Rejected(e),
            DbError::OrderExists(id) => StoreError::OrderExists(id),
            DbError::OrderNotFound(id) => StoreError::OrderNotFound(id),
            DbError::ShipmentNotFound(id) => StoreError::ShipmentNotFound(id),
            DbError::ReturnRejected(e) => StoreError::ReturnRejected(e),
            DbError::ReturnNotFound(id) => StoreError::ReturnNotFound(id),
            e if e.is_unavailable() || e.is_transient() => StoreError::Unavailable(e.to_string()),
            e => StoreError::Internal(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn database(kind: DatabaseErrorKind, message: &str) -> DbError {
        DbError::Query(DieselError::DatabaseError(
            kind,
            Box::new(message.to_owned()),
        ))
    }

    #[test]
    fn a_database_that_is_not_there_is_unavailable_and_a_bug_is_internal() {
        for error in [
            database(
                DatabaseErrorKind::ClosedConnection,
                "server closed the connection unexpectedly",
            ),
            database(DatabaseErrorKind::UnableToSendCommand, "no connection"),
            database(
                DatabaseErrorKind::ReadOnlyTransaction,
                "cannot execute INSERT in a read-only transaction",
            ),
            database(DatabaseErrorKind::Unknown, "database or disk is full"),
            database(DatabaseErrorKind::Unknown, "disk I/O error"),
            database(DatabaseErrorKind::Unknown, "database is locked"),
            database(
                DatabaseErrorKind::Unknown,
                "canceling statement due to lock timeout",
            ),
            DbError::Stopped("the SQLite writer has stopped".into()),
            DbError::PoolTimeout("no connection".into()),
        ] {
            let shown = error.to_string();
            assert!(
                matches!(StoreError::from(error), StoreError::Unavailable(_)),
                "{shown}"
            );
        }
        for error in [
            database(DatabaseErrorKind::UniqueViolation, "duplicate key value"),
            DbError::Task("a database write panicked".into()),
            DbError::Corrupt("currency \"XXX\"".into()),
        ] {
            let shown = error.to_string();
            assert!(
                matches!(StoreError::from(error), StoreError::Internal(_)),
                "{shown}"
            );
        }
    }
}
