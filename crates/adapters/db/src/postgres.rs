//! PostgreSQL's versions of the saga's two writes, each one statement.
//!
//! On PostgreSQL every statement is a network round trip that wakes a server process, and under
//! load those round trips, not the work inside them, bounded the throughput: the reserve step
//! took eleven and the settle step nine. Data-modifying `WITH` clauses let one statement do what
//! the portable statements do one by one, with the same guards; SQLite (no such clauses, and no
//! round trips to save) keeps the portable versions. The contract tests run both. A later
//! capture's start (complete or capture on an uncaptured shipment) is written the same way.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::PgConnection;

use consign_domain::{ShipmentChange, ShipmentEvent, ShipmentState};
use consign_ports::Timestamp;

use crate::attempts::ATTEMPT_PENDING;
use crate::error::DbError;
use crate::line_moves::line_changed;
use crate::prepared::{statement, Param, Prepared};
use crate::reservation::ReservationWrite;
use crate::rows::{
    flag, int, shipment_row_columns, SettledAttempt, ShipmentLineRow, ShipmentRow, ShipmentRowSql,
};

/// The SQL types of a [`SettledAttempt`] read by position: `void_on_decline, on_capture`.
type AttemptSql = (diesel::sql_types::Integer, Nullable<Text>);

/// The parameters `$1`..`$35` both reserve statements bind: the shipment, its lines (as two
/// arrays), the counters' changes and the attempt.
fn reservation_params<'a>(
    write: &'a ReservationWrite,
    line_ids: &'a [i64],
    quantities: &'a [i32],
) -> Vec<Param<'a>> {
    let s = write.shipment;
    let attempt = write.attempt.as_ref();
    vec![
        Param::BigInt(s.order_id),
        Param::Integer(s.number),
        Param::Text(&s.state),
        Param::Integer(s.gtg),
        Param::Integer(s.shipped),
        Param::Text(&s.carrier),
        Param::Text(&s.service),
        Param::Integer(s.packages),
        Param::Text(&s.tracking),
        Param::Text(&s.return_slip_tracking),
        Param::NullableInteger(s.send_email),
        Param::NullableBigInt(s.capture_amount),
        Param::Integer(s.carries_shipping_fee),
        Param::BigInt(s.created_at),
        Param::NullableBigInt(s.shipped_at),
        Param::NullableText(s.request_key.as_deref()),
        Param::BigInts(line_ids),
        Param::Integers(quantities),
        Param::Integer(i32::from(write.in_capture)),
        Param::BigInt(write.committed),
        Param::Integer(i32::from(write.carries_fee)),
        Param::NullableText(attempt.map(|a| a.idempotency_key.as_str())),
        Param::BigInt(attempt.map_or(0, |a| a.amount)),
        Param::Integer(attempt.map_or(0, |a| a.final_capture)),
        Param::NullableText(s.capture_reference.as_deref()),
        Param::BigInt(s.updated_at),
        Param::Integer(s.needs_review),
        Param::Text(&s.internal_comment),
        Param::Integer(attempt.map_or(1, |a| a.attempt)),
        Param::Text(attempt.map_or("", |a| a.state.as_str())),
        Param::BigInt(attempt.map_or(0, |a| a.created_at)),
        Param::BigInt(attempt.map_or(0, |a| a.updated_at)),
        Param::Integer(attempt.map_or(0, |a| a.passes)),
        Param::Integer(attempt.map_or(0, |a| a.void_on_decline)),
        Param::NullableText(attempt.and_then(|a| a.on_capture.as_deref())),
    ]
}

/// The reserve step's writes after the order is locked and the domain has planned: the
/// shipment, its lines, the guarded allocation of each line, the order's counters and the
/// pending capture attempt. The caller's transaction rolls it all back if a guard fails.
pub(crate) fn write_reservation(
    conn: &mut PgConnection,
    write: &ReservationWrite,
) -> Result<(), DbError> {
    #[derive(QueryableByName)]
    struct Moved {
        #[diesel(sql_type = BigInt)]
        moved: i64,
    }
    let line_ids: Vec<i64> = write.lines.iter().map(|l| l.line_id).collect();
    let quantities: Vec<i32> = write.lines.iter().map(|l| l.quantity).collect();
    let moved: Moved = Prepared::new(
        statement!(
            "WITH shipment AS ( \
           INSERT INTO shipments (order_id, number, state, gtg, shipped, carrier, service, \
             packages, tracking, return_slip_tracking, send_email, capture_amount, \
             carries_shipping_fee, capture_reference, created_at, updated_at, shipped_at, \
             needs_review, request_key, internal_comment) \
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $25, $14, $26, $15, \
             $27, $16, $28)), \
         line AS ( \
           INSERT INTO shipment_lines (order_id, number, line_id, quantity) \
           SELECT $1, $2, x.line_id, x.quantity FROM unnest($17, $18) AS x(line_id, quantity)), \
         moved AS ( \
           UPDATE order_lines SET allocated = allocated + x.quantity, \
             in_capture = in_capture + x.quantity * $19 \
           FROM unnest($17, $18) AS x(line_id, quantity) \
           WHERE order_lines.order_id = $1 AND order_lines.line_id = x.line_id \
             AND order_lines.allocated + x.quantity <= order_lines.quantity \
           RETURNING 1), \
         counters AS ( \
           UPDATE orders SET next_shipment_number = $2 + 1, committed = committed + $20, \
             shipping_fee_committed = CASE WHEN $21 = 1 THEN 1 ELSE shipping_fee_committed END \
           WHERE id = $1), \
         attempt AS ( \
           INSERT INTO capture_attempts (order_id, number, attempt, idempotency_key, amount, \
             final_capture, state, created_at, updated_at, passes, void_on_decline, on_capture) \
           SELECT $1, $2, $29, $22, $23, $24, $30, $31, $32, $33, $34, $35 \
           WHERE $22 IS NOT NULL) \
         SELECT count(*) AS moved FROM moved"
        ),
        reservation_params(write, &line_ids, &quantities),
    )
    .get_result(conn)?;
    if moved.moved != i64::try_from(write.lines.len()).unwrap_or(i64::MAX) {
        let line = write.lines.first().map_or(0, |l| l.line_id);
        return Err(line_changed(line));
    }
    Ok(())
}

/// What the compare-and-set write of a reservation did.
pub(crate) enum Reserved {
    /// It was written.
    Written,
    /// A concurrent writer changed the order first; nothing was written. With what the order's
    /// progress is now (`Progress::parse`), as the statement read it.
    Lost(Option<String>),
}

/// The reserve step's writes as one statement that commits on its own, only if the order's
/// version is still `version` (compare-and-set; the version is bumped with it). No line is
/// guarded by a `WHERE`: the version guarantees the plan was made from the lines as they are,
/// and the lines' `CHECK` constraints abort the whole statement if it ever were not so (a guard
/// that skipped a row would commit the rest). When it loses, it answers the order's progress
/// as it found it (the counters a plan reads, and the version), so that planning again needs
/// no read of its own.
pub(crate) fn write_reservation_if_unchanged(
    conn: &mut PgConnection,
    write: &ReservationWrite,
    version: i64,
    now: Timestamp,
) -> Result<Reserved, DbError> {
    let line_ids: Vec<i64> = write.lines.iter().map(|l| l.line_id).collect();
    let quantities: Vec<i32> = write.lines.iter().map(|l| l.quantity).collect();
    // By position: won, moved, progress.
    let (won, moved, progress): (i64, i64, Option<String>) = Prepared::new(
        statement!(
            "WITH counters AS ( \
           UPDATE orders SET next_shipment_number = $2 + 1, committed = committed + $20, \
             shipping_fee_committed = CASE WHEN $21 = 1 THEN 1 ELSE shipping_fee_committed END, \
             version = version + 1, updated_at = $37 \
           WHERE id = $1 AND version = $36 \
           RETURNING 1), \
         shipment AS ( \
           INSERT INTO shipments (order_id, number, state, gtg, shipped, carrier, service, \
             packages, tracking, return_slip_tracking, send_email, capture_amount, \
             carries_shipping_fee, capture_reference, created_at, updated_at, shipped_at, \
             needs_review, request_key, internal_comment) \
           SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $25, $14, $26, $15, \
             $27, $16, $28 \
           WHERE EXISTS (SELECT 1 FROM counters)), \
         line AS ( \
           INSERT INTO shipment_lines (order_id, number, line_id, quantity) \
           SELECT $1, $2, x.line_id, x.quantity FROM unnest($17, $18) AS x(line_id, quantity) \
           WHERE EXISTS (SELECT 1 FROM counters)), \
         moved AS ( \
           UPDATE order_lines SET allocated = allocated + x.quantity, \
             in_capture = in_capture + x.quantity * $19 \
           FROM unnest($17, $18) AS x(line_id, quantity) \
           WHERE order_lines.order_id = $1 AND order_lines.line_id = x.line_id \
             AND EXISTS (SELECT 1 FROM counters) \
           RETURNING 1), \
         attempt AS ( \
           INSERT INTO capture_attempts (order_id, number, attempt, idempotency_key, amount, \
             final_capture, state, created_at, updated_at, passes, void_on_decline, on_capture) \
           SELECT $1, $2, $29, $22, $23, $24, $30, $31, $32, $33, $34, $35 \
           WHERE $22 IS NOT NULL AND EXISTS (SELECT 1 FROM counters)) \
         SELECT (SELECT count(*) FROM counters) AS won, (SELECT count(*) FROM moved) AS moved, \
           CASE WHEN NOT EXISTS (SELECT 1 FROM counters) THEN ( \
             SELECT o.version || ',' || o.committed || ',' || o.shipping_fee_committed || ',' \
               || o.next_shipment_number || ';' || COALESCE((SELECT string_agg(l.line_id || ':' \
               || l.allocated || ':' || l.in_capture, ',' ORDER BY l.position) \
               FROM order_lines l WHERE l.order_id = $1), '') \
             FROM orders o WHERE o.id = $1) END AS progress"
        ),
        {
            let mut params = reservation_params(write, &line_ids, &quantities);
            params.extend([Param::BigInt(version), Param::BigInt(now.0)]);
            params
        },
    )
    .by_position::<(BigInt, BigInt, Nullable<Text>)>()
    .get_result(conn)?;
    match (won, moved) {
        (0, _) => Ok(Reserved::Lost(progress)),
        (_, moved) if moved == i64::try_from(write.lines.len()).unwrap_or(i64::MAX) => {
            Ok(Reserved::Written)
        }
        // The statement committed; a line it should have moved was not there. The CHECK
        // constraints make this unreachable for lines that exist; say so loudly if it happens.
        _ => Err(line_changed(write.lines.first().map_or(0, |l| l.line_id))),
    }
}

/// Settles a capture that succeeded, in one statement and its own transaction: the open attempt
/// becomes succeeded, its pending shipment captured, and the invoice is numbered and written.
/// The shipment's states come from the domain's state machine (a pending shipment that takes
/// `CaptureSucceeded`); the statement only guards that it is still pending, so it needs no read
/// first. A shipment whose capture carries waiting changes goes the portable way.
/// Answers the captured shipment with its lines (read in the same statement: no round trip
/// after), or `None` when nothing was changed here (the attempt was settled already, or changes
/// wait for its capture): the portable path then decides.
pub(crate) fn settle_captured(
    conn: &mut PgConnection,
    order_id: i64,
    number: u32,
    idempotency_key: &str,
    amount: i64,
    reference: &str,
    now: Timestamp,
) -> Result<Option<(ShipmentRow, Vec<ShipmentLineRow>)>, DbError> {
    let pending = ShipmentState::CapturePending;
    let captured = pending.on(ShipmentEvent::CaptureSucceeded)?;
    Prepared::new(
        statement!(concat!(
            "WITH attempt AS ( \
           UPDATE capture_attempts SET state = 'succeeded', provider_reference = $3, \
             updated_at = $4 \
           WHERE order_id = $1 AND idempotency_key = $2 AND state <> 'succeeded' \
             AND state <> 'failed' AND on_capture IS NULL \
           RETURNING number), \
         shipment AS ( \
           UPDATE shipments SET state = $7, capture_reference = $3, needs_review = 0, \
             updated_at = $4 \
           WHERE order_id = $1 AND number = $5 AND state = $8 \
             AND EXISTS (SELECT 1 FROM attempt) \
           RETURNING ",
            shipment_row_columns!(),
            "), \
         invoice_number AS ( \
           UPDATE counters SET value = value + 1 \
           WHERE name = 'invoice_number' AND EXISTS (SELECT 1 FROM attempt) \
           RETURNING value), \
         invoice AS ( \
           INSERT INTO invoices (number, order_id, shipment_number, amount, issued_at) \
           SELECT value, $1, $5, $6, $4 FROM invoice_number) \
         SELECT shipment.*, (SELECT string_agg(l.line_id::text || ':' || l.quantity::text, ',' \
           ORDER BY l.line_id) FROM shipment_lines l WHERE l.order_id = $1 AND l.number = $5) \
           AS lines \
         FROM shipment"
        )),
        vec![
            Param::BigInt(order_id),
            Param::Text(idempotency_key),
            Param::Text(reference),
            Param::BigInt(now.0),
            Param::Integer(int(number)),
            Param::BigInt(amount),
            Param::Text(captured.as_str()),
            Param::Text(pending.as_str()),
        ],
    )
    // The shipment's columns in `ShipmentRow`'s order, then its lines.
    .by_position::<(ShipmentRowSql, Nullable<Text>)>()
    .get_result::<(ShipmentRow, Option<String>)>(conn)
    .optional()?
    .map(|(row, lines)| {
        let lines = shipment_lines(order_id, int(number), lines)?;
        Ok::<_, DbError>((row, lines))
    })
    .transpose()
}

/// A shipment's lines as the statements here aggregate them (`line_id:quantity,...`).
fn shipment_lines(
    order_id: i64,
    number: i32,
    aggregated: Option<String>,
) -> Result<Vec<ShipmentLineRow>, DbError> {
    aggregated
        .unwrap_or_default()
        .split(',')
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (line_id, quantity) = l.split_once(':').unwrap_or(("", ""));
            match (line_id.parse(), quantity.parse()) {
                (Ok(line_id), Ok(quantity)) => Ok(ShipmentLineRow {
                    order_id,
                    number,
                    line_id,
                    quantity,
                }),
                _ => Err(DbError::Corrupt(format!("shipment line {l:?}"))),
            }
        })
        .collect()
}

/// The settle's first step in one statement: records an open attempt's outcome (`params` as
/// `shipments::SETTLE_ATTEMPT` binds them, `$6` the order and `$7` the key) and, when it did,
/// answers what the settle needs of it with the shipment as it stands and its lines. No row
/// when the attempt was settled already. The shipment is read `FOR UPDATE`, which takes its
/// newest committed version: a plain read would use the statement's snapshot, which predates
/// the attempt's row lock if the update had to wait for it (the settle writes the shipment
/// next, in the same transaction, so the lock is taken earlier, in the same order as before:
/// attempt, then shipment).
pub(crate) fn settle_attempt(
    conn: &mut PgConnection,
    params: Vec<Param<'_>>,
    order_id: i64,
    number: i32,
) -> Result<Option<(SettledAttempt, ShipmentRow, Vec<ShipmentLineRow>)>, DbError> {
    let settled: Option<(SettledAttempt, ShipmentRow, Option<String>)> = Prepared::new(
        statement!(concat!(
            "WITH a AS ( \
               UPDATE capture_attempts SET state = $1, \
                 provider_reference = COALESCE($2, provider_reference), \
                 decline_code = COALESCE($3, decline_code), \
                 decline_message = COALESCE($4, decline_message), updated_at = $5 \
               WHERE order_id = $6 AND idempotency_key = $7 AND state <> $8 AND state <> $9 \
               RETURNING number, void_on_decline, on_capture) \
             SELECT a.void_on_decline, a.on_capture, ",
            shipment_row_columns!("s."),
            ", (SELECT string_agg(l.line_id::text || ':' || l.quantity::text, ',' \
                 ORDER BY l.line_id) FROM shipment_lines l \
                 WHERE l.order_id = $6 AND l.number = a.number) AS lines \
             FROM a JOIN shipments s ON s.order_id = $6 AND s.number = a.number \
             FOR UPDATE OF s"
        )),
        params,
    )
    .by_position::<(AttemptSql, ShipmentRowSql, Nullable<Text>)>()
    .get_result(conn)
    .optional()?;
    match settled {
        Some((attempt, shipment, lines)) => {
            let lines = shipment_lines(order_id, number, lines)?;
            Ok(Some((attempt, shipment, lines)))
        }
        None => Ok(None),
    }
}

/// The `WITH` clauses that number and write the invoice of `$23` issued at `$24` and, when
/// `$25` is 1, queue the shipment's confirmation (kind `$26`, state `$27`) unless one is
/// queued, once the clause named `$after` has written its row: `invoice` answers the invoice.
macro_rules! invoice_and_confirmation {
    ($after:literal) => {
        concat!(
            "invoice_number AS ( \
               UPDATE counters SET value = value + 1 \
               WHERE name = 'invoice_number' AND EXISTS (SELECT 1 FROM ",
            $after,
            ") RETURNING value), \
             invoice AS ( \
               INSERT INTO invoices (number, order_id, shipment_number, amount, issued_at) \
               SELECT value, $1, $2, $23, $24 FROM invoice_number \
               RETURNING 1), \
             outbox_id AS ( \
               UPDATE counters SET value = value + 1 \
               WHERE name = 'outbox_id' AND $25 = 1 AND EXISTS (SELECT 1 FROM ",
            $after,
            ") AND NOT EXISTS (SELECT 1 FROM outbox \
                   WHERE order_id = $1 AND number = $2 AND kind = $26) \
               RETURNING value), \
             confirmation AS ( \
               INSERT INTO outbox (id, order_id, number, kind, state, attempts, due_at, \
                 created_at) \
               SELECT value, $1, $2, $26, $27, 0, $24, $24 \
               FROM outbox_id)"
        )
    };
}

/// A later capture's open attempt with the changes that wait for it, and its shipment with its
/// lines and its row version (`xmin`, which every update of the row changes), read without a
/// lock: what [`settle_with_changes_if_unchanged`] decides from. `$3`, `$4`: the settled
/// states. No row when the attempt is not open.
pub(crate) fn read_open_attempt(
    conn: &mut PgConnection,
    order_id: i64,
    number: i32,
    idempotency_key: &str,
) -> Result<Option<OpenAttempt>, DbError> {
    type Read = (SettledAttempt, ShipmentRow, String, Option<String>);
    let read: Option<Read> = Prepared::new(
        statement!(concat!(
            "SELECT a.void_on_decline, a.on_capture, ",
            shipment_row_columns!("s."),
            ", s.xmin::text AS version, \
               (SELECT string_agg(l.line_id::text || ':' || l.quantity::text, ',' \
                 ORDER BY l.line_id) FROM shipment_lines l \
                 WHERE l.order_id = $1 AND l.number = a.number) AS lines \
             FROM capture_attempts a JOIN shipments s ON s.order_id = $1 AND s.number = a.number \
             WHERE a.order_id = $1 AND a.idempotency_key = $2 AND a.state <> $3 \
               AND a.state <> $4"
        )),
        vec![
            Param::BigInt(order_id),
            Param::Text(idempotency_key),
            Param::Text(crate::attempts::ATTEMPT_SUCCEEDED),
            Param::Text(crate::attempts::ATTEMPT_FAILED),
        ],
    )
    .by_position::<(AttemptSql, ShipmentRowSql, Text, Nullable<Text>)>()
    .get_result(conn)
    .optional()?;
    read.map(|(attempt, shipment, version, lines)| {
        Ok(OpenAttempt {
            attempt,
            lines: shipment_lines(order_id, number, lines)?,
            shipment,
            version,
        })
    })
    .transpose()
}

/// What [`read_open_attempt`] answers.
pub(crate) struct OpenAttempt {
    pub(crate) attempt: SettledAttempt,
    pub(crate) shipment: ShipmentRow,
    pub(crate) lines: Vec<ShipmentLineRow>,
    /// The shipment row's version (`xmin`) as read.
    pub(crate) version: String,
}

/// The settle of a later capture that succeeded, with the changes that waited for it, as the
/// domain decided them from [`read_open_attempt`]: one statement that commits on its own. The
/// shipment's row is written (`params` `$1`..`$27` as [`write_row_and_invoice`] binds them)
/// only if it is still the version read (`$28`); the attempt becomes succeeded (reference
/// `$14`, state `$29`) only if that write happened and it is still open (`$30` the other
/// settled state) with the same waiting changes (`$31`), key `$32`; the invoice and the
/// confirmation follow the attempt. Answers how many rows the row's write, the attempt and the
/// invoice changed: all 1, or all 0 when the shipment or its attempt changed since the read.
pub(crate) fn settle_with_changes_if_unchanged(
    conn: &mut PgConnection,
    params: Vec<Param<'_>>,
) -> Result<(i64, i64, i64), DbError> {
    #[derive(QueryableByName)]
    struct Written {
        #[diesel(sql_type = BigInt)]
        written: i64,
        #[diesel(sql_type = BigInt)]
        settled: i64,
        #[diesel(sql_type = BigInt)]
        invoiced: i64,
    }
    let counts: Written = Prepared::new(
        statement!(concat!(
            "WITH w AS (",
            crate::persist::write_row_sql!(),
            " AND xmin::text = $28 RETURNING 1), \
                 a AS ( \
                   UPDATE capture_attempts SET state = $29, provider_reference = $14, \
                     updated_at = $24 \
                   WHERE order_id = $1 AND idempotency_key = $32 AND state <> $29 \
                     AND state <> $30 AND on_capture = $31 AND EXISTS (SELECT 1 FROM w) \
                   RETURNING 1), ",
            invoice_and_confirmation!("a"),
            " SELECT (SELECT count(*) FROM w) AS written, \
                   (SELECT count(*) FROM a) AS settled, \
                   (SELECT count(*) FROM invoice) AS invoiced"
        )),
        params,
    )
    .get_result(conn)?;
    Ok((counts.written, counts.settled, counts.invoiced))
}

/// What starting a later capture writes, as [`start_capture`] takes it: the decided change and
/// the attempt's columns.
pub(crate) struct CaptureStartWrite<'a> {
    pub(crate) change: &'a ShipmentChange,
    /// The provider key without its attempt number (`attempts::provider_key_prefix`).
    pub(crate) key_prefix: &'a str,
    pub(crate) amount: i64,
    pub(crate) final_capture: bool,
    /// The changes that wait for the capture, encoded (`changes::encode`).
    pub(crate) on_capture: &'a str,
    /// The idempotency key of the request that started it.
    pub(crate) request_key: Option<&'a str>,
    pub(crate) now: Timestamp,
}

impl CaptureStartWrite<'_> {
    /// Whether one statement can write it: its lines are unchanged and each line moves once
    /// (an `UPDATE ... FROM unnest(...)` changes a row once however often it is named).
    pub(crate) fn fits_one_statement(&self) -> bool {
        let moves = self.change.line_moves();
        !self.change.lines_changed()
            && moves
                .iter()
                .enumerate()
                .all(|(i, a)| moves[..i].iter().all(|b| b.line_id != a.line_id))
    }
}

/// A change's line moves as the three arrays `unnest` takes.
struct MoveArrays {
    line_ids: Vec<i64>,
    /// What each adds to its line's allocated units.
    allocated: Vec<i32>,
    /// What each adds to its line's units in capture.
    in_capture: Vec<i32>,
}

impl MoveArrays {
    fn of(moves: &[consign_domain::LineMove]) -> Result<Self, DbError> {
        let to_i32 = |by: i64, line: i64| i32::try_from(by).map_err(|_| line_changed(line));
        Ok(MoveArrays {
            line_ids: moves.iter().map(|m| m.line_id.0).collect(),
            allocated: moves
                .iter()
                .map(|m| to_i32(m.allocated, m.line_id.0))
                .collect::<Result<_, _>>()?,
            in_capture: moves
                .iter()
                .map(|m| to_i32(m.in_capture, m.line_id.0))
                .collect::<Result<_, _>>()?,
        })
    }
}

/// Starts a later capture (complete or capture on an uncaptured shipment) in one statement,
/// inside the caller's transaction, under the order lock: the shipment's state, flags and
/// capture amount (guarded by the state the change was decided on), the line moves and the
/// order's counters with the portable statements' guards (`persist.rs`), and the next attempt
/// numbered by the statement itself. Answers the attempt's provider key; a guard that did not
/// hold is an error, and the caller's transaction rolls everything back.
pub(crate) fn start_capture(
    conn: &mut PgConnection,
    write: &CaptureStartWrite<'_>,
) -> Result<String, DbError> {
    #[derive(QueryableByName)]
    struct Started {
        #[diesel(sql_type = BigInt)]
        shipment: i64,
        #[diesel(sql_type = BigInt)]
        moved: i64,
        #[diesel(sql_type = BigInt)]
        counters: i64,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
        idempotency_key: Option<String>,
    }
    let change = write.change;
    let (before, after) = (change.before(), change.after());
    let id = after.id();
    let moves = change.line_moves();
    let MoveArrays {
        line_ids,
        allocated,
        in_capture,
    } = MoveArrays::of(moves)?;
    let committed = change.committed_change();
    let fee = change.shipping_fee_committed();
    let moves_order = !moves.is_empty() || committed != 0 || fee.is_some();
    let started: Started = Prepared::new(
        statement!(
            "WITH shipment AS ( \
               UPDATE shipments SET state = $1, capture_amount = $2, carries_shipping_fee = $3, \
                 gtg = $4, shipped = $5, needs_review = $6, updated_at = $7 \
               WHERE order_id = $8 AND number = $9 AND state = $10 \
               RETURNING 1), \
             moved AS ( \
               UPDATE order_lines SET allocated = order_lines.allocated + x.add_allocated, \
                 in_capture = order_lines.in_capture + x.add_in_capture \
               FROM unnest($11, $12, $13) AS x(line_id, add_allocated, add_in_capture) \
               WHERE order_lines.order_id = $8 AND order_lines.line_id = x.line_id \
                 AND order_lines.allocated + x.add_allocated <= order_lines.quantity \
                 AND order_lines.in_capture + x.add_in_capture >= 0 \
                 AND order_lines.in_capture + x.add_in_capture \
                   <= order_lines.allocated + x.add_allocated \
               RETURNING 1), \
             counters AS ( \
               UPDATE orders SET committed = committed + $14, \
                 shipping_fee_committed = COALESCE($15, shipping_fee_committed), \
                 version = version + 1 \
               WHERE id = $8 AND committed + $14 >= 0 AND $16 = 1 \
               RETURNING 1), \
             attempt AS ( \
               INSERT INTO capture_attempts (order_id, number, attempt, idempotency_key, amount, \
                 final_capture, state, created_at, updated_at, passes, void_on_decline, \
                 on_capture, request_key) \
               SELECT $8, $9, COALESCE(MAX(attempt), 0) + 1, \
                 $17 || CAST(COALESCE(MAX(attempt), 0) + 1 AS TEXT), $18, $19, $20, $7, $7, 0, 0, \
                 $21, $22 \
               FROM capture_attempts WHERE order_id = $8 AND number = $9 \
               RETURNING idempotency_key) \
             SELECT (SELECT count(*) FROM shipment) AS shipment, \
               (SELECT count(*) FROM moved) AS moved, \
               (SELECT count(*) FROM counters) AS counters, \
               (SELECT idempotency_key FROM attempt) AS idempotency_key"
        ),
        {
            let mut params = crate::persist::decided_columns(change, write.now);
            params.extend([
                Param::BigInt(id.order.0),
                Param::Integer(int(id.number)),
                Param::Text(before.state().as_str()),
                Param::BigInts(&line_ids),
                Param::Integers(&allocated),
                Param::Integers(&in_capture),
                Param::BigInt(committed),
                Param::NullableInteger(fee.map(flag)),
                Param::Integer(flag(moves_order)),
                Param::Text(write.key_prefix),
                Param::BigInt(write.amount),
                Param::Integer(flag(write.final_capture)),
                Param::Text(ATTEMPT_PENDING),
                Param::NullableText(Some(write.on_capture)),
                Param::NullableText(write.request_key),
            ]);
            params
        },
    )
    .get_result(conn)?;
    if started.shipment != 1 {
        return Err(DbError::Corrupt(format!(
            "shipment {id} changed under the order lock"
        )));
    }
    if started.moved != i64::try_from(moves.len()).unwrap_or(i64::MAX) {
        return Err(line_changed(line_ids.first().copied().unwrap_or(0)));
    }
    if started.counters != i64::from(flag(moves_order)) {
        return Err(DbError::Corrupt(format!(
            "order {}'s committed amount changed under the order lock",
            id.order.0
        )));
    }
    started
        .idempotency_key
        .ok_or_else(|| DbError::Corrupt(format!("no attempt recorded for {id}")))
}

/// Starts a later capture as [`start_capture`] writes it, in one statement that commits on its
/// own, only if the order's version is still `version` and the shipment is still in the state
/// the change was decided from (compare-and-set, as the reserve's write: the version is bumped
/// with it). Every other write of the statement is gated on that update having happened, and
/// none is guarded by a `WHERE` of its own: with the version unchanged, the plan was made from
/// the lines and counters as they are (every write that changes them bumps the version), and
/// the `CHECK` constraints abort the whole statement if that were ever not so (a guard that
/// skipped a row would commit the rest). Answers the attempt's provider key, or `None` when the
/// order changed since it was read and nothing was written.
pub(crate) fn start_capture_if_unchanged(
    conn: &mut PgConnection,
    write: &CaptureStartWrite<'_>,
    version: i64,
) -> Result<Option<String>, DbError> {
    #[derive(QueryableByName)]
    struct Started {
        #[diesel(sql_type = BigInt)]
        won: i64,
        #[diesel(sql_type = BigInt)]
        shipment: i64,
        #[diesel(sql_type = BigInt)]
        moved: i64,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
        idempotency_key: Option<String>,
    }
    let change = write.change;
    let (before, after) = (change.before(), change.after());
    let id = after.id();
    let moves = change.line_moves();
    let MoveArrays {
        line_ids,
        allocated,
        in_capture,
    } = MoveArrays::of(moves)?;
    let started: Started = Prepared::new(
        statement!(
            "WITH gate AS ( \
               UPDATE orders SET committed = committed + $14, \
                 shipping_fee_committed = COALESCE($15, shipping_fee_committed), \
                 version = version + 1, updated_at = $7 \
               WHERE id = $8 AND version = $16 \
                 AND EXISTS (SELECT 1 FROM shipments \
                   WHERE order_id = $8 AND number = $9 AND state = $10) \
               RETURNING 1), \
             shipment AS ( \
               UPDATE shipments SET state = $1, capture_amount = $2, carries_shipping_fee = $3, \
                 gtg = $4, shipped = $5, needs_review = $6, updated_at = $7 \
               WHERE order_id = $8 AND number = $9 AND EXISTS (SELECT 1 FROM gate) \
               RETURNING 1), \
             moved AS ( \
               UPDATE order_lines SET allocated = order_lines.allocated + x.add_allocated, \
                 in_capture = order_lines.in_capture + x.add_in_capture \
               FROM unnest($11, $12, $13) AS x(line_id, add_allocated, add_in_capture) \
               WHERE order_lines.order_id = $8 AND order_lines.line_id = x.line_id \
                 AND EXISTS (SELECT 1 FROM gate) \
               RETURNING 1), \
             attempt AS ( \
               INSERT INTO capture_attempts (order_id, number, attempt, idempotency_key, amount, \
                 final_capture, state, created_at, updated_at, passes, void_on_decline, \
                 on_capture, request_key) \
               SELECT $8, $9, next.n, $17 || CAST(next.n AS TEXT), $18, $19, $20, $7, $7, 0, 0, \
                 $21, $22 \
               FROM (SELECT COALESCE(MAX(attempt), 0) + 1 AS n FROM capture_attempts \
                 WHERE order_id = $8 AND number = $9) AS next \
               WHERE EXISTS (SELECT 1 FROM gate) \
               RETURNING idempotency_key) \
             SELECT (SELECT count(*) FROM gate) AS won, \
               (SELECT count(*) FROM shipment) AS shipment, \
               (SELECT count(*) FROM moved) AS moved, \
               (SELECT idempotency_key FROM attempt) AS idempotency_key"
        ),
        {
            let mut params = crate::persist::decided_columns(change, write.now);
            params.extend([
                Param::BigInt(id.order.0),
                Param::Integer(int(id.number)),
                Param::Text(before.state().as_str()),
                Param::BigInts(&line_ids),
                Param::Integers(&allocated),
                Param::Integers(&in_capture),
                Param::BigInt(change.committed_change()),
                Param::NullableInteger(change.shipping_fee_committed().map(flag)),
                Param::BigInt(version),
                Param::Text(write.key_prefix),
                Param::BigInt(write.amount),
                Param::Integer(flag(write.final_capture)),
                Param::Text(ATTEMPT_PENDING),
                Param::NullableText(Some(write.on_capture)),
                Param::NullableText(write.request_key),
            ]);
            params
        },
    )
    .get_result(conn)?;
    if started.won == 0 {
        return Ok(None);
    }
    // Committed: with the version unchanged these cannot miss; say so loudly if one ever did.
    if started.shipment != 1 {
        return Err(DbError::Corrupt(format!(
            "shipment {id} was not written by its capture's start"
        )));
    }
    if started.moved != i64::try_from(moves.len()).unwrap_or(i64::MAX) {
        return Err(line_changed(line_ids.first().copied().unwrap_or(0)));
    }
    started
        .idempotency_key
        .map(Some)
        .ok_or_else(|| DbError::Corrupt(format!("no attempt recorded for {id}")))
}

/// Queues an outbox message of `kind` for a shipment, in the outbox's `state` for a message
/// due now, unless one of that kind is queued already, in one statement (the portable path: a
/// check, the counter, the row), inside the caller's transaction, whose order lock keeps two
/// from being queued at once.
pub(crate) fn queue_once(
    conn: &mut PgConnection,
    order_id: i64,
    number: i32,
    (kind, state): (&str, &str),
    now: Timestamp,
) -> Result<(), DbError> {
    Prepared::new(
        statement!(
            "WITH id AS ( \
               UPDATE counters SET value = value + 1 \
               WHERE name = 'outbox_id' AND NOT EXISTS (SELECT 1 FROM outbox \
                 WHERE order_id = $1 AND number = $2 AND kind = $3) \
               RETURNING value) \
             INSERT INTO outbox (id, order_id, number, kind, state, attempts, due_at, created_at) \
             SELECT value, $1, $2, $3, $4, 0, $5, $5 FROM id"
        ),
        vec![
            Param::BigInt(order_id),
            Param::Integer(number),
            Param::Text(kind),
            Param::Text(state),
            Param::BigInt(now.0),
        ],
    )
    .execute(conn)?;
    Ok(())
}

/// Numbers and writes a captured shipment's invoice in one statement (the portable path: the
/// counter, then the row), inside the caller's transaction: both commit or neither.
pub(crate) fn issue_invoice(
    conn: &mut PgConnection,
    order_id: i64,
    number: i32,
    amount: i64,
    now: Timestamp,
) -> Result<(), DbError> {
    let written = Prepared::new(
        statement!(
            "WITH invoice_number AS ( \
               UPDATE counters SET value = value + 1 WHERE name = 'invoice_number' \
               RETURNING value) \
             INSERT INTO invoices (number, order_id, shipment_number, amount, issued_at) \
             SELECT value, $1, $2, $3, $4 FROM invoice_number"
        ),
        vec![
            Param::BigInt(order_id),
            Param::Integer(number),
            Param::BigInt(amount),
            Param::BigInt(now.0),
        ],
    )
    .execute(conn)?;
    if written != 1 {
        return Err(DbError::Corrupt("no invoice_number counter".into()));
    }
    Ok(())
}

/// `persist::write_row`'s statement (`params` `$1`..`$22` as it binds them) and, when it wrote
/// the row, the invoice of `$23` issued at `$24` and, when `$25` is 1, the shipping
/// confirmation (kind `$26`, state `$27`) queued as [`queue_once`] does, in one statement
/// inside the caller's transaction. Answers how many rows the row's write and the invoice
/// wrote; the caller rolls back unless both are 1.
pub(crate) fn write_row_and_invoice(
    conn: &mut PgConnection,
    params: Vec<Param<'_>>,
) -> Result<(i64, i64), DbError> {
    #[derive(QueryableByName)]
    struct Written {
        #[diesel(sql_type = BigInt)]
        written: i64,
        #[diesel(sql_type = BigInt)]
        invoiced: i64,
    }
    let counts: Written = Prepared::new(
        statement!(concat!(
            "WITH w AS (",
            crate::persist::write_row_sql!(),
            " RETURNING 1), ",
            invoice_and_confirmation!("w"),
            " SELECT (SELECT count(*) FROM w) AS written, \
                   (SELECT count(*) FROM invoice) AS invoiced"
        )),
        params,
    )
    .get_result(conn)?;
    Ok((counts.written, counts.invoiced))
}
