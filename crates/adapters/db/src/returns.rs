//! Returns and refunds: each write is one transaction that locks the order row first (the same
//! lock as the shipment calls), reads the order, the shipment and what its returns took as the
//! domain sees them, lets the domain decide, and writes the decision with guarded statements
//! (the database's constraints are the last line of defence: a line never comes back more often
//! than it was shipped, a shipment's returns never hold more than it captured).

use consign_domain::{
    LineId, Money, Order, PaymentAuthorization, Providers, RefundStart, RefundState, Return,
    ReturnId, ReturnRequest, Returned, Shipment, ShipmentId, ShipmentLine, ShipmentState, TaxRate,
};
use consign_ports::{
    BeginRefund, CreditNote, RefundAttempt, RefundSettle, ReturnCreated, ReturnDetails,
    ReturnLineView, ReturnQuery, ReturnView, Timestamp,
};
use diesel::prelude::*;
use std::collections::HashMap;

use crate::attempts::{
    ATTEMPT_FAILED, ATTEMPT_NEEDS_REVIEW, ATTEMPT_OPEN, ATTEMPT_PENDING, ATTEMPT_SUCCEEDED,
    ATTEMPT_UNKNOWN,
};
use crate::connection::AnyConnection;
use crate::consistent_read::in_one_snapshot;
use crate::error::DbError;
use crate::orders::{bump_counter, load_lines, load_shipment, lock_order, order_currency};
use crate::rows::{distinct, flag, int};
use crate::schema::{
    credit_notes, order_lines, orders, refund_attempts, return_lines, returns, shipment_lines,
    shipments,
};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = returns)]
pub(crate) struct ReturnRow {
    pub id: i64,
    pub order_id: i64,
    pub number: i32,
    pub completed: i32,
    pub return_to_stock: i32,
    pub comment: String,
    pub units: i64,
    pub shipping_cost: i64,
    pub handling_cost: i64,
    pub voucher_value: i64,
    pub return_cost: i64,
    pub tax_value: i64,
    pub refund_value: i64,
    pub takes_shipping_fee: i32,
    pub refund_state: String,
    pub refund_reference: Option<String>,
    pub decline_code: Option<String>,
    pub decline_message: Option<String>,
    pub send_email: i32,
    pub request_key: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = return_lines)]
pub(crate) struct ReturnLineRow {
    return_id: i64,
    line_id: i64,
    id: i64,
    order_id: i64,
    number: i32,
    quantity: i32,
    unit_price: i64,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = refund_attempts)]
pub(crate) struct RefundAttemptRow {
    return_id: i64,
    attempt: i32,
    order_id: i64,
    idempotency_key: String,
    amount: i64,
    state: String,
    provider_reference: Option<String>,
    provider_status: Option<String>,
    decline_code: Option<String>,
    decline_message: Option<String>,
    passes: i32,
    last_error: Option<String>,
    created_at: i64,
    updated_at: i64,
    rest_millis: i64,
}

impl ReturnRow {
    fn id(&self) -> ReturnId {
        ReturnId(self.id)
    }

    fn shipment(&self) -> ShipmentId {
        shipment_id(self.order_id, self.number)
    }

    fn state(&self) -> Result<RefundState, DbError> {
        RefundState::parse(&self.refund_state)
            .ok_or_else(|| DbError::Corrupt(format!("refund state {:?}", self.refund_state)))
    }
}

fn shipment_id(order: i64, number: i32) -> ShipmentId {
    ShipmentId {
        order: consign_domain::OrderId(order),
        number: number.unsigned_abs(),
    }
}

/// The provider idempotency key of one refund attempt: stable across retries and restarts,
/// unique across databases, and never the key of a capture.
fn refund_key(installation: &str, id: ShipmentId, return_id: ReturnId, attempt: i32) -> String {
    format!("consign-{installation}-refund-{id}-{return_id}-{attempt}")
}

/// The order (locked), the captured shipment and what its returns took, as the domain sees
/// them.
struct Locked {
    order: Order,
    shipment: Shipment,
    returned: Returned,
    /// Shipment line `row_id`s, by line.
    line_row_ids: Vec<(i64, Option<i64>)>,
    shipment_row_id: Option<i64>,
}

fn lock(conn: &mut AnyConnection, id: ShipmentId, now: Timestamp) -> Result<Locked, DbError> {
    let not_found = || DbError::ShipmentNotFound(id);
    let order_row = lock_order(conn, id.order.0, now)?.ok_or_else(not_found)?;
    let number = int(id.number);
    let (shipment_row, lines) = load_shipment(conn, id.order.0, number)?.ok_or_else(not_found)?;
    if !shipment_row.state()?.is_live() {
        return Err(not_found());
    }
    let currency = order_row.currency()?;
    let shipment = shipment_row.to_shipment(currency, &lines)?;
    let order = order_row.to_order(&load_lines(conn, id.order.0)?)?;
    let (held, fee_returned, shipment_row_id): (i64, i32, Option<i64>) = shipments::table
        .find((id.order.0, number))
        .select((
            shipments::refund_held,
            shipments::shipping_fee_returned,
            shipments::row_id,
        ))
        .first(conn)?;
    let returned_rows: Vec<(i64, i32, Option<i64>)> = shipment_lines::table
        .filter(shipment_lines::order_id.eq(id.order.0))
        .filter(shipment_lines::number.eq(number))
        .select((
            shipment_lines::line_id,
            shipment_lines::returned,
            shipment_lines::row_id,
        ))
        .load(conn)?;
    let returned = Returned::kept(
        returned_rows
            .iter()
            .filter(|(_, returned, _)| *returned > 0)
            .map(|(line, returned, _)| ShipmentLine {
                line_id: LineId(*line),
                quantity: returned.unsigned_abs(),
            })
            .collect(),
        Money::from_minor(held, currency),
        fee_returned != 0,
    )?;
    Ok(Locked {
        order,
        shipment,
        returned,
        line_row_ids: returned_rows.iter().map(|(l, _, r)| (*l, *r)).collect(),
        shipment_row_id,
    })
}

/// Loads a return row by id.
fn load_return(conn: &mut AnyConnection, id: ReturnId) -> Result<Option<ReturnRow>, DbError> {
    Ok(returns::table
        .find(id.0)
        .select(ReturnRow::as_select())
        .first(conn)
        .optional()?)
}

/// A return as the domain sees it.
fn to_return(conn: &mut AnyConnection, row: &ReturnRow) -> Result<Return, DbError> {
    let currency = order_currency(conn, row.order_id)?;
    let lines: Vec<(i64, i32)> = return_lines::table
        .filter(return_lines::return_id.eq(row.id))
        .select((return_lines::line_id, return_lines::quantity))
        .load(conn)?;
    Ok(Return::kept(
        row.shipment(),
        lines
            .into_iter()
            .map(|(line, quantity)| ShipmentLine {
                line_id: LineId(line),
                quantity: quantity.unsigned_abs(),
            })
            .collect(),
        Money::from_minor(row.refund_value, currency),
        row.state()?,
        row.completed != 0,
    )?)
}

/// Writes the money a return's change moves: what the shipment's returns hold, what the
/// shipment and the order got refunded. Guarded by the constraints (held within the capture,
/// refunded within what is held and within what the order committed).
fn write_money(
    conn: &mut AnyConnection,
    before: &Return,
    after: &Return,
    now: Timestamp,
) -> Result<(), DbError> {
    let id = after.shipment();
    let held = after.held().minor() - before.held().minor();
    let refunded = after.refunded().minor() - before.refunded().minor();
    if held == 0 && refunded == 0 {
        return Ok(());
    }
    let written = diesel::update(
        shipments::table
            .find((id.order.0, int(id.number)))
            .filter(shipments::state.eq(ShipmentState::Captured.as_str())),
    )
    .set((
        shipments::refund_held.eq(shipments::refund_held + held),
        shipments::refunded.eq(shipments::refunded + refunded),
        shipments::updated_at.eq(now.0),
    ))
    .execute(conn)?;
    if written != 1 {
        return Err(DbError::Corrupt(format!(
            "shipment {id} is not captured but has a refund"
        )));
    }
    if refunded != 0 {
        diesel::update(orders::table.find(id.order.0))
            .set(orders::refunded.eq(orders::refunded + refunded))
            .execute(conn)?;
    }
    Ok(())
}

/// Writes a pending refund attempt for `ret` (its refund is now pending) and answers it.
fn write_attempt(
    conn: &mut AnyConnection,
    installation: &str,
    id: ReturnId,
    ret: &Return,
    payment: &PaymentAuthorization,
    now: Timestamp,
) -> Result<RefundAttempt, DbError> {
    let attempt: i32 = refund_attempts::table
        .filter(refund_attempts::return_id.eq(id.0))
        .select(diesel::dsl::max(refund_attempts::attempt))
        .first::<Option<i32>>(conn)?
        .unwrap_or(0)
        + 1;
    let key = refund_key(installation, ret.shipment(), id, attempt);
    diesel::insert_into(refund_attempts::table)
        .values(RefundAttemptRow {
            return_id: id.0,
            attempt,
            order_id: ret.shipment().order.0,
            idempotency_key: key.clone(),
            amount: ret.refund().minor(),
            state: ATTEMPT_PENDING.to_owned(),
            provider_reference: None,
            provider_status: None,
            decline_code: None,
            decline_message: None,
            passes: 0,
            last_error: None,
            created_at: now.0,
            updated_at: now.0,
            rest_millis: 0,
        })
        .execute(conn)?;
    Ok(RefundAttempt {
        return_id: id,
        order: ret.shipment().order,
        authorization: payment.clone(),
        amount: ret.refund(),
        idempotency_key: key,
        created_at: now,
        accepted: None,
    })
}

/// Create return: the domain plans it (and starts its refund when asked); the return, its
/// lines, the returned units and the attempt are written together.
#[allow(clippy::too_many_arguments)]
pub(crate) fn create_return(
    conn: &mut AnyConnection,
    installation: &str,
    id: ShipmentId,
    request: &ReturnRequest,
    refund: bool,
    providers: &Providers,
    details: &ReturnDetails,
    request_key: Option<&str>,
    now: Timestamp,
) -> Result<ReturnCreated, DbError> {
    conn.transaction(|conn| {
        let locked = lock(conn, id, now)?;
        let plan = locked
            .order
            .plan_return(&locked.shipment, &locked.returned, request, refund)?;
        let created = Return::created(id, &plan);
        let after = if refund {
            match created.request_refund(
                &locked.order,
                &locked.shipment,
                &locked.returned,
                providers,
            )? {
                RefundStart::Started(pending) => pending,
                RefundStart::AlreadyRefunded => created.clone(),
            }
        } else {
            created.clone()
        };
        // One counter bump names the return, its lines, and (the first time a return needs
        // them) Centra's integer ids of the shipment and its lines.
        let names = 2 + 2 * plan.lines().len() as i64;
        let last = bump_counter(conn, "return_id", names)?;
        let mut next = last - names;
        let mut name = || {
            next += 1;
            next
        };
        let return_id = ReturnId(name());
        let shipment_row_id = locked.shipment_row_id.unwrap_or_else(&mut name);
        let (order_id, number) = (id.order.0, int(id.number));
        let written = diesel::update(
            shipments::table
                .find((order_id, number))
                .filter(shipments::state.eq(ShipmentState::Captured.as_str())),
        )
        .set((
            shipments::row_id.eq(Some(shipment_row_id)),
            shipments::shipping_fee_returned.eq(flag(
                locked.returned.shipping_fee_refunded() || plan.takes_shipping_fee(),
            )),
        ))
        .execute(conn)?;
        if written != 1 {
            return Err(DbError::Corrupt(format!(
                "shipment {id} changed under the order lock"
            )));
        }
        diesel::insert_into(returns::table)
            .values(ReturnRow {
                id: return_id.0,
                order_id,
                number,
                completed: 0,
                return_to_stock: flag(details.return_to_stock),
                comment: details.comment.clone(),
                units: plan.units().minor(),
                shipping_cost: plan.shipping().minor(),
                handling_cost: plan.handling().minor(),
                voucher_value: plan.voucher().minor(),
                return_cost: plan.return_cost().minor(),
                tax_value: plan.tax().minor(),
                refund_value: plan.refund().minor(),
                takes_shipping_fee: flag(plan.takes_shipping_fee()),
                refund_state: after.refund_state().as_str().to_owned(),
                refund_reference: None,
                decline_code: None,
                decline_message: None,
                send_email: flag(details.send_email),
                request_key: request_key.map(str::to_owned),
                created_at: now.0,
                updated_at: now.0,
            })
            .execute(conn)?;
        for line in plan.lines() {
            let quantity = int(line.quantity);
            let row_id = locked
                .line_row_ids
                .iter()
                .find(|(l, _)| *l == line.line_id.0)
                .and_then(|(_, r)| *r)
                .unwrap_or_else(&mut name);
            let shipment_line = shipment_lines::table
                .find((order_id, number, line.line_id.0))
                .filter((shipment_lines::returned + quantity).le(shipment_lines::quantity));
            let order_line = order_lines::table
                .find((order_id, line.line_id.0))
                .filter((order_lines::returned + quantity).le(order_lines::allocated));
            let moved = diesel::update(shipment_line)
                .set((
                    shipment_lines::returned.eq(shipment_lines::returned + quantity),
                    shipment_lines::row_id.eq(Some(row_id)),
                ))
                .execute(conn)?
                + diesel::update(order_line)
                    .set(order_lines::returned.eq(order_lines::returned + quantity))
                    .execute(conn)?;
            if moved != 2 {
                return Err(DbError::Corrupt(format!(
                    "line {} of shipment {id} changed under the order lock",
                    line.line_id
                )));
            }
            let unit_price = locked
                .order
                .line(line.line_id)
                .map(|l| l.unit_price().minor())
                .ok_or_else(|| DbError::Corrupt(format!("line {} vanished", line.line_id)))?;
            diesel::insert_into(return_lines::table)
                .values(ReturnLineRow {
                    return_id: return_id.0,
                    line_id: line.line_id.0,
                    id: name(),
                    order_id,
                    number,
                    quantity,
                    unit_price,
                })
                .execute(conn)?;
        }
        write_money(conn, &Return::created(id, &plan), &after, now)?;
        let attempt = if after.refund_state() == RefundState::Pending {
            // The domain refused a refund without a payment; one here is a stored inconsistency.
            let payment = locked.order.payment().ok_or_else(|| {
                DbError::Corrupt(format!(
                    "refund of return {return_id} planned without a payment"
                ))
            })?;
            Some(write_attempt(
                conn,
                installation,
                return_id,
                &after,
                payment,
                now,
            )?)
        } else {
            None
        };
        Ok(ReturnCreated {
            view: view(conn, return_id)?,
            not_returned: plan.not_returned().to_vec(),
            attempt,
        })
    })
}

/// The return a request with this key created, if any.
pub(crate) fn find_by_request_key(
    conn: &mut AnyConnection,
    key: &str,
) -> Result<Option<ReturnView>, DbError> {
    let row: Option<ReturnRow> = returns::table
        .filter(returns::request_key.eq(key))
        .select(ReturnRow::as_select())
        .first(conn)
        .optional()?;
    row.map(|row| to_view(conn, row)).transpose()
}

/// The open (not yet definite) refund attempt of a return, if any.
pub(crate) fn open_refund(
    conn: &mut AnyConnection,
    id: ReturnId,
) -> Result<Option<RefundAttempt>, DbError> {
    Ok(attempts(conn, Some(id), None)?.into_iter().next())
}

/// Locks a return's order and reads the return again under the lock.
fn lock_return(
    conn: &mut AnyConnection,
    id: ReturnId,
    now: Timestamp,
) -> Result<(Locked, ReturnRow, Return), DbError> {
    let row = load_return(conn, id)?.ok_or(DbError::ReturnNotFound(id))?;
    let locked = lock(conn, row.shipment(), now)?;
    let row = load_return(conn, id)?.ok_or(DbError::ReturnNotFound(id))?;
    let ret = to_return(conn, &row)?;
    Ok((locked, row, ret))
}

/// Asks for a return's refund, as the domain decides: a new attempt with a new key.
pub(crate) fn begin_refund(
    conn: &mut AnyConnection,
    installation: &str,
    id: ReturnId,
    providers: &Providers,
    send_email: Option<bool>,
    now: Timestamp,
) -> Result<BeginRefund, DbError> {
    conn.transaction(|conn| {
        let (locked, _, ret) = lock_return(conn, id, now)?;
        let pending = match ret.request_refund(
            &locked.order,
            &locked.shipment,
            &locked.returned,
            providers,
        )? {
            RefundStart::AlreadyRefunded => {
                return Ok(BeginRefund::AlreadyRefunded(view(conn, id)?))
            }
            RefundStart::Started(pending) => pending,
        };
        diesel::update(returns::table.find(id.0))
            .set((
                returns::refund_state.eq(pending.refund_state().as_str()),
                returns::updated_at.eq(now.0),
            ))
            .execute(conn)?;
        if let Some(send) = send_email {
            diesel::update(returns::table.find(id.0))
                .set(returns::send_email.eq(flag(send)))
                .execute(conn)?;
        }
        write_money(conn, &ret, &pending, now)?;
        // The domain refused a refund without a payment; one here is a stored inconsistency.
        let payment = locked.order.payment().ok_or_else(|| {
            DbError::Corrupt(format!("refund of return {id} planned without a payment"))
        })?;
        Ok(BeginRefund::Started(write_attempt(
            conn,
            installation,
            id,
            &pending,
            payment,
            now,
        )?))
    })
}

/// Records a refund attempt's outcome. Only an open attempt is settled, so settling twice
/// changes nothing; refunded issues the credit note and queues the confirmation when asked.
pub(crate) fn settle_refund(
    conn: &mut AnyConnection,
    attempt: &RefundAttempt,
    outcome: &RefundSettle,
    now: Timestamp,
) -> Result<ReturnView, DbError> {
    settle_refund_here(conn, attempt, outcome, Settler::Provider, now).map(|(view, _)| view)
}

/// Who settles a refund attempt: the provider's answer, or an operator's finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Settler {
    Provider,
    Operator,
}

/// [`settle_refund`], and whether this settle is the one that moved the attempt out of its
/// open state (`false`: it was settled before, and nothing changed). An operator's settle of
/// an open attempt is checked again here, on the locked return
/// ([`Return::check_settle_by_hand`]): the provider may have accepted the refund since the
/// operator's command read it under review (it is then pending at the provider, and declining
/// it by hand would let it be asked again and paid twice).
pub(crate) fn settle_refund_here(
    conn: &mut AnyConnection,
    attempt: &RefundAttempt,
    outcome: &RefundSettle,
    settler: Settler,
    now: Timestamp,
) -> Result<(ReturnView, bool), DbError> {
    let id = attempt.return_id;
    conn.transaction(|conn| {
        let (_, row, ret) = lock_return(conn, id, now)?;
        let open = refund_attempts::table
            .filter(refund_attempts::idempotency_key.eq(&attempt.idempotency_key))
            .filter(refund_attempts::state.eq_any(ATTEMPT_OPEN));
        let settled = match outcome {
            RefundSettle::Refunded { reference, status } => diesel::update(open)
                .set((
                    refund_attempts::state.eq(ATTEMPT_SUCCEEDED),
                    refund_attempts::provider_reference.eq(Some(reference)),
                    refund_attempts::provider_status.eq(Some(status)),
                    refund_attempts::updated_at.eq(now.0),
                ))
                .execute(conn)?,
            RefundSettle::Declined { code, message } => diesel::update(open)
                .set((
                    refund_attempts::state.eq(ATTEMPT_FAILED),
                    refund_attempts::decline_code.eq(Some(code)),
                    refund_attempts::decline_message.eq(Some(message)),
                    refund_attempts::updated_at.eq(now.0),
                ))
                .execute(conn)?,
        };
        if settled == 1 {
            if settler == Settler::Operator {
                // An error rolls the attempt's update back with the transaction.
                Return::check_settle_by_hand(ret.refund_state())?;
            }
            let refunded = matches!(outcome, RefundSettle::Refunded { .. });
            let after = ret.settle_refund(refunded)?;
            let (reference, decline) = match outcome {
                RefundSettle::Refunded { reference, .. } => (Some(reference.clone()), None),
                RefundSettle::Declined { code, message } => {
                    (None, Some((code.clone(), message.clone())))
                }
            };
            diesel::update(returns::table.find(id.0))
                .set((
                    returns::refund_state.eq(after.refund_state().as_str()),
                    returns::completed.eq(flag(after.completed())),
                    returns::refund_reference.eq(reference.or(row.refund_reference.clone())),
                    returns::decline_code.eq(decline.as_ref().map(|d| d.0.clone())),
                    returns::decline_message.eq(decline.as_ref().map(|d| d.1.clone())),
                    returns::updated_at.eq(now.0),
                ))
                .execute(conn)?;
            write_money(conn, &ret, &after, now)?;
            if refunded {
                let number = bump_counter(conn, "credit_note_number", 1)?;
                diesel::insert_into(credit_notes::table)
                    .values((
                        credit_notes::number.eq(number),
                        credit_notes::return_id.eq(id.0),
                        credit_notes::amount.eq(after.refund().minor()),
                        credit_notes::issued_at.eq(now.0),
                    ))
                    .execute(conn)?;
                if row.send_email != 0 {
                    crate::outbox::queue_refund_confirmation(
                        conn,
                        row.order_id,
                        row.number,
                        row.id,
                        now,
                    )?;
                }
            }
        }
        Ok((view(conn, id)?, settled == 1))
    })
}

/// The provider accepted the attempt's refund and is still settling it: its reference and
/// status are kept on the open attempt, its passes start again, and the return's refund state
/// is what the domain makes of it (pending, also after needing review). An attempt settled
/// meanwhile is left as it is.
pub(crate) fn record_refund_accepted(
    conn: &mut AnyConnection,
    attempt: &RefundAttempt,
    reference: &str,
    status: &str,
    rest_millis: i64,
    now: Timestamp,
) -> Result<ReturnView, DbError> {
    let id = attempt.return_id;
    conn.transaction(|conn| {
        let (_, _, ret) = lock_return(conn, id, now)?;
        let open = refund_attempts::table
            .filter(refund_attempts::idempotency_key.eq(&attempt.idempotency_key))
            .filter(refund_attempts::state.eq_any(ATTEMPT_OPEN));
        // Settled meanwhile: the return is no longer waiting for this answer.
        let Ok(after) = ret.refund_accepted() else {
            return view(conn, id);
        };
        let changed = diesel::update(open)
            .set((
                refund_attempts::state.eq(ATTEMPT_PENDING),
                refund_attempts::provider_reference.eq(Some(reference)),
                refund_attempts::provider_status.eq(Some(status)),
                refund_attempts::passes.eq(0),
                refund_attempts::last_error.eq(None::<String>),
                refund_attempts::updated_at.eq(now.0),
                refund_attempts::rest_millis.eq(rest_millis.max(0)),
            ))
            .execute(conn)?;
        if changed == 0 {
            return view(conn, id);
        }
        diesel::update(returns::table.find(id.0))
            .set((
                returns::refund_state.eq(after.refund_state().as_str()),
                returns::updated_at.eq(now.0),
            ))
            .execute(conn)?;
        view(conn, id)
    })
}

/// One more pass without an outcome; after `review_after` the return needs review.
pub(crate) fn record_refund_unknown(
    conn: &mut AnyConnection,
    attempt: &RefundAttempt,
    reason: &str,
    now: Timestamp,
    review_after: u32,
) -> Result<bool, DbError> {
    let id = attempt.return_id;
    conn.transaction(|conn| {
        let this = || {
            refund_attempts::table
                .filter(refund_attempts::idempotency_key.eq(&attempt.idempotency_key))
        };
        let changed = diesel::update(this().filter(refund_attempts::state.eq_any(ATTEMPT_OPEN)))
            .set((
                refund_attempts::passes.eq(refund_attempts::passes + 1),
                refund_attempts::last_error.eq(Some(reason)),
                refund_attempts::updated_at.eq(now.0),
            ))
            .execute(conn)?;
        if changed == 0 {
            return Ok(false); // settled meanwhile
        }
        let passes: i32 = this().select(refund_attempts::passes).first(conn)?;
        let row = load_return(conn, id)?.ok_or(DbError::ReturnNotFound(id))?;
        let after = to_return(conn, &row)?.refund_unknown(passes.unsigned_abs(), review_after)?;
        let review = after.refund_state() == RefundState::NeedsReview;
        diesel::update(this())
            .set(refund_attempts::state.eq(if review {
                ATTEMPT_NEEDS_REVIEW
            } else {
                ATTEMPT_UNKNOWN
            }))
            .execute(conn)?;
        diesel::update(returns::table.find(id.0))
            .set((
                returns::refund_state.eq(after.refund_state().as_str()),
                returns::updated_at.eq(now.0),
            ))
            .execute(conn)?;
        Ok(review)
    })
}

/// Refund attempts without a definite outcome last touched before `before` (an accepted one:
/// its rest after its last lookup before `before`), the least recently touched first.
pub(crate) fn pending_refunds(
    conn: &mut AnyConnection,
    before: Timestamp,
) -> Result<Vec<RefundAttempt>, DbError> {
    attempts(conn, None, Some(before))
}

/// Open refund attempts, of one return or last touched before a time, the least recently
/// touched first (then the oldest), with what
/// is needed to replay them.
fn attempts(
    conn: &mut AnyConnection,
    of: Option<ReturnId>,
    before: Option<Timestamp>,
) -> Result<Vec<RefundAttempt>, DbError> {
    let mut select = refund_attempts::table
        .inner_join(orders::table.on(orders::id.eq(refund_attempts::order_id)))
        .filter(refund_attempts::state.eq_any(ATTEMPT_OPEN))
        .select((
            RefundAttemptRow::as_select(),
            (
                orders::currency,
                orders::payment_provider,
                orders::payment_reference,
                orders::authorized,
            ),
        ))
        .into_boxed();
    if let Some(id) = of {
        select = select.filter(refund_attempts::return_id.eq(id.0));
    }
    if let Some(before) = before {
        // An accepted refund rests after each lookup (`rest_millis`, 0 for the others).
        select = select
            .filter((refund_attempts::updated_at + refund_attempts::rest_millis).lt(before.0));
    }
    let rows: Vec<(RefundAttemptRow, crate::shipments::PaymentColumns)> = select
        .order((
            refund_attempts::updated_at.asc(),
            refund_attempts::created_at.asc(),
        ))
        .limit(500)
        .load(conn)?;
    rows.into_iter()
        .map(|(a, (currency, provider, reference, authorized))| {
            let currency: consign_domain::Currency = currency
                .parse()
                .map_err(|_| DbError::Corrupt(format!("currency {currency:?}")))?;
            let (Some(provider), Some(reference)) = (provider, reference) else {
                return Err(DbError::Corrupt(format!(
                    "refund attempt on order {} without payment",
                    a.order_id
                )));
            };
            Ok(RefundAttempt {
                return_id: ReturnId(a.return_id),
                order: consign_domain::OrderId(a.order_id),
                authorization: PaymentAuthorization {
                    provider,
                    reference,
                    amount: Money::from_minor(authorized, currency),
                },
                amount: Money::from_minor(a.amount, currency),
                idempotency_key: a.idempotency_key,
                created_at: Timestamp(a.created_at),
                accepted: a.provider_reference,
            })
        })
        .collect()
}

/// Sets a return completed or pending, as the domain allows.
pub(crate) fn set_completed(
    conn: &mut AnyConnection,
    id: ReturnId,
    completed: bool,
    now: Timestamp,
) -> Result<ReturnView, DbError> {
    conn.transaction(|conn| {
        let (_, _, ret) = lock_return(conn, id, now)?;
        let after = ret.set_completed(completed)?;
        diesel::update(returns::table.find(id.0))
            .set((
                returns::completed.eq(flag(after.completed())),
                returns::updated_at.eq(now.0),
            ))
            .execute(conn)?;
        view(conn, id)
    })
}

/// One return as listed.
pub(crate) fn view(conn: &mut AnyConnection, id: ReturnId) -> Result<ReturnView, DbError> {
    let row = load_return(conn, id)?.ok_or(DbError::ReturnNotFound(id))?;
    to_view(conn, row)
}

pub(crate) fn find(conn: &mut AnyConnection, id: ReturnId) -> Result<Option<ReturnView>, DbError> {
    load_return(conn, id)?
        .map(|row| to_view(conn, row))
        .transpose()
}

fn to_view(conn: &mut AnyConnection, row: ReturnRow) -> Result<ReturnView, DbError> {
    let mut views = to_views(conn, vec![row])?;
    views
        .pop()
        .ok_or_else(|| DbError::Corrupt("a return read without its view".into()))
}

/// A returned line as listed: its row, its order line's sku, name and tax rate, and its
/// shipment line's row id.
type LineColumns = (ReturnLineRow, (String, String, i32), Option<i64>);

/// The returns of `rows` as listed, in their order: four statements whatever their number (the
/// orders, the shipments, the lines, the credit notes), where each return took four of its own.
fn to_views(conn: &mut AnyConnection, rows: Vec<ReturnRow>) -> Result<Vec<ReturnView>, DbError> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let order_ids = distinct(rows.iter().map(|r| r.order_id));
    let numbers = distinct(rows.iter().map(|r| r.number));
    let return_ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let orders_read: HashMap<i64, (String, i64)> = orders::table
        .filter(orders::id.eq_any(&order_ids))
        .select((orders::id, (orders::currency, orders::customer_id)))
        .load::<(i64, (String, i64))>(conn)?
        .into_iter()
        .collect();
    // The pairs asked for and any other shipment of these orders with one of these numbers,
    // which the lookup below passes over.
    let shipment_row_ids: HashMap<(i64, i32), Option<i64>> = shipments::table
        .filter(shipments::order_id.eq_any(&order_ids))
        .filter(shipments::number.eq_any(&numbers))
        .select((shipments::order_id, shipments::number, shipments::row_id))
        .load::<(i64, i32, Option<i64>)>(conn)?
        .into_iter()
        .map(|(order, number, row_id)| ((order, number), row_id))
        .collect();
    let mut lines_by_return: HashMap<i64, Vec<LineColumns>> = HashMap::new();
    for line in return_lines::table
        .inner_join(
            order_lines::table.on(order_lines::order_id
                .eq(return_lines::order_id)
                .and(order_lines::line_id.eq(return_lines::line_id))),
        )
        .inner_join(
            shipment_lines::table.on(shipment_lines::order_id
                .eq(return_lines::order_id)
                .and(shipment_lines::number.eq(return_lines::number))
                .and(shipment_lines::line_id.eq(return_lines::line_id))),
        )
        .filter(return_lines::return_id.eq_any(&return_ids))
        .order((return_lines::return_id.asc(), return_lines::id.asc()))
        .select((
            ReturnLineRow::as_select(),
            (order_lines::sku, order_lines::name, order_lines::tax_rate),
            shipment_lines::row_id,
        ))
        .load::<LineColumns>(conn)?
    {
        lines_by_return
            .entry(line.0.return_id)
            .or_default()
            .push(line);
    }
    let credit_notes_read: HashMap<i64, (i64, i64)> = credit_notes::table
        .filter(credit_notes::return_id.eq_any(&return_ids))
        .select((
            credit_notes::return_id,
            (credit_notes::number, credit_notes::issued_at),
        ))
        .load::<(i64, (i64, i64))>(conn)?
        .into_iter()
        .collect();
    rows.into_iter()
        .map(|row| {
            let (code, customer_id) = orders_read
                .get(&row.order_id)
                .ok_or_else(|| DbError::Corrupt(format!("return {} without its order", row.id)))?;
            let currency: consign_domain::Currency = code
                .parse()
                .map_err(|_| DbError::Corrupt(format!("currency {code:?}")))?;
            let shipment_row_id = shipment_row_ids
                .get(&(row.order_id, row.number))
                .ok_or_else(|| {
                    DbError::Corrupt(format!("return {} without its shipment", row.id))
                })?;
            let lines = lines_by_return.remove(&row.id).unwrap_or_default();
            let credit_note = credit_notes_read.get(&row.id).copied();
            return_view(
                row,
                currency,
                *customer_id,
                *shipment_row_id,
                lines,
                credit_note,
            )
        })
        .collect()
}

/// One return's view from its row and what [`to_views`] read beside it.
fn return_view(
    row: ReturnRow,
    currency: consign_domain::Currency,
    customer_id: i64,
    shipment_row_id: Option<i64>,
    lines: Vec<LineColumns>,
    credit_note: Option<(i64, i64)>,
) -> Result<ReturnView, DbError> {
    let money = |minor: i64| Money::from_minor(minor, currency);
    let decline = match (&row.decline_code, &row.decline_message) {
        (Some(code), Some(message)) => Some((code.clone(), message.clone())),
        _ => None,
    };
    Ok(ReturnView {
        id: row.id(),
        shipment: row.shipment(),
        shipment_row_id: shipment_row_id.unwrap_or(0),
        customer_id,
        completed: row.completed != 0,
        return_to_stock: row.return_to_stock != 0,
        comment: row.comment.clone(),
        lines: lines
            .into_iter()
            .map(|(l, (sku, name, rate), shipment_line)| ReturnLineView {
                id: l.id,
                shipment_line_id: shipment_line.unwrap_or(0),
                line_id: LineId(l.line_id),
                sku,
                name,
                quantity: l.quantity.unsigned_abs(),
                unit_price: money(l.unit_price),
                tax_rate: TaxRate(rate.unsigned_abs()),
            })
            .collect(),
        shipping: money(row.shipping_cost),
        handling: money(row.handling_cost),
        voucher: money(row.voucher_value),
        return_cost: money(row.return_cost),
        tax: money(row.tax_value),
        refund: money(row.refund_value),
        refund_state: row.state()?,
        refund_reference: row.refund_reference.clone(),
        decline,
        credit_note: credit_note.map(|(number, issued_at)| CreditNote {
            number,
            issued_at: Timestamp(issued_at),
        }),
        created_at: Timestamp(row.created_at),
    })
}

/// Returns matching `query`, newest first, read as of one moment: a refund that settles
/// meanwhile shows settled with its credit note, or pending without one, never half of each.
pub(crate) fn list(
    conn: &mut AnyConnection,
    query: &ReturnQuery,
) -> Result<Vec<ReturnView>, DbError> {
    in_one_snapshot(conn, |conn| list_in(conn, query))
}

/// [`list`], its statements: the page, then [`to_views`]'s four.
fn list_in(conn: &mut AnyConnection, query: &ReturnQuery) -> Result<Vec<ReturnView>, DbError> {
    let mut select = returns::table
        .inner_join(orders::table.on(orders::id.eq(returns::order_id)))
        .select(ReturnRow::as_select())
        .into_boxed();
    if let Some(id) = query.id {
        select = select.filter(returns::id.eq(id.0));
    }
    if let Some(shipment) = query.shipment {
        select = select
            .filter(returns::order_id.eq(shipment.order.0))
            .filter(returns::number.eq(int(shipment.number)));
    }
    if let Some(order) = query.order {
        select = select.filter(returns::order_id.eq(order.0));
    }
    if let Some(customer) = query.customer_id {
        select = select.filter(orders::customer_id.eq(customer));
    }
    if let Some(since) = query.newer_than {
        select = select.filter(returns::created_at.ge(since.0));
    }
    if let Some(before) = query.older_than {
        select = select.filter(returns::created_at.lt(before.0));
    }
    let rows: Vec<ReturnRow> = select
        .order((returns::created_at.desc(), returns::id.desc()))
        .limit(i64::from(query.limit))
        .offset(i64::from(query.offset))
        .load(conn)?;
    to_views(conn, rows)
}
