//! Writes a change the domain decided ([`ShipmentChange`]): the shipment's state, flags, capture
//! and lines, and the order's counters. Every statement is guarded so that it agrees with the
//! domain's own checks: the shipment must still be in the state the change was decided on, and
//! every line stays within `0 <= in_capture <= allocated <= quantity`. A guard that fails means
//! the rows changed under the order lock, and the transaction is rolled back.

use consign_domain::ShipmentChange;
use consign_ports::Timestamp;
use diesel::prelude::*;

use crate::connection::AnyConnection;
use crate::error::DbError;
use crate::reservation::line_changed;
use crate::rows::{flag, int, ShipmentLineRow};
use crate::schema::{order_lines, orders, shipment_lines, shipments};

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
    let flags = after.flags();
    let shipment = shipments::table
        .find((order_id, number))
        .filter(shipments::state.eq(before.state().as_str()));
    let written = diesel::update(shipment)
        .set((
            shipments::state.eq(after.state().as_str()),
            shipments::capture_amount.eq(after.capture_amount().map(|m| m.minor())),
            shipments::carries_shipping_fee.eq(flag(after.carries_shipping_fee())),
            shipments::gtg.eq(flag(flags.good_to_go)),
            shipments::shipped.eq(flag(flags.shipped)),
            shipments::needs_review.eq(flag(flags.needs_review)),
            shipments::updated_at.eq(now.0),
        ))
        .execute(conn)?;
    if written != 1 {
        return Err(DbError::Corrupt(format!(
            "shipment {id} changed under the order lock"
        )));
    }
    if let Some(reference) = capture_reference {
        diesel::update(shipments::table.find((order_id, number)))
            .set(shipments::capture_reference.eq(Some(reference)))
            .execute(conn)?;
    }
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
        let (allocated, in_capture) = (delta(m.allocated)?, delta(m.in_capture)?);
        let moved = diesel::update(
            order_lines::table
                .find((order_id, m.line_id.0))
                .filter((order_lines::allocated + allocated).le(order_lines::quantity))
                .filter((order_lines::in_capture + in_capture).ge(0))
                .filter(
                    (order_lines::in_capture + in_capture).le(order_lines::allocated + allocated),
                ),
        )
        .set((
            order_lines::allocated.eq(order_lines::allocated + allocated),
            order_lines::in_capture.eq(order_lines::in_capture + in_capture),
        ))
        .execute(conn)?;
        if moved != 1 {
            return Err(line_changed(m.line_id.0));
        }
    }
    let committed = change.committed_change();
    if committed != 0 {
        let moved = diesel::update(
            orders::table
                .find(order_id)
                .filter((orders::committed + committed).ge(0)),
        )
        .set(orders::committed.eq(orders::committed + committed))
        .execute(conn)?;
        if moved != 1 {
            return Err(DbError::Corrupt(format!(
                "order {order_id}'s committed amount changed under the order lock"
            )));
        }
    }
    if let Some(carried) = change.shipping_fee_committed() {
        diesel::update(orders::table.find(order_id))
            .set(orders::shipping_fee_committed.eq(flag(carried)))
            .execute(conn)?;
    }
    // Counters moved: a shipment planned from a read before this is planned again.
    if !change.line_moves().is_empty()
        || committed != 0
        || change.shipping_fee_committed().is_some()
    {
        diesel::update(orders::table.find(order_id))
            .set(orders::version.eq(orders::version + 1))
            .execute(conn)?;
    }
    Ok(())
}
