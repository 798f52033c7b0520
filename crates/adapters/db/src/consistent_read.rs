//! A read of several statements that sees the database as of one moment.

use diesel::connection::{AnsiTransactionManager, TransactionManager};
use diesel::result::Error;
use diesel::Connection;

use crate::connection::AnyConnection;
use crate::error::DbError;

/// How PostgreSQL's transaction starts: its snapshot kept for every statement (read committed
/// takes one per statement), and read-only. One statement, where Diesel's builder would send
/// `BEGIN` and the isolation apart.
const BEGIN_POSTGRES: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY";

type Transactions = <AnyConnection as Connection>::TransactionManager;

/// Runs `read` in one transaction that sees one snapshot of the database (SQLite's WAL gives a
/// transaction its first read's; PostgreSQL needs repeatable read), so a write that commits
/// meanwhile shows in all of its statements or in none: an order's allocated units, its
/// shipments and their lines always agree.
pub(crate) fn in_one_snapshot<T>(
    conn: &mut AnyConnection,
    read: impl FnOnce(&mut AnyConnection) -> Result<T, DbError>,
) -> Result<T, DbError> {
    if let AnyConnection::Postgresql(pg) = &mut *conn {
        AnsiTransactionManager::begin_transaction_sql(pg, BEGIN_POSTGRES)?;
    } else {
        Transactions::begin_transaction(conn)?;
    }
    // As Diesel's own `transaction`: commit what read, roll back what failed.
    match read(conn) {
        Ok(value) => {
            Transactions::commit_transaction(conn)?;
            Ok(value)
        }
        Err(failed) => match Transactions::rollback_transaction(conn) {
            Ok(()) | Err(Error::BrokenTransactionManager) => Err(failed),
            Err(rollback) => Err(rollback.into()),
        },
    }
}
