//! What the reserve step writes once the domain has planned a shipment, and the portable way of
//! writing it (a statement each; PostgreSQL's one-statement version is in `postgres.rs`).

use diesel::prelude::*;

use crate::connection::AnyConnection;
use crate::error::DbError;
use crate::persist::move_line;
use crate::prepared::{execute, Param};
use crate::rows::{AttemptRow, ShipmentLineRow, ShipmentRow};
use crate::schema::{shipment_lines, shipments};

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

/// The reserve step's writes, a statement each (SQLite, where a statement costs no round trip).
pub(crate) fn write_reservation(
    conn: &mut AnyConnection,
    write: &ReservationWrite,
) -> Result<(), DbError> {
    let (order_id, number) = (write.shipment.order_id, write.shipment.number);
    diesel::insert_into(shipments::table)
        .values(write.shipment.clone())
        .execute(conn)?;
    let in_capture = i32::from(write.in_capture);
    for line in write.lines {
        diesel::insert_into(shipment_lines::table)
            .values(line.clone())
            .execute(conn)?;
        // Guarded: can never push allocated past quantity, whatever happened before.
        move_line(
            conn,
            order_id,
            line.line_id,
            line.quantity,
            line.quantity * in_capture,
        )?;
    }
    execute(
        conn,
        RESERVE_ORDER,
        vec![
            Param::Integer(number + 1),
            Param::BigInt(write.committed),
            Param::Integer(i32::from(write.carries_fee)),
            Param::BigInt(write.shipment.created_at), // the shipment is created now
            Param::BigInt(order_id),
        ],
    )?;
    if let Some(attempt) = &write.attempt {
        crate::attempts::insert_attempt(conn, attempt)?;
    }
    Ok(())
}

/// A guarded line update found the line changed although the order was locked.
pub(crate) fn line_changed(line: i64) -> DbError {
    DbError::Corrupt(format!("line {line} changed under the order lock"))
}
