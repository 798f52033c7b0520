//! A capture or complete answered 503 (its capture's outcome unknown) gives its idempotency key
//! up. When recovery then settles that capture declined, the shipment is uncaptured again; the
//! request's retry with the same key must be answered with that decline, "capture failed",
//! and never start a second capture of its own. The service, the real store and the real
//! Stripe adapter against the provider stand-in.

use consign_domain::*;
use consign_ports::ShipmentDetails;
use consign_provider_stand_in::Fault;
use consign_service::ServiceError;
use consign_tests::stripe_rig::*;
use consign_tests::*;

/// Line A shipped uncaptured, then its capture started by `start` with every answer of the
/// three calls lost (500s): unknown. Recovery then meets Stripe's decline.
async fn a_capture_unknown_then_declined<F, Fut>(rig: &Rig, start: F) -> ShipmentId
where
    F: Fn(ShipmentId) -> Fut,
    Fut: std::future::Future<Output = Result<consign_ports::ShipmentView, ServiceError>>,
{
    let (order, a, _) = order(rig).await;
    let request = ShipmentRequest {
        lines: vec![ShipmentLine {
            line_id: a,
            quantity: 1,
        }],
        capture: false,
        deduct_previous_costs: false,
    };
    let created = rig
        .consign
        .create_shipment(order, request, ShipmentDetails::default(), None)
        .await
        .unwrap();
    let id = created.id;
    rig.stand_in
        .inject([Fault::Status(500), Fault::Status(500), Fault::Status(500)]);
    let first = start(id).await;
    assert!(
        matches!(first, Err(ServiceError::CaptureUnknown(s)) if s == id),
        "{first:?}"
    );
    rig.stand_in.inject([Fault::Status(402)]);
    rig.clock.forward(10_000);
    let report = rig.consign.recover_pending_captures(0).await.unwrap();
    assert_eq!(report.examined, 1, "{report:?}");
    assert_eq!(state_of(rig, id).await, Some(ShipmentState::Uncaptured));
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capture_retried_with_its_key_after_a_decline_is_answered_capture_failed() {
    for backend in backends() {
        let rig = rig(backend).await;
        let key = Some("1:capture-k".to_owned());
        let id = a_capture_unknown_then_declined(&rig, |id| {
            rig.consign.capture_shipment(id, None, key.clone())
        })
        .await;
        let calls = rig.stand_in.requests();
        let retry = rig.consign.capture_shipment(id, None, key.clone()).await;
        assert!(
            matches!(retry, Err(ServiceError::CaptureFailed(s)) if s == id),
            "{backend:?}: {retry:?}"
        );
        assert_eq!(rig.stand_in.requests(), calls, "{backend:?}: sent again");
        assert!(rig.stand_in.ledger().is_empty(), "{backend:?}");
        assert_eq!(
            state_of(&rig, id).await,
            Some(ShipmentState::Uncaptured),
            "{backend:?}"
        );
        // A new request, with a key of its own, is a new capture.
        let fresh = rig
            .consign
            .capture_shipment(id, None, Some("1:capture-k2".into()))
            .await
            .unwrap();
        assert_eq!(fresh.state, ShipmentState::Captured, "{backend:?}");
        assert_eq!(rig.stand_in.ledger().len(), 1, "{backend:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_complete_retried_with_its_key_after_a_decline_applies_nothing() {
    for backend in backends() {
        let rig = rig(backend).await;
        let key = Some("1:complete-k".to_owned());
        let changes = consign_ports::ShipmentChanges {
            gtg: true,
            shipped: true,
            ..Default::default()
        };
        let id = a_capture_unknown_then_declined(&rig, |id| {
            rig.consign
                .complete_shipment(id, None, true, changes.clone(), key.clone())
        })
        .await;
        let retry = rig
            .consign
            .complete_shipment(id, None, true, changes.clone(), key.clone())
            .await;
        assert!(
            matches!(retry, Err(ServiceError::CaptureFailed(s)) if s == id),
            "{backend:?}: {retry:?}"
        );
        assert!(rig.stand_in.ledger().is_empty(), "{backend:?}");
        let listing = rig.consign.get_shipment(id, None).await.unwrap();
        assert_eq!(
            (listing.shipment.state, listing.shipment.details.shipped),
            (ShipmentState::Uncaptured, false),
            "{backend:?}"
        );
    }
}
