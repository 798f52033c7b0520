//! The calls after create: start a capture (complete, capture), apply complete's changes, edit
//! and delete uncaptured shipments. Each is one transaction that writes the order row first (the
//! same lock as the saga's reserve step).

use consign_domain::{OrderId, ShipmentError, ShipmentId, ShipmentLine, ShipmentState};
use consign_ports::{BeginCapture, CaptureAttempt, ShipmentChanges, ShipmentView, Timestamp};
use diesel::prelude::*;

use crate::attempts::provider_key;
use crate::changes;
use crate::connection::AnyConnection;
use crate::error::DbError;
use crate::orders::{load_order, load_shipment};
use crate::rows::{flag, int, AttemptRow, ShipmentLineRow, ShipmentRow};
use crate::schema::{capture_attempts, order_lines, orders, shipment_lines, shipments};

/// Locks the order and loads one live shipment of it; `order`, when given, must be its order.
fn locate(
    conn: &mut AnyConnection,
    id: ShipmentId,
    order: Option<OrderId>,
    now: Timestamp,
) -> Result<(ShipmentRow, Vec<ShipmentLineRow>), DbError> {
    let not_found = || DbError::Rejected(ShipmentError::ShipmentNotFound(id));
    if order.is_some_and(|o| o != id.order) {
        return Err(not_found());
    }
    let locked = diesel::update(orders::table.find(id.order.0))
        .set(orders::updated_at.eq(now.0))
        .execute(conn)?;
    if locked == 0 {
        return Err(not_found());
    }
    let (row, lines) = load_shipment(conn, id.order.0, int(id.number))?.ok_or_else(not_found)?;
    match state_of(&row)? {
        ShipmentState::Voided | ShipmentState::Deleted => Err(not_found()),
        _ => Ok((row, lines)),
    }
}

fn state_of(row: &ShipmentRow) -> Result<ShipmentState, DbError> {
    ShipmentState::from_name(&row.state)
        .ok_or_else(|| DbError::Corrupt(format!("shipment state {:?}", row.state)))
}

fn view(conn: &mut AnyConnection, id: ShipmentId) -> Result<ShipmentView, DbError> {
    let (row, lines) =
        load_shipment(conn, id.order.0, int(id.number))?.ok_or(DbError::ShipmentNotFound(id))?;
    let currency = orders::table
        .find(id.order.0)
        .select(orders::currency)
        .first::<String>(conn)?
        .parse()
        .map_err(|_| DbError::Corrupt("currency".into()))?;
    row.into_view(currency, &lines)
}

fn shipment_lines_of(lines: &[ShipmentLineRow]) -> Vec<ShipmentLine> {
    lines
        .iter()
        .map(|l| ShipmentLine {
            line_id: consign_domain::LineId(l.line_id),
            quantity: u32::try_from(l.quantity).unwrap_or(0),
        })
        .collect()
}

/// Starts the capture of an uncaptured shipment: plan with the domain, move its units into
/// capture, write the attempt with the changes that wait for it.
pub(crate) fn begin_capture(
    conn: &mut AnyConnection,
    installation: &str,
    id: ShipmentId,
    order: Option<OrderId>,
    on_capture: &ShipmentChanges,
    now: Timestamp,
) -> Result<BeginCapture, DbError> {
    conn.transaction(|conn| {
        let (row, lines) = locate(conn, id, order, now)?;
        match state_of(&row)? {
            ShipmentState::Captured => return Ok(BeginCapture::AlreadyCaptured(view(conn, id)?)),
            ShipmentState::CapturePending => {
                return Err(ShipmentError::CaptureInProgress(id).into())
            }
            _ => {}
        }
        let (order_row, line_rows) =
            load_order(conn, id.order.0)?.ok_or(ShipmentError::OrderNotFound(id.order))?;
        let order = order_row.to_order(&line_rows)?;
        let lines = shipment_lines_of(&lines);
        let plan = order.plan_capture(&lines, false)?;
        let authorization = order
            .payment
            .clone()
            .ok_or(ShipmentError::NoPaymentAuthorization)?;
        let attempt_no: i32 = capture_attempts::table
            .filter(capture_attempts::order_id.eq(id.order.0))
            .filter(capture_attempts::number.eq(row.number))
            .select(diesel::dsl::max(capture_attempts::attempt))
            .first::<Option<i32>>(conn)?
            .unwrap_or(0)
            + 1;
        let key = provider_key(installation, id, u32::try_from(attempt_no).unwrap_or(1));
        let started = diesel::update(
            shipments::table
                .find((id.order.0, row.number))
                .filter(shipments::state.eq(ShipmentState::Uncaptured.as_str())),
        )
        .set((
            shipments::state.eq(ShipmentState::CapturePending.as_str()),
            shipments::capture_amount.eq(Some(plan.amount.minor())),
            shipments::carries_shipping_fee.eq(flag(plan.carries_shipping_fee)),
            shipments::updated_at.eq(now.0),
        ))
        .execute(conn)?;
        if started != 1 {
            return Err(DbError::Corrupt(format!(
                "shipment {id} changed under the order lock"
            )));
        }
        for line in &lines {
            let quantity = int(line.quantity);
            let moved = diesel::update(
                order_lines::table
                    .find((id.order.0, line.line_id.0))
                    .filter((order_lines::in_capture + quantity).le(order_lines::allocated)),
            )
            .set(order_lines::in_capture.eq(order_lines::in_capture + quantity))
            .execute(conn)?;
            if moved != 1 {
                return Err(DbError::Corrupt(format!(
                    "line {} changed under the order lock",
                    line.line_id
                )));
            }
        }
        diesel::update(orders::table.find(id.order.0))
            .set(orders::committed.eq(orders::committed + plan.amount.minor()))
            .execute(conn)?;
        if plan.carries_shipping_fee {
            diesel::update(orders::table.find(id.order.0))
                .set(orders::shipping_fee_committed.eq(1))
                .execute(conn)?;
        }
        diesel::insert_into(capture_attempts::table)
            .values(AttemptRow::pending(
                id.order.0,
                row.number,
                attempt_no,
                key.clone(),
                plan.amount.minor(),
                plan.completes_order,
                false,
                Some(changes::encode(on_capture)),
                now.0,
            ))
            .execute(conn)?;
        Ok(BeginCapture::Started(CaptureAttempt {
            shipment: id,
            authorization,
            amount: plan.amount,
            idempotency_key: key,
            final_capture: plan.completes_order,
            created_at: now,
        }))
    })
}

/// Complete's changes on a shipment that is not capture-pending.
pub(crate) fn apply_changes(
    conn: &mut AnyConnection,
    id: ShipmentId,
    order: Option<OrderId>,
    changes: &ShipmentChanges,
    now: Timestamp,
) -> Result<ShipmentView, DbError> {
    conn.transaction(|conn| {
        let (row, _) = locate(conn, id, order, now)?;
        if state_of(&row)? == ShipmentState::CapturePending {
            return Err(ShipmentError::CaptureInProgress(id).into());
        }
        apply_changes_to(conn, id.order.0, row.number, changes, now)?;
        view(conn, id)
    })
}

/// Writes complete's changes: flags only move forward; carrier details are kept once the
/// shipment is (or becomes) shipped.
pub(crate) fn apply_changes_to(
    conn: &mut AnyConnection,
    order_id: i64,
    number: i32,
    changes: &ShipmentChanges,
    now: Timestamp,
) -> Result<(), DbError> {
    let Some((row, _)) = load_shipment(conn, order_id, number)? else {
        return Ok(());
    };
    let shipped = row.shipped != 0 || changes.shipped;
    let becomes_shipped = row.shipped == 0 && shipped;
    if becomes_shipped && changes.send_email.or(row.send_email.map(|v| v != 0)) == Some(true) {
        crate::outbox::queue_confirmation(conn, order_id, number, now)?;
    }
    let s = &changes.shipping;
    let keep = |new: &Option<String>, old: String| match new {
        Some(value) if shipped => value.clone(),
        _ => old,
    };
    diesel::update(shipments::table.find((order_id, number)))
        .set((
            shipments::gtg.eq(flag(row.gtg != 0 || changes.gtg)),
            shipments::shipped.eq(flag(shipped)),
            shipments::carrier.eq(keep(&s.carrier, row.carrier.clone())),
            shipments::service.eq(keep(&s.service, row.service.clone())),
            shipments::packages.eq(match s.packages {
                Some(p) if shipped => int(p),
                _ => row.packages,
            }),
            shipments::tracking.eq(keep(&s.tracking, row.tracking.clone())),
            shipments::return_slip_tracking.eq(keep(
                &s.return_slip_tracking,
                row.return_slip_tracking.clone(),
            )),
            shipments::send_email.eq(changes.send_email.map(flag).or(row.send_email)),
            shipments::internal_comment.eq(changes
                .internal_comment
                .clone()
                .unwrap_or(row.internal_comment.clone())),
            shipments::shipped_at.eq(row.shipped_at.or(shipped.then_some(now.0))),
            shipments::updated_at.eq(now.0),
        ))
        .execute(conn)?;
    Ok(())
}

/// Update shipment: new quantities (uncaptured and unshipped only) and good-to-go.
pub(crate) fn update_shipment(
    conn: &mut AnyConnection,
    id: ShipmentId,
    order: Option<OrderId>,
    changes: Option<&[ShipmentLine]>,
    gtg: Option<bool>,
    now: Timestamp,
) -> Result<ShipmentView, DbError> {
    conn.transaction(|conn| {
        let (row, current) = locate(conn, id, order, now)?;
        let state = state_of(&row)?;
        if state == ShipmentState::CapturePending {
            return Err(ShipmentError::CaptureInProgress(id).into());
        }
        if let Some(changes) = changes {
            if state == ShipmentState::Captured {
                return Err(ShipmentError::ShipmentCaptured.into());
            }
            if row.shipped != 0 {
                return Err(ShipmentError::ShipmentSent.into());
            }
            let (order_row, line_rows) =
                load_order(conn, id.order.0)?.ok_or(ShipmentError::OrderNotFound(id.order))?;
            let order = order_row.to_order(&line_rows)?;
            let before = shipment_lines_of(&current);
            let after = order.plan_line_changes(&before, changes)?;
            diesel::delete(
                shipment_lines::table
                    .filter(shipment_lines::order_id.eq(id.order.0))
                    .filter(shipment_lines::number.eq(row.number)),
            )
            .execute(conn)?;
            for line in &after {
                diesel::insert_into(shipment_lines::table)
                    .values(ShipmentLineRow {
                        order_id: id.order.0,
                        number: row.number,
                        line_id: line.line_id.0,
                        quantity: int(line.quantity),
                    })
                    .execute(conn)?;
            }
            for line in &order.lines {
                let held = |lines: &[ShipmentLine]| {
                    lines
                        .iter()
                        .find(|l| l.line_id == line.line_id)
                        .map_or(0, |l| int(l.quantity))
                };
                let delta = held(&after) - held(&before);
                if delta != 0 {
                    let moved = diesel::update(
                        order_lines::table
                            .find((id.order.0, line.line_id.0))
                            .filter((order_lines::allocated + delta).le(order_lines::quantity)),
                    )
                    .set(order_lines::allocated.eq(order_lines::allocated + delta))
                    .execute(conn)?;
                    if moved != 1 {
                        return Err(DbError::Corrupt(format!(
                            "line {} changed under the order lock",
                            line.line_id
                        )));
                    }
                }
            }
        }
        if gtg == Some(true) {
            diesel::update(shipments::table.find((id.order.0, row.number)))
                .set((shipments::gtg.eq(1), shipments::updated_at.eq(now.0)))
                .execute(conn)?;
        }
        view(conn, id)
    })
}

/// Deletes an uncaptured shipment and releases its units.
pub(crate) fn delete_shipment(
    conn: &mut AnyConnection,
    id: ShipmentId,
    order: Option<OrderId>,
    now: Timestamp,
) -> Result<ShipmentView, DbError> {
    conn.transaction(|conn| {
        let (row, lines) = locate(conn, id, order, now)?;
        match state_of(&row)? {
            ShipmentState::Captured => return Err(ShipmentError::NotDeletable.into()),
            ShipmentState::CapturePending => {
                return Err(ShipmentError::CaptureInProgress(id).into())
            }
            _ => {}
        }
        diesel::update(shipments::table.find((id.order.0, row.number)))
            .set((
                shipments::state.eq(ShipmentState::Deleted.as_str()),
                shipments::updated_at.eq(now.0),
            ))
            .execute(conn)?;
        for line in &lines {
            diesel::update(order_lines::table.find((id.order.0, line.line_id)))
                .set(order_lines::allocated.eq(order_lines::allocated - line.quantity))
                .execute(conn)?;
        }
        view(conn, id)
    })
}

/// The shipment a request with this key created.
pub(crate) fn find_by_request_key(
    conn: &mut AnyConnection,
    key: &str,
) -> Result<Option<ShipmentView>, DbError> {
    let found: Option<(i64, i32)> = shipments::table
        .filter(shipments::request_key.eq(key))
        .select((shipments::order_id, shipments::number))
        .first(conn)
        .optional()?;
    found
        .map(|(order, number)| {
            view(
                conn,
                ShipmentId {
                    order: OrderId(order),
                    number: u32::try_from(number).unwrap_or(0),
                },
            )
        })
        .transpose()
}
