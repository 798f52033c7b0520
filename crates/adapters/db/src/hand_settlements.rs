//! An operator's settlement of a capture or a refund under review: the settle, and the record
//! that it was settled by hand, in one transaction.
//!
//! An attempt is recorded once: a second operator's settlement of the same attempt (both passed
//! the review check before either settled) finds it settled, changes nothing and keeps the
//! first record, and is answered the state the attempt is in, as a settle racing recovery is.
//! The settle writes the order or the attempt's row before the record, and the first holds
//! that row until it commits, so the second waits for it and then sees its record.

use consign_ports::{
    CaptureAttempt, CaptureSettled, RefundAttempt, RefundSettle, ReturnView, SettleOutcome,
    Timestamp,
};
use diesel::prelude::*;

use crate::connection::AnyConnection;
use crate::error::DbError;
use crate::rows::int;
use crate::schema::{hand_settlements, refund_hand_settlements};
use crate::shipments::settle_capture;

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
        let settled = settle_capture(conn, attempt, outcome, None, now)?;
        let recorded = hand_settlements::table
            .find((attempt.shipment.order.0, &attempt.idempotency_key))
            .count()
            .get_result::<i64>(conn)?;
        if recorded > 0 {
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
        let settled = crate::returns::settle_refund(conn, attempt, outcome, now)?;
        let recorded = refund_hand_settlements::table
            .find(&attempt.idempotency_key)
            .count()
            .get_result::<i64>(conn)?;
        if recorded > 0 {
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
