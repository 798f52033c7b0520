//! A capture whose outcome stays unknown for longer than the provider keeps idempotency keys:
//! the service, the real store and the real Stripe adapter against the provider stand-in, with
//! a clock the test moves forward and a stand-in that forgets its keys, as Stripe does after a
//! day. Replaying such a capture with its key would capture it again; it must be looked up.

use consign_domain::*;
use consign_provider_stand_in::Fault;
use consign_service::{ServiceError, KEY_WINDOW_MILLIS, REPLAY_MARGIN_MILLIS};
use consign_tests::stripe_rig::*;
use consign_tests::*;

const HOUR: i64 = 3_600_000;

/// Ships line A (captured), then line B with every answer of its capture lost in the way
/// `fault` says (the Stripe adapter tries three times): B's outcome is unknown.
async fn one_settled_and_one_lost(rig: &Rig, fault: Fault) -> (OrderId, LineId, ShipmentId) {
    let (order, a, b) = order(rig).await;
    let first = ship(rig, order, a).await.unwrap();
    assert_eq!(first.state, ShipmentState::Captured);
    rig.stand_in
        .inject([fault.clone(), fault.clone(), fault.clone()]);
    let lost = ship(rig, order, b).await;
    let Err(ServiceError::CaptureUnknown(second)) = lost else {
        panic!("expected an unknown outcome, got {lost:?}");
    };
    (order, b, second)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capture_made_but_unanswered_past_the_key_window_is_found_and_never_made_twice() {
    for backend in backends() {
        let rig = rig(backend).await;
        let (_, _, second) = one_settled_and_one_lost(&rig, Fault::DropAfterProcessing).await;
        assert_eq!(
            rig.stand_in.ledger().len(),
            2,
            "{backend:?}: the provider did capture B"
        );
        // A day later the provider has forgotten the key: sent again, it would be a new capture.
        rig.clock.forward(25 * HOUR);
        rig.stand_in.forget_keys();
        let report = rig.consign.recover_pending_captures(0).await.unwrap();
        assert_eq!(
            (report.examined, report.captured),
            (1, 1),
            "{backend:?}: {report:?}"
        );
        assert_eq!(
            rig.stand_in.ledger().len(),
            2,
            "{backend:?}: captured twice: {:?}",
            rig.stand_in.ledger()
        );
        assert_eq!(rig.stand_in.captured_total(), 15_000, "{backend:?}");
        assert_eq!(
            state_of(&rig, second).await,
            Some(ShipmentState::Captured),
            "{backend:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capture_never_made_past_the_key_window_is_declined_after_the_margin_and_never_sent() {
    for backend in backends() {
        let rig = rig(backend).await;
        let (order, line_b, second) =
            one_settled_and_one_lost(&rig, Fault::DropBeforeProcessing).await;
        assert_eq!(
            rig.stand_in.ledger().len(),
            1,
            "{backend:?}: B was never captured"
        );
        // Just past the window a replay with the key may still be on its way: it stays open.
        rig.clock.forward(KEY_WINDOW_MILLIS + 1);
        rig.stand_in.forget_keys();
        let report = rig.consign.recover_pending_captures(0).await.unwrap();
        assert_eq!(
            (report.examined, report.unresolved),
            (1, 1),
            "{backend:?}: {report:?}"
        );
        assert_eq!(
            state_of(&rig, second).await,
            Some(ShipmentState::CapturePending),
            "{backend:?}"
        );
        // Past the margin it is settled as the provider has it: not captured, the shipment
        // voided and its units free to ship again. The provider was only asked, never sent it.
        rig.clock.forward(REPLAY_MARGIN_MILLIS);
        let report = rig.consign.recover_pending_captures(0).await.unwrap();
        assert_eq!(
            (report.examined, report.declined),
            (1, 1),
            "{backend:?}: {report:?}"
        );
        assert_eq!(rig.stand_in.ledger().len(), 1, "{backend:?}");
        assert_eq!(state_of(&rig, second).await, None, "{backend:?}: voided");
        let again = ship(&rig, order, line_b).await.unwrap();
        assert_eq!(again.state, ShipmentState::Captured, "{backend:?}");
        assert_eq!(rig.stand_in.captured_total(), 15_000, "{backend:?}");
    }
}

/// Line A's capture is made but unanswered; line B, shipped a minute later, completes the order
/// and so closes the authorisation: it waits for A. Past the window A is looked up. B, which
/// waited, was never sent and cannot be in the provider's total, so it must not keep A
/// undecided (each would wait for the other for ever, A's money taken and never recorded).
/// B itself is then past the window too and never sent: not made, it is declined and shipped
/// again, as any capture not made past the window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_final_capture_waiting_behind_a_lost_one_neither_blocks_its_lookup_nor_is_sent_late() {
    for backend in backends() {
        let rig = rig(backend).await;
        let (order, a, b) = order(&rig).await;
        let fault = Fault::DropAfterProcessing;
        rig.stand_in
            .inject([fault.clone(), fault.clone(), fault.clone()]);
        let Err(ServiceError::CaptureUnknown(first)) = ship(&rig, order, a).await else {
            panic!("{backend:?}: expected A's outcome to be unknown");
        };
        assert_eq!(
            rig.stand_in.ledger().len(),
            1,
            "{backend:?}: A was captured"
        );
        rig.clock.forward(60_000);
        let Err(ServiceError::CaptureUnknown(second)) = ship(&rig, order, b).await else {
            panic!("{backend:?}: expected B to wait for A");
        };
        assert_eq!(rig.stand_in.ledger().len(), 1, "{backend:?}: B waited");
        rig.clock.forward(25 * HOUR);
        rig.stand_in.forget_keys();
        let report = rig.consign.recover_pending_captures(0).await.unwrap();
        assert_eq!(
            (report.examined, report.captured, report.declined),
            (2, 1, 1),
            "{backend:?}: {report:?}"
        );
        assert_eq!(
            state_of(&rig, first).await,
            Some(ShipmentState::Captured),
            "{backend:?}: A's money was taken"
        );
        assert_eq!(state_of(&rig, second).await, None, "{backend:?}: B voided");
        assert_eq!(
            rig.stand_in.ledger().len(),
            1,
            "{backend:?}: B never sent late"
        );
        let again = ship(&rig, order, b).await.unwrap();
        assert_eq!(again.state, ShipmentState::Captured, "{backend:?}");
        assert_eq!(rig.stand_in.ledger().len(), 2, "{backend:?}");
        assert_eq!(rig.stand_in.captured_total(), 15_000, "{backend:?}");
    }
}

/// Line A's capture is never made and its answer lost; line B, shipped later, completes the
/// order and so was planned as the final capture: it waits for A. Past the window A is looked
/// up, not found, and declined: its unit is shippable again, so B no longer completes the order
/// and must leave the authorisation open. Sent as final, B would close it, and the unit of A
/// shipped again could never be captured: the order would be paid 50.00 short.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capture_planned_final_goes_out_open_when_an_earlier_one_is_declined() {
    for backend in backends() {
        let rig = rig(backend).await;
        let (order, a, b) = order(&rig).await;
        let fault = Fault::DropBeforeProcessing;
        rig.stand_in
            .inject([fault.clone(), fault.clone(), fault.clone()]);
        let Err(ServiceError::CaptureUnknown(first)) = ship(&rig, order, a).await else {
            panic!("{backend:?}: expected A's outcome to be unknown");
        };
        rig.clock.forward(25 * HOUR);
        rig.stand_in.forget_keys();
        let Err(ServiceError::CaptureUnknown(second)) = ship(&rig, order, b).await else {
            panic!("{backend:?}: expected B to wait for A");
        };
        assert!(rig.stand_in.ledger().is_empty(), "{backend:?}: B waited");
        rig.clock.forward(60_000);
        // One pass, oldest first: A is declined, then B (read with A) goes out.
        let report = rig.consign.recover_pending_captures(0).await.unwrap();
        assert_eq!(
            (report.examined, report.captured, report.declined),
            (2, 1, 1),
            "{backend:?}: {report:?}"
        );
        assert_eq!(state_of(&rig, first).await, None, "{backend:?}: A voided");
        assert_eq!(
            state_of(&rig, second).await,
            Some(ShipmentState::Captured),
            "{backend:?}"
        );
        let again = ship(&rig, order, a).await;
        assert_eq!(
            again.map(|s| s.state),
            Ok(ShipmentState::Captured),
            "{backend:?}: A's unit shipped again is captured"
        );
        assert_eq!(rig.stand_in.ledger().len(), 2, "{backend:?}");
        assert_eq!(rig.stand_in.captured_total(), 15_000, "{backend:?}");
    }
}
