//! Settles of a capture that succeeded decided from rows already in hand: the rows this
//! instance's reserve or capture start wrote and kept (SQLite, [`crate::reserved`]), so that the
//! writer thread reads nothing, and the rows PostgreSQL's unlocked settle read
//! ([`settled_with_changes`]). Each write is guarded so that it takes effect only if the
//! shipment and its attempt are still as the rows say; otherwise it writes nothing and the
//! caller settles from what is stored.

use consign_domain::{CaptureOrigin, Settlement, ShipmentState};
use consign_ports::{CaptureAttempt, ShipmentView, Timestamp};
use diesel::Connection;

use crate::attempts::{ATTEMPT_FAILED, ATTEMPT_SUCCEEDED};
use crate::connection::AnyConnection;
use crate::error::DbError;
use crate::persist::{apply_written, decided_columns};
use crate::prepared::{execute, statement, Param};
use crate::reserved::ReservedRows;
use crate::rows::{int, ShipmentLineRow, ShipmentRow};

/// A later capture's settle, decided: the shipment's row and lines as the settle and the
/// changes that waited for it leave them.
pub(crate) struct SettledWithChanges {
    pub(crate) row: ShipmentRow,
    pub(crate) lines: Vec<ShipmentLineRow>,
    /// The state the settle was decided from (the write's guard).
    pub(crate) decided_from: ShipmentState,
    /// A shipping confirmation is due.
    pub(crate) confirm: bool,
}

/// Lets the domain settle a capture that succeeded on the shipment's rows (as read, or as this
/// instance wrote them) and apply the changes that waited for it (`waiting`, encoded). `None`
/// when the shipment is not pending, the domain refuses, or the decision moves anything
/// besides the shipment's row (the locked transaction writes those).
pub(crate) fn settled_with_changes(
    mut row: ShipmentRow,
    mut lines: Vec<ShipmentLineRow>,
    currency: consign_domain::Currency,
    origin: CaptureOrigin,
    waiting: &str,
    reference: &str,
    now: Timestamp,
) -> Option<SettledWithChanges> {
    let shipment = row.to_shipment(currency, &lines).ok()?;
    if shipment.state() != ShipmentState::CapturePending {
        return None;
    }
    let change = shipment.settle(Settlement::Captured, origin).ok()?;
    let changes = crate::changes::decode(waiting).ok()?;
    apply_written(&mut row, &mut lines, &change, Some(reference), now);
    let completed =
        crate::workflow::complete(change.after(), &mut row, &mut lines, &changes, now).ok()?;
    if moves_counters(&change)
        || moves_counters(&completed.change)
        || change.takes_units_out_of_capture()
    {
        return None;
    }
    Some(SettledWithChanges {
        row,
        lines,
        decided_from: change.before().state(),
        confirm: completed.confirm,
    })
}

/// [`crate::persist::write_row`] guarded as [`CAPTURE_AS_RESERVED`] is: the shipment still in
/// the state decided from and unchanged since its capture started (`$23`), its attempt still
/// open (`$24`-`$26`) with the same changes waiting (`$27`).
const CAPTURE_AS_STARTED: &str = concat!(
    crate::persist::write_row_sql!(),
    " AND updated_at = $23 AND EXISTS (SELECT 1 FROM capture_attempts WHERE order_id = $1 \
     AND idempotency_key = $24 AND state <> $25 AND state <> $26 AND on_capture = $27)"
);

/// Settles a later capture that succeeded, with the changes that waited for it, from the
/// shipment's rows as this instance's start of the capture wrote them (SQLite): the domain
/// decides from those rows, and the row is written only if the shipment and its attempt are
/// still as started; then the attempt, the invoice and any confirmation. No read on the writer
/// thread. `None`, with nothing written, when the decision needs the locked path or the guards
/// did not hold (the settle then reads what is stored).
pub(crate) fn settle_as_started(
    conn: &mut AnyConnection,
    attempt: &CaptureAttempt,
    reference: &str,
    started: &ReservedRows,
    waiting: &str,
    now: Timestamp,
) -> Result<Option<ShipmentView>, DbError> {
    let (order_id, number) = (started.row.order_id, started.row.number);
    if (order_id, number) != (attempt.shipment.order.0, int(attempt.shipment.number)) {
        return Ok(None);
    }
    let Some(settled) = settled_with_changes(
        started.row.clone(),
        started.lines.clone(),
        started.currency,
        CaptureOrigin::Later,
        waiting,
        reference,
        now,
    ) else {
        return Ok(None);
    };
    conn.transaction(|conn| {
        let mut params = crate::reservation::shipment_params(&settled.row);
        params.extend([
            Param::Text(settled.decided_from.as_str()),
            Param::BigInt(started.row.updated_at),
            Param::Text(&attempt.idempotency_key),
            Param::Text(ATTEMPT_SUCCEEDED),
            Param::Text(ATTEMPT_FAILED),
            Param::Text(waiting),
        ]);
        if execute(conn, statement!(CAPTURE_AS_STARTED), params)? == 0 {
            return Ok(None);
        }
        settle_attempt_captured(conn, attempt, reference, now)?;
        crate::outbox::issue_invoice(conn, order_id, number, attempt.amount.minor(), now)?;
        if settled.confirm {
            crate::outbox::queue_confirmation(conn, order_id, number, now)?;
        }
        Ok(Some(
            settled.row.into_view(started.currency, &settled.lines)?,
        ))
    })
}

/// [`ATTEMPT_CAPTURED`] on an attempt the caller's guarded write found open: it must change it.
fn settle_attempt_captured(
    conn: &mut AnyConnection,
    attempt: &CaptureAttempt,
    reference: &str,
    now: Timestamp,
) -> Result<(), DbError> {
    let settled = execute(
        conn,
        statement!(ATTEMPT_CAPTURED),
        vec![
            Param::Text(ATTEMPT_SUCCEEDED),
            Param::Text(reference),
            Param::BigInt(now.0),
            Param::BigInt(attempt.shipment.order.0),
            Param::Text(&attempt.idempotency_key),
            Param::Text(ATTEMPT_FAILED),
        ],
    )?;
    if settled != 1 {
        return Err(DbError::Corrupt(format!(
            "the open attempt of {} changed within its settle",
            attempt.shipment
        )));
    }
    Ok(())
}

/// Whether a change moves anything besides the shipment's row: its lines, an order line's
/// counters, the order's committed amount or its shipping fee.
fn moves_counters(change: &consign_domain::ShipmentChange) -> bool {
    change.lines_changed()
        || !change.line_moves().is_empty()
        || change.committed_change() != 0
        || change.shipping_fee_committed().is_some()
}

/// `shipments::SETTLE_ATTEMPT`'s work on a shipment as it was reserved: the domain's decided columns as
/// `$1`..`$7` (`persist::decided_columns`), the reference, then the guards: still in the state
/// the decision was made from, unchanged since it was reserved, and its attempt still open with
/// no changes waiting for the capture.
const CAPTURE_AS_RESERVED: &str = "UPDATE shipments SET state = $1, capture_amount = $2, \
     carries_shipping_fee = $3, gtg = $4, shipped = $5, needs_review = $6, updated_at = $7, \
     capture_reference = $8 \
     WHERE order_id = $9 AND number = $10 AND state = $11 AND updated_at = $12 \
     AND EXISTS (SELECT 1 FROM capture_attempts WHERE order_id = $9 AND idempotency_key = $13 \
     AND state <> $14 AND state <> $15 AND on_capture IS NULL)";

/// The attempt [`CAPTURE_AS_RESERVED`] found open, succeeded.
const ATTEMPT_CAPTURED: &str = "UPDATE capture_attempts SET state = $1, provider_reference = $2, \
     updated_at = $3 WHERE order_id = $4 AND idempotency_key = $5 AND state <> $1 AND state <> $6";

/// Settles a capture that succeeded from the shipment's rows as this instance reserved it
/// (SQLite): the domain settles that shipment, and its change is written only if the shipment
/// is still as reserved and its attempt open; then the attempt and the invoice. Answers the
/// shipment from the rows and the change, with no read on the writer thread; `None`, with
/// nothing written, when the guards did not hold (the settle then reads what is stored).
pub(crate) fn settle_as_reserved(
    conn: &mut AnyConnection,
    attempt: &CaptureAttempt,
    reference: &str,
    reserved: &ReservedRows,
    now: Timestamp,
) -> Result<Option<ShipmentView>, DbError> {
    let (order_id, number) = (reserved.row.order_id, reserved.row.number);
    let shipment = reserved
        .row
        .to_shipment(reserved.currency, &reserved.lines)?;
    if shipment.id() != attempt.shipment || shipment.state() != ShipmentState::CapturePending {
        return Ok(None);
    }
    let change = shipment.settle(Settlement::Captured, CaptureOrigin::AtCreation)?;
    conn.transaction(|conn| {
        let mut params = decided_columns(&change, now);
        params.extend([
            Param::Text(reference),
            Param::BigInt(order_id),
            Param::Integer(number),
            Param::Text(change.before().state().as_str()),
            Param::BigInt(reserved.row.updated_at),
            Param::Text(&attempt.idempotency_key),
            Param::Text(ATTEMPT_SUCCEEDED),
            Param::Text(ATTEMPT_FAILED),
        ]);
        if execute(conn, statement!(CAPTURE_AS_RESERVED), params)? == 0 {
            return Ok(None);
        }
        settle_attempt_captured(conn, attempt, reference, now)?;
        crate::outbox::issue_invoice(conn, order_id, number, attempt.amount.minor(), now)?;
        let (mut row, mut lines) = (reserved.row.clone(), reserved.lines.clone());
        apply_written(&mut row, &mut lines, &change, Some(reference), now);
        Ok(Some(row.into_view(reserved.currency, &lines)?))
    })
}
