//! What the reserve step writes once the domain has planned a shipment, and the portable way of
//! writing it (a statement each; PostgreSQL's one-statement version is in `postgres.rs`).

use crate::connection::AnyConnection;
use crate::error::DbError;
use crate::line_moves::move_line;
use crate::prepared::{execute, statement, Param};
use crate::rows::{AttemptRow, ShipmentLineRow, ShipmentRow};

/// What the reserve step writes once the domain has planned the shipment.
pub(crate) struct ReservationWrite<'a> {
    pub shipment: &'a ShipmentRow,
    pub lines: &'a [ShipmentLineRow],
    /// Whether the units go into capture (capture on) or only get allocated.
    pub in_capture: bool,
    /// Added to the order's committed amount.
    pub committed: i64,
    /// This capture carries the order's shipping fee.
    pub carries_fee: bool,
    pub attempt: Option<AttemptRow>,
}

impl ReservationWrite<'_> {
    /// Each line at most once (the single-statement write updates a line once per statement).
    pub(crate) fn lines_are_distinct(&self) -> bool {
        self.lines
            .iter()
            .enumerate()
            .all(|(i, a)| self.lines[..i].iter().all(|b| b.line_id != a.line_id))
    }
}

/// The order's next shipment number, committed amount and (when this capture carries it) the
/// shipping fee's flag; a new version and when it changed, as every write that moves its
/// counters leaves it.
const RESERVE_ORDER: &str = "UPDATE orders SET next_shipment_number = $1, \
     committed = committed + $2, \
     shipping_fee_committed = CASE WHEN $3 = 1 THEN 1 ELSE shipping_fee_committed END, \
     updated_at = $4, version = version + 1 \
     WHERE id = $5";

/// [`RESERVE_ORDER`] only if the order is still at version `$6`: the compare-and-set of a
/// reservation planned ahead from a snapshot.
const RESERVE_ORDER_IF_UNCHANGED: &str = "UPDATE orders SET next_shipment_number = $1, \
     committed = committed + $2, \
     shipping_fee_committed = CASE WHEN $3 = 1 THEN 1 ELSE shipping_fee_committed END, \
     updated_at = $4, version = version + 1 \
     WHERE id = $5 AND version = $6";

/// A new shipment, every column (kept prepared, unlike Diesel's insert of a row with optional
/// columns, which is parsed and planned on every run).
const INSERT_SHIPMENT: &str = "INSERT INTO shipments (order_id, number, state, gtg, shipped, \
     carrier, service, packages, tracking, return_slip_tracking, send_email, capture_amount, \
     carries_shipping_fee, capture_reference, created_at, updated_at, shipped_at, needs_review, \
     request_key, internal_comment, refunded) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, \
     $19, $20, $21)";

fn insert_shipment(conn: &mut AnyConnection, row: &ShipmentRow) -> Result<(), DbError> {
    execute(conn, statement!(INSERT_SHIPMENT), shipment_params(row))?;
    Ok(())
}

/// A shipment row's columns as `$1`..`$21`, in [`INSERT_SHIPMENT`]'s order; the statements that
/// write a whole row (`persist::write_row` too) number their placeholders the same way.
pub(crate) fn shipment_params(row: &ShipmentRow) -> Vec<Param<'_>> {
    vec![
        Param::BigInt(row.order_id),
        Param::Integer(row.number),
        Param::Text(&row.state),
        Param::Integer(row.gtg),
        Param::Integer(row.shipped),
        Param::Text(&row.carrier),
        Param::Text(&row.service),
        Param::Integer(row.packages),
        Param::Text(&row.tracking),
        Param::Text(&row.return_slip_tracking),
        Param::NullableInteger(row.send_email),
        Param::NullableBigInt(row.capture_amount),
        Param::Integer(row.carries_shipping_fee),
        Param::NullableText(row.capture_reference.as_deref()),
        Param::BigInt(row.created_at),
        Param::BigInt(row.updated_at),
        Param::NullableBigInt(row.shipped_at),
        Param::Integer(row.needs_review),
        Param::NullableText(row.request_key.as_deref()),
        Param::Text(&row.internal_comment),
        Param::BigInt(row.refunded),
    ]
}

/// The order's counters as the reservation leaves them, as `$1`..`$5` of [`RESERVE_ORDER`].
fn order_params<'a>(write: &ReservationWrite<'a>) -> Vec<Param<'a>> {
    vec![
        Param::Integer(write.shipment.number + 1),
        Param::BigInt(write.committed),
        Param::Integer(i32::from(write.carries_fee)),
        Param::BigInt(write.shipment.created_at), // the shipment is created now
        Param::BigInt(write.shipment.order_id),
    ]
}

/// The reserve step's writes, a statement each (SQLite, where a statement costs no round trip).
pub(crate) fn write_reservation(
    conn: &mut AnyConnection,
    write: &ReservationWrite,
) -> Result<(), DbError> {
    write_rows(conn, write)?;
    execute(conn, statement!(RESERVE_ORDER), order_params(write))?;
    Ok(())
}

/// The reserve step's writes if the order is still at `version` (the one it was planned from):
/// the order's counters first, guarded by the version, then the rest. `false`, with nothing
/// written, when another write changed the order since. The caller's transaction (a savepoint)
/// rolls everything back if a later statement fails.
pub(crate) fn write_reservation_if_unchanged(
    conn: &mut AnyConnection,
    write: &ReservationWrite,
    version: i64,
) -> Result<bool, DbError> {
    let mut params = order_params(write);
    params.push(Param::BigInt(version));
    if execute(conn, statement!(RESERVE_ORDER_IF_UNCHANGED), params)? == 0 {
        return Ok(false);
    }
    write_rows(conn, write)?;
    Ok(true)
}

/// The shipment, its lines with the guarded move of each order line, and the pending attempt.
fn write_rows(conn: &mut AnyConnection, write: &ReservationWrite) -> Result<(), DbError> {
    let order_id = write.shipment.order_id;
    insert_shipment(conn, write.shipment)?;
    let in_capture = i32::from(write.in_capture);
    for line in write.lines {
        execute(
            conn,
            statement!(
                "INSERT INTO shipment_lines (order_id, number, line_id, quantity) \
                 VALUES ($1, $2, $3, $4)"
            ),
            vec![
                Param::BigInt(line.order_id),
                Param::Integer(line.number),
                Param::BigInt(line.line_id),
                Param::Integer(line.quantity),
            ],
        )?;
        // Guarded: can never push allocated past quantity, whatever happened before.
        move_line(
            conn,
            order_id,
            line.line_id,
            line.quantity,
            line.quantity * in_capture,
        )?;
    }
    if let Some(attempt) = &write.attempt {
        crate::attempts::insert_attempt(conn, attempt)?;
    }
    Ok(())
}
