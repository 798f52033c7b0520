//! Writes a change the domain decided ([`ShipmentChange`]): the shipment's state, flags, capture
//! and lines, and the order's counters. Every statement is guarded so that it agrees with the
//! domain's own checks: the shipment must still be in the state the change was decided on, and
//! every line stays within `0 <= in_capture <= allocated <= quantity`. A guard that fails means
//! the rows changed under the order lock, and the transaction is rolled back.

use consign_domain::{ShipmentChange, ShipmentState};
use consign_ports::Timestamp;
use diesel::prelude::*;

use crate::connection::AnyConnection;
use crate::error::DbError;
use crate::line_moves::{line_changed, move_line};
use crate::prepared::{execute, statement, Param};
use crate::reservation::shipment_params;
use crate::rows::{flag, int, ShipmentLineRow, ShipmentRow};
use crate::schema::shipment_lines;

/// The shipment's new state, flags and capture (and the provider's reference of a settled
/// capture), guarded by the state the change was decided on.
const UPDATE_SHIPMENT: &str = "UPDATE shipments SET state = $1, capture_amount = $2, \
     carries_shipping_fee = $3, gtg = $4, shipped = $5, needs_review = $6, updated_at = $7, \
     capture_reference = COALESCE($8, capture_reference) \
     WHERE order_id = $9 AND number = $10 AND state = $11";

/// The order's counters after a change that moved them: the committed amount (never below
/// zero), the shipping fee's flag when it changed, and a new version, so that a shipment
/// planned from a read before this is planned again.
const MOVE_ORDER: &str = "UPDATE orders SET committed = committed + $1, \
     shipping_fee_committed = COALESCE($2, shipping_fee_committed), version = version + 1 \
     WHERE id = $3 AND committed + $1 >= 0";

/// Writes `change`; `capture_reference` is recorded with a settled capture.
pub(crate) fn write_change(
    conn: &mut AnyConnection,
    change: &ShipmentChange,
    capture_reference: Option<&str>,
    now: Timestamp,
) -> Result<(), DbError> {
    let (before, after) = (change.before(), change.after());
    let id = after.id();
    let (order_id, number) = (id.order.0, int(id.number));
    let mut params = decided_columns(change, now);
    params.extend([
        Param::NullableText(capture_reference),
        Param::BigInt(order_id),
        Param::Integer(number),
        Param::Text(before.state().as_str()),
    ]);
    let written = execute(conn, statement!(UPDATE_SHIPMENT), params)?;
    if written != 1 {
        return Err(DbError::Corrupt(format!(
            "shipment {id} changed under the order lock"
        )));
    }
    write_moves(conn, change)
}

/// The shipment's columns a change decides, as `$1`..`$7`: state, capture amount, shipping
/// fee, good to go, shipped, needs review, updated at (PostgreSQL's start of a capture numbers
/// them the same way).
pub(crate) fn decided_columns(change: &ShipmentChange, now: Timestamp) -> Vec<Param<'_>> {
    let after = change.after();
    let flags = after.flags();
    vec![
        Param::Text(after.state().as_str()),
        Param::NullableBigInt(after.capture_amount().map(|m| m.minor())),
        Param::Integer(flag(after.carries_shipping_fee())),
        Param::Integer(flag(flags.good_to_go)),
        Param::Integer(flag(flags.shipped)),
        Param::Integer(flag(flags.needs_review)),
        Param::BigInt(now.0),
    ]
}

/// Every column a settle or complete decides, from a row the caller computed: the changes
/// applied to the row read under the lock ([`apply_written`]) and complete's details. A macro,
/// so that PostgreSQL's statements that write the row with its invoice (`postgres.rs`) build on
/// the same text; each adds its guards after it.
macro_rules! write_row_sql {
    () => {
        "UPDATE shipments SET state = $3, gtg = $4, shipped = $5, carrier = $6, service = $7, \
         packages = $8, tracking = $9, return_slip_tracking = $10, send_email = $11, \
         capture_amount = $12, carries_shipping_fee = $13, capture_reference = $14, \
         updated_at = $16, shipped_at = $17, needs_review = $18, internal_comment = $20 \
         WHERE order_id = $1 AND number = $2 AND state = $22"
    };
}
pub(crate) use write_row_sql;

const WRITE_ROW: &str = write_row_sql!();

/// Writes the shipment's row as computed by the caller from the changes it decided (one
/// statement for several changes: a settle and the complete that waited for it), guarded by
/// the state the first of them was decided on. The counters each change moves are written by
/// [`write_moves`].
pub(crate) fn write_row(
    conn: &mut AnyConnection,
    row: &ShipmentRow,
    decided_from: ShipmentState,
) -> Result<(), DbError> {
    // The row's columns as `$1`..`$21` (as the shipment's insert numbers them), then the guard.
    let mut params = shipment_params(row);
    params.push(Param::Text(decided_from.as_str()));
    let written = execute(conn, statement!(WRITE_ROW), params)?;
    if written != 1 {
        return Err(DbError::Corrupt(format!(
            "shipment {}-{} changed under the order lock",
            row.order_id, row.number
        )));
    }
    Ok(())
}

/// What a change moves besides the shipment's row: its lines when they changed, each order
/// line's counters and the order's committed amount, all guarded.
pub(crate) fn write_moves(
    conn: &mut AnyConnection,
    change: &ShipmentChange,
) -> Result<(), DbError> {
    let id = change.after().id();
    let (order_id, number) = (id.order.0, int(id.number));
    let after = change.after();
    if change.lines_changed() {
        diesel::delete(
            shipment_lines::table
                .filter(shipment_lines::order_id.eq(order_id))
                .filter(shipment_lines::number.eq(number)),
        )
        .execute(conn)?;
        let rows: Vec<ShipmentLineRow> = after
            .lines()
            .iter()
            .map(|l| ShipmentLineRow {
                order_id,
                number,
                line_id: l.line_id.0,
                quantity: int(l.quantity),
            })
            .collect();
        for row in rows {
            diesel::insert_into(shipment_lines::table)
                .values(row)
                .execute(conn)?;
        }
    }
    for m in change.line_moves() {
        let delta = |by: i64| i32::try_from(by).map_err(|_| line_changed(m.line_id.0));
        move_line(
            conn,
            order_id,
            m.line_id.0,
            delta(m.allocated)?,
            delta(m.in_capture)?,
        )?;
    }
    let committed = change.committed_change();
    let fee = change.shipping_fee_committed();
    if !change.line_moves().is_empty() || committed != 0 || fee.is_some() {
        let moved = execute(
            conn,
            statement!(MOVE_ORDER),
            vec![
                Param::BigInt(committed),
                Param::NullableInteger(fee.map(flag)),
                Param::BigInt(order_id),
            ],
        )?;
        if moved != 1 {
            return Err(DbError::Corrupt(format!(
                "order {order_id}'s committed amount changed under the order lock"
            )));
        }
    }
    Ok(())
}

/// The shipment's row and lines as [`write_change`] leaves them (`row` and `lines` as they were
/// read before it), so that an answer is built from what was written instead of read back.
/// The store contract suite checks every such answer against a read of the same shipment.
pub(crate) fn apply_written(
    row: &mut ShipmentRow,
    lines: &mut Vec<ShipmentLineRow>,
    change: &ShipmentChange,
    capture_reference: Option<&str>,
    now: Timestamp,
) {
    let after = change.after();
    let flags = after.flags();
    row.state = after.state().as_str().to_owned();
    row.capture_amount = after.capture_amount().map(|m| m.minor());
    row.carries_shipping_fee = flag(after.carries_shipping_fee());
    row.gtg = flag(flags.good_to_go);
    row.shipped = flag(flags.shipped);
    row.needs_review = flag(flags.needs_review);
    row.updated_at = now.0;
    if let Some(reference) = capture_reference {
        row.capture_reference = Some(reference.to_owned());
    }
    if change.lines_changed() {
        *lines = after
            .lines()
            .iter()
            .map(|l| ShipmentLineRow {
                order_id: row.order_id,
                number: row.number,
                line_id: l.line_id.0,
                quantity: int(l.quantity),
            })
            .collect();
        lines.sort_by_key(|l| l.line_id);
    }
}
