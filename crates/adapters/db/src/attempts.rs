//! Capture attempts: the names of their states, their provider idempotency keys, and the
//! statement that records one.

use consign_domain::ShipmentId;

use crate::connection::AnyConnection;
use crate::error::DbError;
use diesel::QueryableByName;

use crate::prepared::{execute, returning_one, statement, Param};
use crate::rows::{flag, int, AttemptRow};

/// Names of a capture attempt's states.
pub(crate) const ATTEMPT_PENDING: &str = "pending";
pub(crate) const ATTEMPT_SUCCEEDED: &str = "succeeded";
pub(crate) const ATTEMPT_FAILED: &str = "failed";
pub(crate) const ATTEMPT_UNKNOWN: &str = "unknown";
pub(crate) const ATTEMPT_NEEDS_REVIEW: &str = "needs_review";
/// Attempts without a definite outcome yet: recovery replays these.
pub(crate) const ATTEMPT_OPEN: [&str; 3] = [ATTEMPT_PENDING, ATTEMPT_UNKNOWN, ATTEMPT_NEEDS_REVIEW];
/// An open attempt (neither succeeded nor failed: [`ATTEMPT_OPEN`]) as a condition with
/// literal values, the predicate of the index of open attempts (migration 000007): a database
/// uses a partial index only for a query whose condition it can prove covers the index's rows,
/// which a condition on bound values is not. Written as two comparisons, not an `IN` list:
/// SQLite evaluates the predicate on every write of an attempt, and with the list each
/// create-shipment cost its writer thread about 50,000 more instructions (callgrind), with
/// these nothing measurable.
pub(crate) const OPEN_ATTEMPT: &str =
    "capture_attempts.state <> 'succeeded' AND capture_attempts.state <> 'failed'";

/// The provider idempotency key of one attempt: stable across retries and restarts, unique
/// across databases.
pub(crate) fn provider_key(installation: &str, shipment: ShipmentId, attempt: u32) -> String {
    format!("{}{attempt}", provider_key_prefix(installation, shipment))
}

/// A provider key without its attempt number.
pub(crate) fn provider_key_prefix(installation: &str, shipment: ShipmentId) -> String {
    format!("consign-{installation}-{shipment}-")
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
        statement!(INSERT_ATTEMPT),
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

/// A declined capture took units out of capture: no attempt still open on its order completes
/// the order, so none is sent as final. `updated_at` is left alone: recovery takes its turns
/// by it.
const LOWER_OPEN_FINALS: &str = "UPDATE capture_attempts SET final_capture = 0 \
     WHERE order_id = $1 AND final_capture = 1 AND state IN ($2, $3, $4)";

/// Stores every open attempt on `order_id` as not final (what
/// [`consign_domain::ShipmentChange::takes_units_out_of_capture`] calls for); answers how many.
pub(crate) fn lower_open_final_captures(
    conn: &mut AnyConnection,
    order_id: i64,
) -> Result<usize, DbError> {
    let [pending, unknown, needs_review] = ATTEMPT_OPEN;
    Ok(execute(
        conn,
        statement!(LOWER_OPEN_FINALS),
        vec![
            Param::BigInt(order_id),
            Param::Text(pending),
            Param::Text(unknown),
            Param::Text(needs_review),
        ],
    )?)
}

/// The next capture attempt of a shipment, numbered by the statement itself (one more than its
/// last) with the provider key that number makes, so that no read of the last number comes
/// first. Its columns are those of [`AttemptRow::pending`] for a capture started after creation.
const INSERT_NEXT_ATTEMPT: &str = "INSERT INTO capture_attempts (order_id, number, attempt, \
     idempotency_key, amount, final_capture, state, created_at, updated_at, passes, \
     void_on_decline, on_capture, request_key) \
     SELECT $1, $2, COALESCE(MAX(attempt), 0) + 1, \
     $3 || CAST(COALESCE(MAX(attempt), 0) + 1 AS TEXT), $4, $5, $6, $7, $7, 0, 0, $8, $9 \
     FROM capture_attempts WHERE order_id = $1 AND number = $2 \
     RETURNING idempotency_key";

/// What [`INSERT_NEXT_ATTEMPT`] answers: the provider key its number made.
#[derive(QueryableByName)]
struct NextAttempt {
    #[diesel(sql_type = diesel::sql_types::Text)]
    idempotency_key: String,
}

/// Records the next pending attempt of shipment `shipment` (a capture started by complete or
/// capture, after creation), carrying the changes that wait for it and the idempotency key of
/// the request that started it; answers its provider key.
#[allow(clippy::too_many_arguments)]
pub(crate) fn insert_next_attempt(
    conn: &mut AnyConnection,
    installation: &str,
    shipment: ShipmentId,
    amount: i64,
    final_capture: bool,
    on_capture: &str,
    request_key: Option<&str>,
    now: i64,
) -> Result<String, DbError> {
    let prefix = provider_key_prefix(installation, shipment);
    returning_one::<NextAttempt, _>(
        conn,
        statement!(INSERT_NEXT_ATTEMPT),
        vec![
            Param::BigInt(shipment.order.0),
            Param::Integer(int(shipment.number)),
            Param::Text(&prefix),
            Param::BigInt(amount),
            Param::Integer(flag(final_capture)),
            Param::Text(ATTEMPT_PENDING),
            Param::BigInt(now),
            Param::NullableText(Some(on_capture)),
            Param::NullableText(request_key),
        ],
    )?
    .map(|next| next.idempotency_key)
    .ok_or_else(|| DbError::Corrupt(format!("no attempt recorded for {shipment}")))
}

impl AttemptRow {
    /// A capture attempt about to be sent: pending, no outcome yet.
    #[allow(clippy::too_many_arguments)]
    pub fn pending(
        order_id: i64,
        number: i32,
        attempt: i32,
        idempotency_key: String,
        amount: i64,
        final_capture: bool,
        void_on_decline: bool,
        on_capture: Option<String>,
        now: i64,
    ) -> AttemptRow {
        AttemptRow {
            order_id,
            number,
            attempt,
            idempotency_key,
            amount,
            final_capture: flag(final_capture),
            state: ATTEMPT_PENDING.to_owned(),
            provider_reference: None,
            decline_code: None,
            decline_message: None,
            created_at: now,
            updated_at: now,
            passes: 0,
            last_error: None,
            void_on_decline: flag(void_on_decline),
            on_capture,
        }
    }
}
