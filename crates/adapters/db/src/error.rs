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
    /// The blocking task died.
    #[error("database task failed: {0}")]
    Task(String),
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

impl From<DbError> for StoreError {
    fn from(error: DbError) -> Self {
        match error {
            DbError::Rejected(e) => StoreError::Rejected(e),
            DbError::OrderExists(id) => StoreError::OrderExists(id),
            DbError::OrderNotFound(id) => StoreError::OrderNotFound(id),
            DbError::ShipmentNotFound(id) => StoreError::ShipmentNotFound(id),
            DbError::ReturnRejected(e) => StoreError::ReturnRejected(e),
            DbError::ReturnNotFound(id) => StoreError::ReturnNotFound(id),
            e @ (DbError::PoolTimeout(_) | DbError::Connect(_)) => {
                StoreError::Unavailable(e.to_string())
            }
            e if e.is_transient() => StoreError::Unavailable(e.to_string()),
            e => StoreError::Internal(e.to_string()),
        }
    }
}
