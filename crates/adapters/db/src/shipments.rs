//! The two transactions of the create-shipment saga (reserve, settle) and recovery's query.

use consign_domain::{
    CaptureOrigin, Money, OrderId, PaymentAuthorization, Providers, Settlement, Shipment,
    ShipmentId, ShipmentRequest, ShipmentState,
};
use consign_ports::{
    CaptureAttempt, Reservation, SettleOutcome, ShipmentDetails, ShipmentView, Timestamp,
};
use diesel::prelude::*;

use crate::attempts::{
    provider_key, ATTEMPT_FAILED, ATTEMPT_NEEDS_REVIEW, ATTEMPT_OPEN, ATTEMPT_SUCCEEDED,
    ATTEMPT_UNKNOWN,
};
use crate::connection::AnyConnection;
use crate::error::DbError;
use crate::orders::{load_lines, load_shipment, load_shipment_lines, lock_order};
use crate::persist::write_change;
use crate::reservation::{self, ReservationWrite};
use crate::rows::{flag, int, AttemptRow, ShipmentLineRow, ShipmentRow};
use crate::schema::{capture_attempts, orders};

/// Reserve: lock the order, plan with the domain, write the shipment, its reserved units and the
/// pending capture attempt. A refusal rolls everything back.
#[allow(clippy::too_many_arguments)] // the port call's own arguments, plus the connection
pub(crate) fn reserve_shipment(
    conn: &mut AnyConnection,
    installation: &str,
    order_id: OrderId,
    request: &ShipmentRequest,
    providers: &Providers,
    details: &ShipmentDetails,
    request_key: Option<&str>,
    now: Timestamp,
) -> Result<Reservation, DbError> {
    conn.transaction(|conn| {
        // Writing the order row first takes its row lock on PostgreSQL and the write lock on
        // SQLite: concurrent shipments of one order queue here, with one query for both.
        // Its lines are read by the next statement: one statement's snapshot is taken before it
        // waits for the lock, so lines read with it could predate the shipment it waited for.
        let order_row =
            lock_order(conn, order_id.0, now)?.ok_or(DbError::OrderNotFound(order_id))?;
        let line_rows = load_lines(conn, order_id.0)?;
        let order = order_row.to_order(&line_rows)?;
        let plan = order.plan_shipment_with(request, providers)?;
        let number = int(plan.id.number);
        let state = if plan.capture.is_some() {
            ShipmentState::CapturePending
        } else {
            ShipmentState::Uncaptured
        };
        let shipped = details.shipped;
        let shipping = if shipped {
            details.shipping.clone()
        } else {
            Default::default()
        };
        let row = ShipmentRow {
            order_id: order_id.0,
            number,
            state: state.as_str().to_owned(),
            gtg: flag(details.gtg),
            shipped: flag(shipped),
            carrier: shipping.carrier,
            service: shipping.service,
            packages: int(shipping.packages),
            tracking: shipping.tracking,
            return_slip_tracking: shipping.return_slip_tracking,
            send_email: if shipped {
                details.send_email.map(flag)
            } else {
                None
            },
            capture_amount: plan.capture.map(|c| c.amount.minor()),
            carries_shipping_fee: flag(plan.capture.is_some_and(|c| c.carries_shipping_fee)),
            capture_reference: None,
            created_at: now.0,
            updated_at: now.0,
            shipped_at: shipped.then_some(now.0),
            needs_review: 0,
            request_key: request_key.map(str::to_owned),
            internal_comment: String::new(),
            refunded: 0,
        };
        let lines: Vec<ShipmentLineRow> = plan
            .lines
            .iter()
            .map(|line| ShipmentLineRow {
                order_id: order_id.0,
                number,
                line_id: line.line_id.0,
                quantity: int(line.quantity),
            })
            .collect();
        let (amount, carries_fee) = plan
            .capture
            .map_or((0, false), |c| (c.amount.minor(), c.carries_shipping_fee));
        let attempt = match (plan.capture, order.payment().cloned()) {
            (Some(capture), Some(authorization)) => {
                let key = provider_key(installation, plan.id, 1);
                Some(CaptureAttempt {
                    shipment: plan.id,
                    authorization,
                    amount: capture.amount,
                    idempotency_key: key,
                    final_capture: capture.completes_order,
                    created_at: now,
                })
            }
            _ => None,
        };
        let write = ReservationWrite {
            shipment: &row,
            lines: &lines,
            in_capture: plan.capture.is_some(),
            committed: amount,
            carries_fee,
            attempt: attempt.as_ref().map(|a| {
                AttemptRow::pending(
                    order_id.0,
                    number,
                    1,
                    a.idempotency_key.clone(),
                    a.amount.minor(),
                    a.final_capture,
                    true,
                    None,
                    now.0,
                )
            }),
        };
        match &mut *conn {
            AnyConnection::Postgresql(pg) if write.lines_are_distinct() => {
                crate::postgres::write_reservation(pg, &write)?
            }
            conn => reservation::write_reservation(conn, &write)?,
        }
        if shipped && details.send_email == Some(true) {
            crate::outbox::queue_confirmation(conn, order_id.0, number, now)?;
        }
        Ok(Reservation {
            shipment: row.into_view(order.currency(), &lines)?,
            attempt,
        })
    })
}

/// Settle: record the outcome; on a decline void the shipment and release what it held (or,
/// for a capture started by complete/capture, return it to uncaptured). On a capture, changes
/// that waited for it are applied. Only an open attempt is settled, so a second settle of the
/// same attempt changes nothing.
pub(crate) fn settle_capture(
    conn: &mut AnyConnection,
    attempt: &CaptureAttempt,
    outcome: &SettleOutcome,
    now: Timestamp,
) -> Result<ShipmentView, DbError> {
    let order_id = attempt.shipment.order.0;
    let number = int(attempt.shipment.number);
    if let (AnyConnection::Postgresql(pg), SettleOutcome::Captured { reference }) =
        (&mut *conn, outcome)
    {
        let captured = crate::postgres::settle_captured(
            pg,
            order_id,
            attempt.shipment.number,
            &attempt.idempotency_key,
            attempt.amount.minor(),
            reference,
            now,
        )?;
        if let Some(row) = captured {
            let lines = load_shipment_lines(conn, order_id, number)?;
            return row.into_view(attempt.amount.currency(), &lines);
        }
    }
    conn.transaction(|conn| {
        let this_attempt = || {
            capture_attempts::table
                .filter(capture_attempts::order_id.eq(order_id))
                .filter(capture_attempts::idempotency_key.eq(&attempt.idempotency_key))
        };
        // Open = neither succeeded nor failed; written without IN (...) so the statement is cached.
        let open = this_attempt()
            .filter(capture_attempts::state.ne(ATTEMPT_SUCCEEDED))
            .filter(capture_attempts::state.ne(ATTEMPT_FAILED));
        let settled = match outcome {
            SettleOutcome::Captured { reference } => diesel::update(open)
                .set((
                    capture_attempts::state.eq(ATTEMPT_SUCCEEDED),
                    capture_attempts::provider_reference.eq(Some(reference)),
                    capture_attempts::updated_at.eq(now.0),
                ))
                .execute(conn)?,
            SettleOutcome::Declined { code, message } => diesel::update(open)
                .set((
                    capture_attempts::state.eq(ATTEMPT_FAILED),
                    capture_attempts::decline_code.eq(Some(code)),
                    capture_attempts::decline_message.eq(Some(message)),
                    capture_attempts::updated_at.eq(now.0),
                ))
                .execute(conn)?,
        };
        if settled == 1 {
            let attempt_row: AttemptRow =
                this_attempt().select(AttemptRow::as_select()).first(conn)?;
            let (row, lines) = load_shipment(conn, order_id, number)?
                .ok_or(DbError::ShipmentNotFound(attempt.shipment))?;
            let shipment = row.to_shipment(attempt.amount.currency(), &lines)?;
            // An open attempt belongs to a capture-pending shipment; anything else is left as
            // it is, as the guarded statements always did.
            if shipment.state() == ShipmentState::CapturePending {
                let origin = if attempt_row.void_on_decline != 0 {
                    CaptureOrigin::AtCreation
                } else {
                    CaptureOrigin::Later
                };
                let (settlement, reference) = match outcome {
                    SettleOutcome::Captured { reference } => {
                        (Settlement::Captured, Some(reference.as_str()))
                    }
                    SettleOutcome::Declined { .. } => (Settlement::Declined, None),
                };
                let change = shipment.settle(settlement, origin)?;
                write_change(conn, &change, reference, now)?;
                if let Some(waiting) = attempt_row.on_capture.as_deref() {
                    if settlement == Settlement::Captured {
                        let changes = crate::changes::decode(waiting)?;
                        let mut row = row.clone();
                        row.state = change.after().state().as_str().to_owned();
                        crate::workflow::complete(conn, change.after(), &row, &changes, now)?;
                    }
                }
            }
            if let SettleOutcome::Captured { .. } = outcome {
                crate::outbox::issue_invoice(conn, order_id, number, attempt.amount.minor(), now)?;
            }
        }
        let (row, lines) = load_shipment(conn, order_id, number)?
            .ok_or(DbError::ShipmentNotFound(attempt.shipment))?;
        row.into_view(attempt.amount.currency(), &lines)
    })
}

/// What an attempt needs from its order to be replayed: currency, provider, reference, amount.
pub(crate) type PaymentColumns = (String, Option<String>, Option<String>, i64);

/// Pending attempts written before `before`, oldest first, with what is needed to replay them.
pub(crate) fn pending_captures(
    conn: &mut AnyConnection,
    before: Timestamp,
) -> Result<Vec<CaptureAttempt>, DbError> {
    let rows: Vec<(AttemptRow, PaymentColumns)> = capture_attempts::table
        .inner_join(orders::table.on(orders::id.eq(capture_attempts::order_id)))
        .filter(capture_attempts::state.eq_any(ATTEMPT_OPEN))
        .filter(capture_attempts::updated_at.lt(before.0))
        .order(capture_attempts::created_at.asc())
        .limit(500)
        .select((
            AttemptRow::as_select(),
            (
                orders::currency,
                orders::payment_provider,
                orders::payment_reference,
                orders::authorized,
            ),
        ))
        .load(conn)?;
    rows.into_iter().map(attempt_from_row).collect()
}

/// An attempt row with its order's payment columns, as the port's [`CaptureAttempt`].
pub(crate) fn attempt_from_row(
    (a, (currency, provider, reference, authorized)): (AttemptRow, PaymentColumns),
) -> Result<CaptureAttempt, DbError> {
    let currency = currency
        .parse()
        .map_err(|_| DbError::Corrupt(format!("currency {currency:?}")))?;
    let (Some(provider), Some(reference)) = (provider, reference) else {
        return Err(DbError::Corrupt(format!(
            "capture attempt on order {} without payment",
            a.order_id
        )));
    };
    Ok(CaptureAttempt {
        shipment: ShipmentId {
            order: OrderId(a.order_id),
            number: u32::try_from(a.number).unwrap_or(0),
        },
        authorization: PaymentAuthorization {
            provider,
            reference,
            amount: Money::from_minor(authorized, currency),
        },
        amount: Money::from_minor(a.amount, currency),
        idempotency_key: a.idempotency_key,
        final_capture: a.final_capture != 0,
        created_at: Timestamp(a.created_at),
    })
}

/// The open attempt of one shipment, if any.
pub(crate) fn open_attempt(
    conn: &mut AnyConnection,
    shipment: ShipmentId,
) -> Result<Option<CaptureAttempt>, DbError> {
    let row: Option<(AttemptRow, PaymentColumns)> = capture_attempts::table
        .inner_join(orders::table.on(orders::id.eq(capture_attempts::order_id)))
        .filter(capture_attempts::order_id.eq(shipment.order.0))
        .filter(capture_attempts::number.eq(int(shipment.number)))
        .filter(capture_attempts::state.eq_any(ATTEMPT_OPEN))
        .select((
            AttemptRow::as_select(),
            (
                orders::currency,
                orders::payment_provider,
                orders::payment_reference,
                orders::authorized,
            ),
        ))
        .first(conn)
        .optional()?;
    row.map(attempt_from_row).transpose()
}

/// Records that an attempt's outcome is still unknown. After `review_after` passes the attempt
/// and its shipment are flagged for review (recovery keeps replaying it). Answers whether it now
/// needs review.
pub(crate) fn record_unknown(
    conn: &mut AnyConnection,
    attempt: &CaptureAttempt,
    reason: &str,
    now: Timestamp,
    review_after: u32,
) -> Result<bool, DbError> {
    let order_id = attempt.shipment.order.0;
    conn.transaction(|conn| {
        let this = || {
            capture_attempts::table
                .filter(capture_attempts::order_id.eq(order_id))
                .filter(capture_attempts::idempotency_key.eq(&attempt.idempotency_key))
        };
        let changed = diesel::update(this().filter(capture_attempts::state.eq_any(ATTEMPT_OPEN)))
            .set((
                capture_attempts::passes.eq(capture_attempts::passes + 1),
                capture_attempts::last_error.eq(Some(reason)),
                capture_attempts::updated_at.eq(now.0),
            ))
            .execute(conn)?;
        if changed == 0 {
            return Ok(false); // settled meanwhile
        }
        let passes: i32 = this().select(capture_attempts::passes).first(conn)?;
        let (row, lines) = load_shipment(conn, order_id, int(attempt.shipment.number))?
            .ok_or(DbError::ShipmentNotFound(attempt.shipment))?;
        let shipment = row.to_shipment(attempt.amount.currency(), &lines)?;
        let passes = u32::try_from(passes).unwrap_or(0);
        // An open attempt belongs to a capture-pending shipment; anything else is left as it is
        // (as settling does), and only the attempt is counted.
        let change = (shipment.state() == ShipmentState::CapturePending)
            .then(|| shipment.capture_unknown(passes, review_after))
            .transpose()?;
        let review = change
            .as_ref()
            .map_or(Shipment::needs_review_after(passes, review_after), |c| {
                c.after().flags().needs_review
            });
        let state = if review {
            ATTEMPT_NEEDS_REVIEW
        } else {
            ATTEMPT_UNKNOWN
        };
        diesel::update(this())
            .set(capture_attempts::state.eq(state))
            .execute(conn)?;
        if let Some(change) = change.filter(|c| c.after().flags() != c.before().flags()) {
            write_change(conn, &change, None, now)?;
        }
        Ok(review)
    })
}

/// Open attempts on the same order other than this one (a final multicapture waits for them).
pub(crate) fn other_open_captures(
    conn: &mut AnyConnection,
    attempt: &CaptureAttempt,
) -> Result<usize, DbError> {
    let count: i64 = capture_attempts::table
        .filter(capture_attempts::order_id.eq(attempt.shipment.order.0))
        .filter(capture_attempts::idempotency_key.ne(&attempt.idempotency_key))
        .filter(capture_attempts::state.eq_any(ATTEMPT_OPEN))
        .count()
        .get_result(conn)?;
    Ok(usize::try_from(count).unwrap_or(0))
}
