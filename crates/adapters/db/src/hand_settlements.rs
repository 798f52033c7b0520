//! An operator's settlement of a capture or a refund under review: the settle, and the record
//! that it was settled by hand, in one transaction.
//!
//! A record is written only by the settle that moved the attempt out of its open state, so the
//! table holds exactly the attempts an operator settled. An operator's settlement that finds
//! the attempt settled meanwhile (by recovery, on the provider's answer, or by a second
//! operator, both having passed the review check before either settled) changes nothing,
//! records nothing, and is answered the state the attempt is in. The settle writes the order
//! or the attempt's row first and holds it until it commits, so of two settles racing, the
//! second waits for the first and then finds the attempt settled.

use consign_ports::{
    CaptureAttempt, CaptureSettled, RefundAttempt, RefundSettle, ReturnView, SettleOutcome,
    Timestamp,
};
use diesel::prelude::*;

use crate::connection::AnyConnection;
use crate::error::DbError;
use crate::rows::int;
use crate::schema::{hand_settlements, refund_hand_settlements};
use crate::shipments::settle_capture_here;

/// Settles `attempt` as the operator found it (the locked settle, nothing kept from the
/// reservation) and records the finding with the shipment's state after it.
pub(crate) fn settle_by_hand(
    conn: &mut AnyConnection,
    attempt: &CaptureAttempt,
    outcome: &SettleOutcome,
    now: Timestamp,
) -> Result<CaptureSettled, DbError> {
    let (finding, detail) = match outcome {
        SettleOutcome::Captured { reference } => ("captured", reference),
        SettleOutcome::Declined { message, .. } => ("not_captured", message),
    };
    conn.transaction(|conn| {
        let (settled, here) = settle_capture_here(conn, attempt, outcome, None, now)?;
        if !here {
            return Ok(settled);
        }
        diesel::insert_into(hand_settlements::table)
            .values((
                hand_settlements::order_id.eq(attempt.shipment.order.0),
                hand_settlements::idempotency_key.eq(&attempt.idempotency_key),
                hand_settlements::number.eq(int(attempt.shipment.number)),
                hand_settlements::finding.eq(finding),
                hand_settlements::detail.eq(detail),
                hand_settlements::state_after.eq(settled.shipment.state.as_str()),
                hand_settlements::settled_at.eq(now.0),
            ))
            .execute(conn)?;
        Ok(settled)
    })
}

/// Settles the refund `attempt` as the operator found it (the same settle as a provider's
/// answer) and records the finding with the return's refund state after it.
pub(crate) fn settle_refund_by_hand(
    conn: &mut AnyConnection,
    attempt: &RefundAttempt,
    outcome: &RefundSettle,
    now: Timestamp,
) -> Result<ReturnView, DbError> {
    let (finding, detail) = match outcome {
        RefundSettle::Refunded { reference, .. } => ("refunded", reference),
        RefundSettle::Declined { message, .. } => ("not_refunded", message),
    };
    conn.transaction(|conn| {
        let (settled, here) = crate::returns::settle_refund_here(
            conn,
            attempt,
            outcome,
            crate::returns::Settler::Operator,
            now,
        )?;
        if !here {
            return Ok(settled);
        }
        diesel::insert_into(refund_hand_settlements::table)
            .values((
                refund_hand_settlements::return_id.eq(attempt.return_id.0),
                refund_hand_settlements::idempotency_key.eq(&attempt.idempotency_key),
                refund_hand_settlements::finding.eq(finding),
                refund_hand_settlements::detail.eq(detail),
                refund_hand_settlements::state_after.eq(settled.refund_state.as_str()),
                refund_hand_settlements::settled_at.eq(now.0),
            ))
            .execute(conn)?;
        Ok(settled)
    })
}
