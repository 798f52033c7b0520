//! A refund recovery could not settle, flagged for review and settled by an operator from what
//! the provider's dashboard shows, as captures are (`review.rs`): the service, the real store
//! and the real Stripe adapter against the provider stand-in, whose answers are lost until the
//! refund needs review.

use consign_domain::*;
use consign_provider_stand_in::Fault;
use consign_service::{RefundFinding, ServiceError, REVIEW_AFTER_PASSES};
use consign_tests::stripe_rig::*;
use consign_tests::*;

/// Settling `id`'s refund by hand is refused: it is not waiting for review.
async fn refused_by_hand(rig: &Rig, id: ReturnId, context: &str) {
    let refused = rig
        .consign
        .settle_refund_by_hand(
            id,
            RefundFinding::NotRefunded {
                note: "not refunded".into(),
            },
        )
        .await;
    assert!(
        matches!(
            refused,
            Err(ServiceError::ReturnRejected(
                ReturnError::RefundNotUnderReview(_)
            ))
        ),
        "{context}: {refused:?}"
    );
}

/// Line A shipped and captured, then returned whole with its refund, every answer of the
/// refund lost as `first` says for the first try and `then` for the rest; recovery runs until
/// the refund needs review, and before that settling it by hand is refused.
async fn a_refund_under_review(rig: &Rig, first: Fault, then: Fault) -> ReturnId {
    let (order, a, _) = order(rig).await;
    let shipped = ship(rig, order, a).await.unwrap();
    rig.stand_in.inject([first, then.clone(), then.clone()]);
    let Err(ServiceError::RefundUnknown(id)) = rig
        .consign
        .create_return(whole_return(shipped.id), None)
        .await
    else {
        panic!("expected the refund's outcome to be unknown");
    };
    for pass in 1..=REVIEW_AFTER_PASSES {
        let view = rig.consign.get_return(id).await.unwrap();
        if view.refund_state == RefundState::NeedsReview {
            break;
        }
        refused_by_hand(rig, id, &format!("pass {pass}")).await;
        rig.clock.forward(60_000);
        rig.stand_in
            .inject([then.clone(), then.clone(), then.clone()]);
        let report = rig.consign.recover_pending_refunds(0).await.unwrap();
        assert_eq!(report.unresolved, 1, "pass {pass}: {report:?}");
    }
    let view = rig.consign.get_return(id).await.unwrap();
    assert_eq!(view.refund_state, RefundState::NeedsReview);
    id
}

/// The store's record of the refunds settled by hand.
async fn refund_hand_settlements(rig: &Rig) -> Vec<String> {
    rig.database
        .dump()
        .await
        .unwrap()
        .into_iter()
        .filter(|row| row.starts_with("refund_hand_settlements "))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_found_made_at_the_provider_is_settled_refunded_with_its_reference() {
    for backend in backends() {
        let rig = rig(backend).await;
        let id = a_refund_under_review(&rig, Fault::DropAfterProcessing, Fault::Status(500)).await;
        let made = rig.stand_in.refund_ledger();
        assert_eq!(made.len(), 1, "{backend:?}: the provider refunded once");
        let settled = rig
            .consign
            .settle_refund_by_hand(
                id,
                RefundFinding::Refunded {
                    reference: made[0].id.clone(),
                },
            )
            .await
            .unwrap();
        assert_eq!(settled.refund_state, RefundState::Refunded, "{backend:?}");
        assert!(
            settled.completed && settled.credit_note.is_some(),
            "{backend:?}"
        );
        assert_eq!(
            settled.refund_reference.as_deref(),
            Some(made[0].id.as_str()),
            "{backend:?}"
        );
        let recorded = refund_hand_settlements(&rig).await;
        assert_eq!(recorded.len(), 1, "{backend:?}: {recorded:?}");
        let finding = format!("\"refunded\", {:?}, \"refunded\"", made[0].id);
        assert!(recorded[0].contains(&finding), "{backend:?}: {recorded:?}");
        // Settled: recovery has nothing left, and a second settlement is refused.
        let report = rig.consign.recover_pending_refunds(0).await.unwrap();
        assert_eq!(report.examined, 0, "{backend:?}: {report:?}");
        refused_by_hand(&rig, id, &format!("{backend:?}, settled")).await;
        assert_eq!(rig.stand_in.refund_ledger().len(), 1, "{backend:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_found_not_made_is_declined_and_can_be_asked_again() {
    for backend in backends() {
        let rig = rig(backend).await;
        // Here every answer was lost before the provider refunded anything.
        let fault = Fault::DropBeforeProcessing;
        let id = a_refund_under_review(&rig, fault.clone(), fault).await;
        assert!(rig.stand_in.refund_ledger().is_empty(), "{backend:?}");
        let settled = rig
            .consign
            .settle_refund_by_hand(
                id,
                RefundFinding::NotRefunded {
                    note: "no refund in the dashboard".into(),
                },
            )
            .await
            .unwrap();
        assert_eq!(settled.refund_state, RefundState::Declined, "{backend:?}");
        assert!(
            !settled.completed && settled.credit_note.is_none(),
            "{backend:?}"
        );
        let recorded = refund_hand_settlements(&rig).await;
        let finding = "\"not_refunded\", \"no refund in the dashboard\", \"declined\"";
        assert_eq!(recorded.len(), 1, "{backend:?}: {recorded:?}");
        assert!(recorded[0].contains(finding), "{backend:?}: {recorded:?}");
        // The held amount is free again: asked again, it is refunded once, in full.
        let again = rig
            .consign
            .update_return(id, None, true, None)
            .await
            .unwrap();
        assert_eq!(again.refund_state, RefundState::Refunded, "{backend:?}");
        assert_eq!(rig.stand_in.refund_ledger().len(), 1, "{backend:?}");
        assert_eq!(rig.stand_in.refunded_total(), 10_000, "{backend:?}");
    }
}
