//! A refund the provider accepts but has not made yet (Stripe's `pending`): the service, the
//! real store and the real Stripe adapter against the provider stand-in. It must not count as
//! refunded (no credit note, the return not completed) until the provider says it succeeded,
//! and one that fails later must leave the return refundable again, never refunded twice.

use consign_domain::*;
use consign_ports::ReturnView;
use consign_service::RefundResult;
use consign_tests::stripe_rig::*;
use consign_tests::*;

/// One recovery pass a second later (recovery takes attempts last touched before now).
async fn recovery_pass(rig: &Rig) -> consign_service::RefundRecoveryReport {
    rig.clock.forward(1_000);
    rig.consign.recover_pending_refunds(0).await.unwrap()
}

/// Line A shipped and captured, then returned whole with its refund while the provider holds
/// refunds: the refund is answered settling.
async fn returned_while_refunds_are_held(rig: &Rig) -> consign_service::ReturnOutcome {
    let (order, a, _) = order(rig).await;
    let shipped = ship(rig, order, a).await.unwrap();
    rig.stand_in.hold_refunds(true);
    let created = rig
        .consign
        .create_return(whole_return(shipped.id), None)
        .await
        .unwrap();
    assert_eq!(created.refund, Some(RefundResult::Settling));
    created
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_refund_is_not_refunded_until_the_provider_says_it_succeeded() {
    for backend in backends() {
        let rig = rig(backend).await;
        let created = returned_while_refunds_are_held(&rig).await;
        let id = created.view.id;
        let pending = |view: &ReturnView| {
            view.refund_state == RefundState::Pending
                && !view.completed
                && view.credit_note.is_none()
        };
        assert!(pending(&created.view), "{backend:?}: {:?}", created.view);

        // Still pending at the provider: looked up, left pending, nothing sent again.
        let report = recovery_pass(&rig).await;
        assert_eq!(
            (report.examined, report.settling),
            (1, 1),
            "{backend:?}: {report:?}"
        );
        let view = rig.consign.get_return(id).await.unwrap();
        assert!(pending(&view), "{backend:?}: {view:?}");

        // The provider made it: refunded once, with its credit note.
        assert!(rig.stand_in.finish_refund("re_1", true));
        let report = recovery_pass(&rig).await;
        assert_eq!(
            (report.examined, report.refunded),
            (1, 1),
            "{backend:?}: {report:?}"
        );
        let view = rig.consign.get_return(id).await.unwrap();
        assert_eq!(view.refund_state, RefundState::Refunded, "{backend:?}");
        assert!(
            view.completed && view.credit_note.is_some(),
            "{backend:?}: {view:?}"
        );
        assert_eq!(recovery_pass(&rig).await.examined, 0, "{backend:?}");
        assert_eq!(rig.stand_in.refund_ledger().len(), 1, "{backend:?}");
        assert_eq!(rig.stand_in.refunded_total(), 10_000, "{backend:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_refund_that_fails_later_is_declined_and_can_be_asked_again() {
    for backend in backends() {
        let rig = rig(backend).await;
        let created = returned_while_refunds_are_held(&rig).await;
        let id = created.view.id;
        // Its amount is held while it settles: asking again is refused, nothing sent.
        assert!(
            rig.consign
                .update_return(id, None, true, None)
                .await
                .is_err(),
            "{backend:?}"
        );
        assert_eq!(rig.stand_in.refund_ledger().len(), 1, "{backend:?}");

        // The provider could not make it after all.
        assert!(rig.stand_in.finish_refund("re_1", false));
        let report = recovery_pass(&rig).await;
        assert_eq!(
            (report.examined, report.declined),
            (1, 1),
            "{backend:?}: {report:?}"
        );
        let view = rig.consign.get_return(id).await.unwrap();
        assert_eq!(view.refund_state, RefundState::Declined, "{backend:?}");
        assert!(
            !view.completed && view.credit_note.is_none(),
            "{backend:?}: {view:?}"
        );

        // Asked again (a new attempt, a new key), it is made once.
        rig.stand_in.hold_refunds(false);
        let view = rig
            .consign
            .update_return(id, None, true, None)
            .await
            .unwrap();
        assert_eq!(view.refund_state, RefundState::Refunded, "{backend:?}");
        assert!(
            view.completed && view.credit_note.is_some(),
            "{backend:?}: {view:?}"
        );
        let ledger = rig.stand_in.refund_ledger();
        assert_eq!(ledger.len(), 2, "{backend:?}: {ledger:?}");
        assert_ne!(ledger[0].idempotency_key, ledger[1].idempotency_key);
        assert_eq!(rig.stand_in.refunded_total(), 10_000, "{backend:?}");
    }
}

/// A refund the provider keeps settling is looked up less often as it ages (a tenth of its age
/// after each lookup, at most an hour), not on every recovery pass: each lookup is a call to
/// the provider and a write. Once made, it settles at the next lookup.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_the_provider_keeps_settling_is_looked_up_less_often_as_it_ages() {
    for backend in backends() {
        let rig = rig(backend).await;
        let id = returned_while_refunds_are_held(&rig).await.view.id;
        // One pass `after` ms later: whether it looked the refund up, and whether that took a
        // call to the provider.
        let pass_after = |after: i64| {
            let rig = &rig;
            async move {
                rig.clock.forward(after);
                let calls = rig.stand_in.requests();
                let report = rig.consign.recover_pending_refunds(0).await.unwrap();
                let called = rig.stand_in.requests() > calls;
                assert_eq!(report.examined > 0, called, "{backend:?}: {report:?}");
                (report.examined, report.settling, report.refunded)
            }
        };
        // Ten minutes old: looked up, still settling; it now rests a minute.
        assert_eq!(pass_after(600_000).await, (1, 1, 0), "{backend:?}");
        assert_eq!(pass_after(50_000).await, (0, 0, 0), "{backend:?}");
        assert_eq!(pass_after(11_000).await, (1, 1, 0), "{backend:?}");
        // Two days old: it rests an hour, no longer.
        assert_eq!(pass_after(2 * 86_400_000).await, (1, 1, 0), "{backend:?}");
        assert_eq!(pass_after(3_500_000).await, (0, 0, 0), "{backend:?}");
        assert_eq!(pass_after(101_000).await, (1, 1, 0), "{backend:?}");
        // Made meanwhile: settled at the next lookup, an hour on at most.
        assert!(rig.stand_in.finish_refund("re_1", true));
        assert_eq!(pass_after(1_000).await, (0, 0, 0), "{backend:?}");
        assert_eq!(pass_after(3_600_000).await, (1, 0, 1), "{backend:?}");
        let view = rig.consign.get_return(id).await.unwrap();
        assert_eq!(view.refund_state, RefundState::Refunded, "{backend:?}");
        assert_eq!(rig.stand_in.refund_ledger().len(), 1, "{backend:?}");
    }
}

/// Over HTTP, with the app's own recovery: `POST return` answers a refund still settling as
/// `pending`, never `ok`, the return not completed and without a credit note; once the
/// provider made it, recovery settles it and the return shows it refunded.
#[test]
fn over_http_a_pending_refund_answers_pending_and_recovery_settles_it() {
    use consign_provider_stand_in::{StandIn, SECRET_KEY};
    use serde_json::json;
    for backend in backends() {
        let stand_in = StandIn::start_in_background();
        let app = spawn_app_with(
            backend,
            &[
                ("CONSIGN_GATEWAY", "stripe"),
                ("CONSIGN_STRIPE_SECRET_KEY", SECRET_KEY),
                ("CONSIGN_STRIPE_API_BASE", &stand_in.url),
            ],
        );
        stand_in.authorize("pi_880", 5_900, "SEK", false);
        let ids = app.import(
            &json!({"order": 880, "currency": "SEK", "email": "a@example.com",
            "products": [{"sku": "A", "name": "A", "qty": 1, "price": "55.00", "vat": "25"}],
            "shippingValue": "4.00",
            "payment": {"provider": "stripe", "reference": "pi_880", "amount": "59.00"}}),
        );
        let shipped = app.post(
            "/shipments",
            &json!({"order": 880, "products": {ids[0].clone(): 1}}),
        );
        assert_eq!(
            shipped.json()["status"],
            "ok",
            "{backend:?}: {}",
            shipped.body
        );
        let shipment = shipped.json()["shipment"].as_str().unwrap().to_owned();
        stand_in.hold_refunds(true);
        let created = app.post(
            "/return",
            &json!({"shipment": shipment, "products": {ids[0].clone(): 1},
                    "refund": {"refundPayment": true}}),
        );
        let answer = created.json();
        assert_eq!(created.status, 200, "{backend:?}: {}", created.body);
        assert_eq!(answer["status"], "ok", "{backend:?}: {answer}");
        assert_eq!(
            answer["refund"]["status"], "pending",
            "{backend:?}: {answer}"
        );
        assert_eq!(answer["returnCompleted"], json!(false), "{backend:?}");
        assert!(answer.get("creditNote").is_none(), "{backend:?}: {answer}");
        let id = answer["return"].as_i64().unwrap();
        let listed = || app.get(&format!("/returns?return={id}")).json()["returns"][0].clone();
        assert_eq!(listed()["refundState"], "pending", "{backend:?}");

        assert!(stand_in.finish_refund("re_1", true));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while listed()["refundState"] == "pending" && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        let settled = listed();
        assert_eq!(settled["refundState"], "refunded", "{backend:?}: {settled}");
        assert_eq!(settled["completed"], json!(true), "{backend:?}: {settled}");
        assert!(settled["creditNote"].is_string(), "{backend:?}: {settled}");
        assert_eq!(stand_in.refund_ledger().len(), 1, "{backend:?}");
    }
}
