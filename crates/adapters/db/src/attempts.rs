//! Capture attempts: the names of their states, their provider idempotency keys, and the
//! statement that records one.

use consign_domain::ShipmentId;

use crate::connection::AnyConnection;
use crate::error::DbError;
use crate::prepared::{execute, Param};
use crate::rows::AttemptRow;

/// Names of a capture attempt's states.
pub(crate) const ATTEMPT_PENDING: &str = "pending";
pub(crate) const ATTEMPT_SUCCEEDED: &str = "succeeded";
pub(crate) const ATTEMPT_FAILED: &str = "failed";
pub(crate) const ATTEMPT_UNKNOWN: &str = "unknown";
pub(crate) const ATTEMPT_NEEDS_REVIEW: &str = "needs_review";
/// Attempts without a definite outcome yet: recovery replays these.
pub(crate) const ATTEMPT_OPEN: [&str; 3] = [ATTEMPT_PENDING, ATTEMPT_UNKNOWN, ATTEMPT_NEEDS_REVIEW];

/// The provider idempotency key of one attempt: stable across retries and restarts, unique
/// across databases.
pub(crate) fn provider_key(installation: &str, shipment: ShipmentId, attempt: u32) -> String {
    format!("consign-{installation}-{shipment}-{attempt}")
}

/// A capture attempt, every column.
const INSERT_ATTEMPT: &str = "INSERT INTO capture_attempts (order_id, number, attempt, \
     idempotency_key, amount, final_capture, state, provider_reference, decline_code, \
     decline_message, created_at, updated_at, passes, last_error, void_on_decline, on_capture) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)";

/// Records a capture attempt (a statement kept prepared, unlike Diesel's insert of a row with
/// optional columns).
pub(crate) fn insert_attempt(conn: &mut AnyConnection, row: &AttemptRow) -> Result<(), DbError> {
    execute(
        conn,
        INSERT_ATTEMPT,
        vec![
            Param::BigInt(row.order_id),
            Param::Integer(row.number),
            Param::Integer(row.attempt),
            Param::Text(&row.idempotency_key),
            Param::BigInt(row.amount),
            Param::Integer(row.final_capture),
            Param::Text(&row.state),
            Param::NullableText(row.provider_reference.as_deref()),
            Param::NullableText(row.decline_code.as_deref()),
            Param::NullableText(row.decline_message.as_deref()),
            Param::BigInt(row.created_at),
            Param::BigInt(row.updated_at),
            Param::Integer(row.passes),
            Param::NullableText(row.last_error.as_deref()),
            Param::Integer(row.void_on_decline),
            Param::NullableText(row.on_capture.as_deref()),
        ],
    )?;
    Ok(())
}
