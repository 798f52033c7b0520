//! The real Stripe adapter over HTTP against the provider stand-in on loopback.

use std::time::Duration;

use consign_domain::{Money, PaymentAuthorization};
use consign_payments::{StripeConfig, StripeGateway};
use consign_ports::{
    CaptureOutcome, CaptureRequest, CapturedTotal, PaymentGateway, RefundLookup, RefundOutcome,
    RefundRequest,
};
use consign_provider_stand_in::{Fault, StandIn, SECRET_KEY};

fn gateway(stand_in: &StandIn, tune: impl FnOnce(&mut StripeConfig)) -> StripeGateway {
    let mut config = StripeConfig::new(SECRET_KEY);
    config.api_base = stand_in.url.clone();
    config.timeout = Duration::from_millis(500);
    config.backoff = Duration::from_millis(10);
    tune(&mut config);
    StripeGateway::new(config).unwrap()
}

fn capture(intent: &str, amount: i64, key: &str, final_capture: bool) -> CaptureRequest {
    let sek = "SEK".parse().unwrap();
    CaptureRequest {
        authorization: PaymentAuthorization {
            provider: "stripe".into(),
            reference: intent.into(),
            amount: Money::from_minor(10_000, sek),
        },
        amount: Money::from_minor(amount, sek),
        idempotency_key: key.into(),
        final_capture,
    }
}

fn is_captured(outcome: &CaptureOutcome) -> bool {
    matches!(outcome, CaptureOutcome::Captured { .. })
}

#[tokio::test]
async fn a_capture_succeeds_once_and_a_replay_gets_the_same_answer() {
    let stand_in = StandIn::start().await;
    stand_in.authorize("pi_1", 10_000, "SEK", false);
    let stripe = gateway(&stand_in, |_| {});
    let first = stripe.capture(capture("pi_1", 10_000, "k1", true)).await;
    assert_eq!(
        first,
        CaptureOutcome::Captured {
            reference: "ch_1".into()
        }
    );
    assert_eq!(
        stripe.capture(capture("pi_1", 10_000, "k1", true)).await,
        first
    );
    assert_eq!(stand_in.captured_total(), 10_000);
}

#[tokio::test]
async fn a_card_decline_is_definite_with_the_providers_code() {
    let stand_in = StandIn::start().await;
    let stripe = gateway(&stand_in, |_| {});
    let outcome = stripe
        .capture(capture("pi_decline_1", 5_000, "k1", true))
        .await;
    assert!(
        matches!(outcome, CaptureOutcome::Declined { ref code, .. } if code == "card_declined"),
        "{outcome:?}"
    );
    assert_eq!(stand_in.ledger(), vec![]);
}

#[tokio::test]
async fn server_errors_are_retried_with_the_same_key_then_succeed() {
    let stand_in = StandIn::start().await;
    stand_in.authorize("pi_1", 10_000, "SEK", false);
    stand_in.inject([Fault::Status(500), Fault::Status(503)]);
    let stripe = gateway(&stand_in, |c| c.max_retries = 2);
    assert!(is_captured(
        &stripe.capture(capture("pi_1", 4_000, "k1", true)).await
    ));
    assert_eq!(stand_in.requests(), 3);
    assert_eq!(stand_in.captured_total(), 4_000);
}

#[tokio::test]
async fn too_many_server_errors_leave_the_outcome_unknown() {
    let stand_in = StandIn::start().await;
    stand_in.authorize("pi_1", 10_000, "SEK", false);
    stand_in.inject([Fault::Status(500), Fault::Status(502), Fault::Status(429)]);
    let stripe = gateway(&stand_in, |c| c.max_retries = 2);
    let outcome = stripe.capture(capture("pi_1", 4_000, "k1", true)).await;
    assert!(
        matches!(outcome, CaptureOutcome::Unknown { .. }),
        "{outcome:?}"
    );
    assert_eq!(stand_in.captured_total(), 0);
}

#[tokio::test]
async fn a_timeout_is_unknown_and_the_later_replay_finds_the_capture() {
    let stand_in = StandIn::start().await;
    stand_in.authorize("pi_1", 10_000, "SEK", false);
    stand_in.set_latency(Duration::from_millis(800));
    let stripe = gateway(&stand_in, |c| c.max_retries = 0);
    let outcome = stripe.capture(capture("pi_1", 10_000, "k1", true)).await;
    assert!(
        matches!(outcome, CaptureOutcome::Unknown { .. }),
        "{outcome:?}"
    );
    // The provider finished the capture after we gave up waiting.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(stand_in.captured_total(), 10_000);
    stand_in.set_latency(Duration::ZERO);
    let replay = stripe.capture(capture("pi_1", 10_000, "k1", true)).await;
    assert!(is_captured(&replay), "{replay:?}");
    assert_eq!(stand_in.ledger().len(), 1, "no second capture");
}

#[tokio::test]
async fn a_connection_dropped_after_the_capture_is_found_by_the_retry() {
    let stand_in = StandIn::start().await;
    stand_in.authorize("pi_1", 10_000, "SEK", false);
    stand_in.inject([Fault::DropAfterProcessing]);
    let stripe = gateway(&stand_in, |c| c.max_retries = 1);
    assert!(is_captured(
        &stripe.capture(capture("pi_1", 10_000, "k1", true)).await
    ));
    assert_eq!(stand_in.ledger().len(), 1, "captured once");
    stand_in.inject([Fault::DropBeforeProcessing]);
    stand_in.authorize("pi_2", 10_000, "SEK", false);
    assert!(is_captured(
        &stripe.capture(capture("pi_2", 10_000, "k2", true)).await
    ));
    assert_eq!(stand_in.ledger().len(), 2);
}

#[tokio::test]
async fn multicapture_sends_final_capture_false_until_the_last_capture() {
    let stand_in = StandIn::start().await;
    stand_in.authorize("pi_multi", 10_000, "SEK", true);
    let stripe = gateway(&stand_in, |c| c.multicapture = true);
    assert!(is_captured(
        &stripe
            .capture(capture("pi_multi", 3_000, "k1", false))
            .await
    ));
    assert!(is_captured(
        &stripe
            .capture(capture("pi_multi", 2_000, "k2", false))
            .await
    ));
    assert!(is_captured(
        &stripe.capture(capture("pi_multi", 5_000, "k3", true)).await
    ));
    assert_eq!(stand_in.captured_total(), 10_000);
    let after = stripe.capture(capture("pi_multi", 1, "k4", true)).await;
    assert!(
        matches!(after, CaptureOutcome::Declined { ref message, .. } if message.contains("does not allow further captures")),
        "{after:?}"
    );
}

#[tokio::test]
async fn without_multicapture_a_second_capture_is_a_clear_decline() {
    let stand_in = StandIn::start().await;
    stand_in.authorize("pi_single", 10_000, "SEK", false);
    let stripe = gateway(&stand_in, |c| c.multicapture = false);
    assert!(is_captured(
        &stripe
            .capture(capture("pi_single", 3_000, "k1", false))
            .await
    ));
    let second = stripe
        .capture(capture("pi_single", 7_000, "k2", true))
        .await;
    match second {
        CaptureOutcome::Declined { code, message } => {
            assert_eq!(code, "payment_intent_unexpected_state");
            assert!(
                message.contains("does not allow further captures"),
                "{message}"
            );
        }
        other => panic!("expected a decline, got {other:?}"),
    }
    assert_eq!(stand_in.captured_total(), 3_000);
}

#[tokio::test]
async fn an_invalid_secret_key_captures_nothing_and_stays_open_for_recovery() {
    let stand_in = StandIn::start().await;
    stand_in.authorize("pi_1", 10_000, "SEK", false);
    let mut config = StripeConfig::new("sk_test_wrong");
    config.api_base = stand_in.url.clone();
    let stripe = StripeGateway::new(config).unwrap();
    let outcome = stripe.capture(capture("pi_1", 10_000, "k1", true)).await;
    assert!(
        matches!(outcome, CaptureOutcome::Unknown { ref reason } if reason.contains("credentials")),
        "{outcome:?}"
    );
    assert_eq!(stand_in.captured_total(), 0);
    assert!(StripeGateway::new(StripeConfig::new(" ")).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_key_at_once_meets_409_and_retries_into_the_first_answer() {
    let stand_in = StandIn::start().await;
    stand_in.authorize("pi_1", 10_000, "SEK", false);
    stand_in.set_latency(Duration::from_millis(150));
    let stripe = std::sync::Arc::new(gateway(&stand_in, |c| {
        c.max_retries = 5;
        c.backoff = Duration::from_millis(100);
    }));
    let (a, b) = tokio::join!(
        stripe.capture(capture("pi_1", 6_000, "same", true)),
        stripe.capture(capture("pi_1", 6_000, "same", true))
    );
    assert!(is_captured(&a) && is_captured(&b), "{a:?} {b:?}");
    assert_eq!(a, b);
    assert_eq!(stand_in.ledger().len(), 1);
    assert!(
        stand_in.requests() >= 3,
        "the second call met 409 and retried"
    );
}

/// A call that meets the key still in flight at the provider through all its retries (another
/// instance's capture that takes long) answers that, not a plain unknown: the first call's
/// answer will be its own, and it is no sign that the provider is not answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_key_still_in_flight_after_the_last_retry_is_answered_in_flight() {
    let stand_in = StandIn::start().await;
    stand_in.authorize("pi_1", 10_000, "SEK", false);
    stand_in.set_latency(Duration::from_millis(1_500));
    let slow = gateway(&stand_in, |c| c.timeout = Duration::from_secs(5));
    let impatient = gateway(&stand_in, |c| {
        c.max_retries = 1;
        c.backoff = Duration::from_millis(20);
    });
    let (first, second) = tokio::join!(slow.capture(capture("pi_1", 6_000, "same", true)), async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        impatient
            .capture(capture("pi_1", 6_000, "same", true))
            .await
    });
    assert!(is_captured(&first), "{first:?}");
    assert!(
        matches!(&second, CaptureOutcome::InFlight { reason } if reason.contains("409")),
        "{second:?}"
    );
    assert_eq!(stand_in.ledger().len(), 1);
}

fn refund(intent: &str, amount: i64, key: &str) -> RefundRequest {
    let capture = capture(intent, amount, key, true);
    RefundRequest {
        authorization: capture.authorization,
        amount: capture.amount,
        idempotency_key: key.into(),
        metadata: vec![
            ("order".into(), "83651".into()),
            ("return".into(), "1".into()),
            ("consign_key".into(), key.into()),
        ],
    }
}

/// An intent with 10,000 captured, ready to be refunded.
async fn captured(stand_in: &StandIn, stripe: &StripeGateway, intent: &str) {
    stand_in.authorize(intent, 10_000, "SEK", false);
    assert!(is_captured(
        &stripe
            .capture(capture(intent, 10_000, &format!("cap-{intent}"), true))
            .await
    ));
}

#[tokio::test]
async fn a_refund_succeeds_once_and_a_replay_gets_the_same_answer() {
    let stand_in = StandIn::start().await;
    let stripe = gateway(&stand_in, |_| {});
    captured(&stand_in, &stripe, "pi_r1").await;
    let first = stripe.refund(refund("pi_r1", 2_500, "rk1")).await;
    assert_eq!(
        first,
        RefundOutcome::Refunded {
            reference: "re_1".into(),
            status: "succeeded".into()
        }
    );
    assert_eq!(stripe.refund(refund("pi_r1", 2_500, "rk1")).await, first);
    let ledger = stand_in.refund_ledger();
    assert_eq!(ledger.len(), 1, "refunded once");
    assert_eq!(ledger[0].amount, 2_500);
    assert!(ledger[0]
        .metadata
        .contains(&("return".to_owned(), "1".to_owned())));
}

#[tokio::test]
async fn a_refund_the_provider_fails_or_refuses_is_a_definite_decline() {
    let stand_in = StandIn::start().await;
    let stripe = gateway(&stand_in, |_| {});
    captured(&stand_in, &stripe, "pi_norefund_1").await;
    let failed = stripe.refund(refund("pi_norefund_1", 1_000, "rk1")).await;
    assert!(
        matches!(failed, RefundOutcome::Declined { .. }),
        "{failed:?}"
    );
    captured(&stand_in, &stripe, "pi_r2").await;
    let too_much = stripe.refund(refund("pi_r2", 10_001, "rk2")).await;
    assert!(
        matches!(too_much, RefundOutcome::Declined { ref code, .. } if code == "amount_too_large"),
        "{too_much:?}"
    );
    assert_eq!(stand_in.refunded_total(), 0);
}

#[tokio::test]
async fn refund_server_errors_are_retried_with_the_same_key_then_succeed() {
    let stand_in = StandIn::start().await;
    let stripe = gateway(&stand_in, |c| c.max_retries = 2);
    captured(&stand_in, &stripe, "pi_r3").await;
    stand_in.inject([Fault::Status(500), Fault::Status(503)]);
    let outcome = stripe.refund(refund("pi_r3", 4_000, "rk1")).await;
    assert!(
        matches!(outcome, RefundOutcome::Refunded { .. }),
        "{outcome:?}"
    );
    assert_eq!(stand_in.refunded_total(), 4_000);
}

#[tokio::test]
async fn a_refund_whose_answer_was_lost_is_found_by_the_replay_and_never_made_twice() {
    let stand_in = StandIn::start().await;
    let stripe = gateway(&stand_in, |c| c.max_retries = 0);
    captured(&stand_in, &stripe, "pi_r4").await;
    // The provider refunds, then the connection drops: nobody knows.
    stand_in.inject([Fault::DropAfterProcessing]);
    let lost = stripe.refund(refund("pi_r4", 3_000, "rk1")).await;
    assert!(matches!(lost, RefundOutcome::Unknown { .. }), "{lost:?}");
    // Recovery replays the same key: the first answer, no second refund.
    let replay = stripe.refund(refund("pi_r4", 3_000, "rk1")).await;
    assert!(
        matches!(replay, RefundOutcome::Refunded { .. }),
        "{replay:?}"
    );
    assert_eq!(stand_in.refund_ledger().len(), 1);
    assert_eq!(stand_in.refunded_total(), 3_000);
}

#[tokio::test]
async fn a_refund_that_times_out_is_unknown_then_settled_by_the_replay() {
    let stand_in = StandIn::start().await;
    let stripe = gateway(&stand_in, |c| c.max_retries = 0);
    captured(&stand_in, &stripe, "pi_r5").await;
    stand_in.inject([Fault::DelayAfterProcessing(Duration::from_millis(1500))]);
    let timed_out = stripe.refund(refund("pi_r5", 1_500, "rk1")).await;
    assert!(
        matches!(timed_out, RefundOutcome::Unknown { .. }),
        "{timed_out:?}"
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let replay = stripe.refund(refund("pi_r5", 1_500, "rk1")).await;
    assert!(
        matches!(replay, RefundOutcome::Refunded { .. }),
        "{replay:?}"
    );
    assert_eq!(stand_in.refunded_total(), 1_500, "refunded once");
}

#[tokio::test]
async fn a_refund_past_the_key_window_is_found_by_its_metadata_and_an_absent_one_is_not() {
    let stand_in = StandIn::start().await;
    let stripe = gateway(&stand_in, |_| {});
    captured(&stand_in, &stripe, "pi_r9").await;
    // The answer was lost (connection dropped after the refund was made).
    stand_in.inject([
        Fault::DropAfterProcessing,
        Fault::DropAfterProcessing,
        Fault::DropAfterProcessing,
    ]);
    let lost = stripe.refund(refund("pi_r9", 1_500, "rk9")).await;
    assert!(matches!(lost, RefundOutcome::Unknown { .. }), "{lost:?}");
    assert_eq!(stand_in.refund_ledger().len(), 1, "the provider did refund");
    // The lookup finds it without making another.
    assert_eq!(
        stripe.find_refund(refund("pi_r9", 1_500, "rk9")).await,
        RefundLookup::Found(RefundOutcome::Refunded {
            reference: "re_1".into(),
            status: "succeeded".into()
        })
    );
    // Another attempt's key was never refunded.
    assert_eq!(
        stripe.find_refund(refund("pi_r9", 1_500, "rk10")).await,
        RefundLookup::NotFound
    );
    assert_eq!(
        stand_in.refund_ledger().len(),
        1,
        "a lookup refunds nothing"
    );
    assert_eq!(stand_in.refunded_total(), 1_500);
}

/// A refund Stripe answers `pending` is accepted, not refunded: a replay of its key answers
/// the same, and only the lookup sees it succeed or fail later.
#[tokio::test]
async fn a_pending_refund_is_settling_until_the_lookup_finds_it_succeeded_or_failed() {
    let stand_in = StandIn::start().await;
    let stripe = gateway(&stand_in, |_| {});
    captured(&stand_in, &stripe, "pi_p1").await;
    stand_in.hold_refunds(true);
    let settling = RefundOutcome::Settling {
        reference: "re_1".into(),
        status: "pending".into(),
    };
    assert_eq!(stripe.refund(refund("pi_p1", 4_000, "rk1")).await, settling);
    assert_eq!(
        stripe.find_refund(refund("pi_p1", 4_000, "rk1")).await,
        RefundLookup::Found(settling.clone())
    );
    assert!(stand_in.finish_refund("re_1", true));
    // The key replays the first answer: only the lookup knows.
    assert_eq!(stripe.refund(refund("pi_p1", 4_000, "rk1")).await, settling);
    assert_eq!(
        stripe.find_refund(refund("pi_p1", 4_000, "rk1")).await,
        RefundLookup::Found(RefundOutcome::Refunded {
            reference: "re_1".into(),
            status: "succeeded".into()
        })
    );
    // A second one fails after it was accepted: a decline, and its amount is back.
    assert_eq!(
        stripe.refund(refund("pi_p1", 6_000, "rk2")).await,
        RefundOutcome::Settling {
            reference: "re_2".into(),
            status: "pending".into()
        }
    );
    assert!(stand_in.finish_refund("re_2", false));
    assert!(matches!(
        stripe.find_refund(refund("pi_p1", 6_000, "rk2")).await,
        RefundLookup::Found(RefundOutcome::Declined { ref code, .. })
            if code == "expired_or_canceled_card"
    ));
    assert_eq!(stand_in.refunded_total(), 4_000);
    assert_eq!(stand_in.refund_ledger().len(), 2, "nothing made twice");
}

fn total(found: CapturedTotal) -> Option<(i64, String)> {
    match found {
        CapturedTotal::Found {
            captured,
            reference,
        } => Some((captured.minor(), reference)),
        CapturedTotal::Unknown { .. } => None,
    }
}

#[tokio::test]
async fn an_intents_captured_total_adds_its_partial_captures_and_captures_nothing() {
    let stand_in = StandIn::start().await;
    stand_in.authorize("pi_t1", 10_000, "SEK", true);
    let stripe = gateway(&stand_in, |c| c.multicapture = true);
    let authorization = capture("pi_t1", 0, "", false).authorization;
    assert_eq!(
        total(stripe.captured_total(&authorization).await),
        Some((0, "pi_t1".into())),
        "nothing captured yet"
    );
    assert!(is_captured(
        &stripe.capture(capture("pi_t1", 3_000, "t1", false)).await
    ));
    // A capture whose answer was lost still counts: it was made.
    stand_in.inject([
        Fault::DropAfterProcessing,
        Fault::DropAfterProcessing,
        Fault::DropAfterProcessing,
    ]);
    let lost = stripe.capture(capture("pi_t1", 2_500, "t2", false)).await;
    assert!(matches!(lost, CaptureOutcome::Unknown { .. }), "{lost:?}");
    assert_eq!(
        total(stripe.captured_total(&authorization).await),
        Some((5_500, "ch_2".into()))
    );
    assert_eq!(stand_in.ledger().len(), 2, "a lookup captures nothing");
    // An intent the provider does not have, or a key it refuses, is unknown, never zero.
    let missing = capture("pi_missing", 0, "", false).authorization;
    assert_eq!(total(stripe.captured_total(&missing).await), None);
    let refused = gateway(&stand_in, |c| c.secret_key = "sk_test_wrong".into());
    assert_eq!(total(refused.captured_total(&authorization).await), None);
}

/// `capture` and `refund` in another currency than SEK.
fn in_currency(code: &str, mut capture: CaptureRequest) -> CaptureRequest {
    let currency = code.parse().unwrap();
    capture.authorization.amount =
        Money::from_minor(capture.authorization.amount.minor(), currency);
    capture.amount = Money::from_minor(capture.amount.minor(), currency);
    capture
}

#[tokio::test]
async fn krona_are_sent_in_the_hundredths_stripe_takes_and_read_back_whole() {
    let stand_in = StandIn::start().await;
    // 2,000 kr authorised: 200,000 in Stripe's units for ISK.
    stand_in.authorize("pi_isk", 200_000, "ISK", true);
    let stripe = gateway(&stand_in, |c| c.multicapture = true);
    let first = in_currency("ISK", capture("pi_isk", 1_500, "i1", false));
    assert!(is_captured(&stripe.capture(first.clone()).await));
    assert_eq!(stand_in.ledger()[0].amount, 150_000, "1,500 kr, not 15 kr");
    assert_eq!(
        total(stripe.captured_total(&first.authorization).await),
        Some((1_500, "ch_1".into())),
        "read back in krónur"
    );
    let refund = RefundRequest {
        authorization: first.authorization.clone(),
        amount: first
            .amount
            .minus(Money::from_minor(1_000, first.amount.currency()))
            .unwrap(),
        idempotency_key: "r1".into(),
        metadata: vec![("consign_key".into(), "r1".into())],
    };
    let refunded = stripe.refund(refund).await;
    assert!(
        matches!(refunded, RefundOutcome::Refunded { .. }),
        "{refunded:?}"
    );
    assert_eq!(stand_in.refunded_total(), 50_000, "500 kr");
}

#[tokio::test]
async fn an_amount_stripe_cannot_take_in_its_currency_is_declined_and_never_sent() {
    let stand_in = StandIn::start().await;
    stand_in.authorize("pi_kwd", 10_000, "KWD", true);
    let stripe = gateway(&stand_in, |c| c.multicapture = true);
    let outcome = stripe
        .capture(in_currency("KWD", capture("pi_kwd", 1_005, "k1", false)))
        .await;
    assert!(
        matches!(&outcome, CaptureOutcome::Declined { code, message }
            if code == "amount_not_supported_by_provider" && message.contains("1.005")),
        "{outcome:?}"
    );
    assert_eq!(stand_in.requests(), 0, "nothing was sent");
    assert!(is_captured(
        &stripe
            .capture(in_currency("KWD", capture("pi_kwd", 1_010, "k2", false)))
            .await
    ));
    assert_eq!(stand_in.captured_total(), 1_010);
}

#[tokio::test]
async fn a_capture_answered_in_another_currency_is_unknown_never_booked() {
    // The order is in SEK; the intent was authorised in EUR. Stripe captures (it does not
    // know the order), and its answer states EUR: booking it as SEK would book other money.
    let stand_in = StandIn::start().await;
    stand_in.authorize("pi_eur", 10_000, "EUR", false);
    let stripe = gateway(&stand_in, |_| {});
    let outcome = stripe.capture(capture("pi_eur", 4_000, "k1", true)).await;
    assert!(
        matches!(&outcome, CaptureOutcome::Unknown { reason } if reason.contains("not in SEK")),
        "{outcome:?}"
    );
    assert_eq!(stand_in.ledger().len(), 1, "the provider did capture");
    // Its total is not read as SEK either.
    let authorization = capture("pi_eur", 0, "", true).authorization;
    assert_eq!(total(stripe.captured_total(&authorization).await), None);
}

#[tokio::test]
async fn a_success_whose_body_is_not_the_intent_captured_is_unknown() {
    let stand_in = StandIn::start().await;
    stand_in.authorize("pi_1", 10_000, "SEK", true);
    let stripe = gateway(&stand_in, |c| {
        c.max_retries = 0;
        c.multicapture = true;
    });
    let garbled = [
        ("a proxy's page", "<html>ok</html>".to_owned()),
        ("an empty body", String::new()),
        (
            "another intent",
            r#"{"id":"pi_2","object":"payment_intent","status":"succeeded","currency":"sek","amount_received":4000}"#.to_owned(),
        ),
        (
            "an intent still to capture after a final capture",
            r#"{"id":"pi_1","object":"payment_intent","status":"requires_capture","currency":"sek","amount_received":4000}"#.to_owned(),
        ),
        (
            "less received than captured",
            r#"{"id":"pi_1","object":"payment_intent","status":"succeeded","currency":"sek","amount_received":100}"#.to_owned(),
        ),
    ];
    for (i, (what, body)) in garbled.into_iter().enumerate() {
        stand_in.inject([Fault::AnswerAfterProcessing(200, body)]);
        let outcome = stripe
            .capture(capture("pi_1", 1_000, &format!("g{i}"), true))
            .await;
        assert!(
            matches!(&outcome, CaptureOutcome::Unknown { reason } if reason.starts_with("the provider answered 200, but")),
            "{what}: {outcome:?}"
        );
    }
    // A partial capture sent with final_capture=false leaves the intent to capture: captured.
    stand_in.authorize("pi_3", 10_000, "SEK", true);
    let partial = stripe.capture(capture("pi_3", 1_000, "p1", false)).await;
    assert!(is_captured(&partial), "{partial:?}");
}

#[tokio::test]
async fn a_refund_answered_for_another_amount_is_unknown_and_its_lookup_too() {
    let stand_in = StandIn::start().await;
    let stripe = gateway(&stand_in, |c| c.max_retries = 0);
    captured(&stand_in, &stripe, "pi_r").await;
    stand_in.inject([Fault::AnswerAfterProcessing(
        200,
        r#"{"id":"re_1","object":"refund","status":"succeeded","amount":9000,"currency":"sek"}"#
            .to_owned(),
    )]);
    let outcome = stripe.refund(refund("pi_r", 2_000, "r1")).await;
    assert!(
        matches!(&outcome, RefundOutcome::Unknown { reason } if reason.contains("not the 2000 SEK asked")),
        "{outcome:?}"
    );
    // The refund the provider made is found by its key, as asked.
    let found = stripe.find_refund(refund("pi_r", 2_000, "r1")).await;
    assert!(
        matches!(found, RefundLookup::Found(RefundOutcome::Refunded { .. })),
        "{found:?}"
    );
    // Looked up for another amount than it was made for, it is not taken as that refund.
    let other = stripe.find_refund(refund("pi_r", 3_000, "r1")).await;
    assert!(
        matches!(other, RefundLookup::Found(RefundOutcome::Unknown { .. })),
        "{other:?}"
    );
}
