//! Shipping and refund confirmations through a real SMTP server on loopback.

use std::time::{Duration, Instant};

use consign_provider_stand_in::smtp::SmtpSink;
use consign_tests::*;
use serde_json::json;

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_shipped_shipment_sends_one_confirmation_with_carrier_tracking_and_lines() {
    let sink = SmtpSink::start();
    let app = spawn_app_with(
        Backend::Sqlite,
        &[
            ("CONSIGN_SMTP_URL", &sink.url()),
            ("CONSIGN_MAIL_FROM", "shop@example.com"),
        ],
    );
    let ids = app.import(&example_order(800, "auth-800"));
    app.post(
        "/shipments",
        &json!({"order": 800, "products": {ids[0].clone(): 2, ids[1].clone(): 1}, "shipped": true,
        "carrier": "DHL", "service": "Express", "tracking": "JD014600003SE", "sendEmail": true}),
    );
    wait_for("the confirmation", || sink.messages().len() == 1);
    let message = &sink.messages()[0];
    for expected in [
        "To: anna@example.com",
        "From: shop@example.com",
        "Subject: Your order 800 has shipped",
        // RFC 5322: the id within angle brackets, so a receiver recognises a resend by it.
        "Message-ID: <shipping-confirmation-800-",
        "@consign>",
        "text/plain",
        "text/html",
        "DHL",
        "Express",
        "JD014600003SE",
        "TSHIRT-M",
        "T-shirt",
        "CAP",
        "2 x T-shirt",
    ] {
        assert!(
            message.contains(expected),
            "missing {expected:?} in:\n{message}"
        );
    }
    // Once only, even after more passes.
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(sink.messages().len(), 1);
    // sendEmail false, or not shipped: nothing is sent.
    let more = app.import(&example_order(801, "auth-801"));
    app.post("/shipments", &json!({"order": 801, "products": {more[0].clone(): 1}, "shipped": true, "sendEmail": false}));
    app.post(
        "/shipments",
        &json!({"order": 801, "products": {more[1].clone(): 1}}),
    );
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(sink.messages().len(), 1);
}

/// A shipment created shipped whose capture is still in flight is not confirmed yet: a decline
/// would void it, and the customer would have been told it shipped. Once recovery records the
/// capture, the confirmation goes out, once.
#[test]
fn a_shipped_shipment_is_confirmed_only_once_its_capture_is_recorded() {
    let sink = SmtpSink::start();
    let app = spawn_app_with(
        Backend::Sqlite,
        &[
            ("CONSIGN_SMTP_URL", &sink.url()),
            ("CONSIGN_RECOVERY_AFTER", "3s"),
        ],
    );
    // The sandbox answers the first capture on a `timeout` reference with a timeout.
    let ids = app.import(&example_order(805, "timeout-805"));
    let created = app.post(
        "/shipments",
        &json!({"order": 805, "products": {ids[0].clone(): 1}, "shipped": true, "sendEmail": true}),
    );
    assert_eq!(created.status, 503, "{}", created.body);
    std::thread::sleep(Duration::from_millis(1_500));
    assert_eq!(
        sink.messages().len(),
        0,
        "confirmed while its capture was in flight"
    );
    wait_for("the confirmation after the capture", || {
        sink.messages().len() == 1
    });
    let listed = app.get("/shipments/805-1").json();
    assert_eq!(
        listed["shipments"][0]["captureState"],
        json!("captured"),
        "{listed}"
    );
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(sink.messages().len(), 1);
}

#[test]
fn completing_a_shipment_sends_the_confirmation_by_the_store_setting() {
    let sink = SmtpSink::start();
    let app = spawn_app_with(Backend::Sqlite, &[("CONSIGN_SMTP_URL", &sink.url())]);
    let ids = app.import(&example_order(810, "auth-810"));
    app.post(
        "/shipments",
        &json!({"order": 810, "products": {ids[0].clone(): 1}, "capture": false}),
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(sink.messages().len(), 0, "not shipped yet");
    app.put(
        "/shipment",
        &json!({"shipment": "810-1", "carrier": "PostNord", "tracking": "PN1"}),
    );
    wait_for("the confirmation", || sink.messages().len() == 1);
    assert!(sink.messages()[0].contains("PN1"));

    // With the store setting off, a complete that does not say `sendEmail` queues nothing:
    // the outbox holds no message to send, now or later.
    let quiet = SmtpSink::start();
    let app = spawn_app_with(
        Backend::Sqlite,
        &[
            ("CONSIGN_SMTP_URL", &quiet.url()),
            ("CONSIGN_SEND_SHIPPING_CONFIRMATION", "false"),
        ],
    );
    let ids = app.import(&example_order(811, "auth-811"));
    app.post(
        "/shipments",
        &json!({"order": 811, "products": {ids[0].clone(): 1}, "capture": false}),
    );
    let completed = app.put(
        "/shipment",
        &json!({"shipment": "811-1", "carrier": "PostNord", "tracking": "PN2"}),
    );
    assert_eq!(completed.json()["status"], "ok", "{}", completed.body);
    assert_eq!(app.order(811)["shipments"][0]["shipped"], json!(1));
    let queued: Vec<String> = app
        .dump()
        .into_iter()
        .filter(|row| row.starts_with("outbox "))
        .collect();
    assert_eq!(queued, Vec::<String>::new());
    assert_eq!(quiet.messages().len(), 0);
}

#[test]
fn a_failed_send_is_retried_with_backoff_until_it_goes_through_once() {
    let sink = SmtpSink::start();
    sink.refuse_next(3);
    let app = spawn_app_with(Backend::Sqlite, &[("CONSIGN_SMTP_URL", &sink.url())]);
    let ids = app.import(&example_order(820, "auth-820"));
    let started = Instant::now();
    app.post(
        "/shipments",
        &json!({"order": 820, "products": {ids[0].clone(): 1}, "shipped": true, "tracking": "R1"}),
    );
    wait_for("the retried confirmation", || sink.messages().len() == 1);
    // Three refusals waited 100 + 200 + 400 ms at least.
    assert!(
        started.elapsed() >= Duration::from_millis(700),
        "retried too fast: {:?}",
        started.elapsed()
    );
    assert!(sink.sessions() >= 4);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(sink.messages().len(), 1);
}

#[test]
fn a_refunded_return_with_send_email_sends_one_refund_confirmation() {
    for backend in backends() {
        let sink = SmtpSink::start();
        let app = spawn_app_with(
            backend,
            &[
                ("CONSIGN_SMTP_URL", &sink.url()),
                ("CONSIGN_MAIL_FROM", "shop@example.com"),
            ],
        );
        let ids = app.import(&example_order(810, "refundlater-810"));
        let created = app.post(
            "/shipments",
            &json!({"order": 810, "products": {ids[0].clone(): 2, ids[1].clone(): 1}}),
        );
        assert_eq!(created.json()["status"], "ok", "{}", created.body);
        // Declined first: no confirmation; then refunded on PUT: one.
        let answer = app
            .post(
                "/return",
                &json!({"shipment": "810-1", "products": {ids[1].clone(): 1},
                        "refund": {"refundPayment": true, "sendEmail": true}}),
            )
            .json();
        assert_eq!(answer["refund"]["status"], "no", "{answer}");
        std::thread::sleep(Duration::from_millis(600));
        assert_eq!(
            sink.messages().len(),
            0,
            "{backend:?}: nothing refunded yet"
        );
        let id = answer["return"].as_i64().unwrap();
        let paid = app
            .put(&format!("/returns/{id}"), &json!({"refundPayment": true}))
            .json();
        assert_eq!(paid["return"]["refundState"], "refunded", "{paid}");
        wait_for("the refund confirmation", || sink.messages().len() == 1);
        let message = &sink.messages()[0];
        for expected in [
            "To: anna@example.com",
            "Subject: Your refund for order 810",
            "199.00",
            "1 x Cap (CAP)",
        ] {
            assert!(
                message.contains(expected),
                "missing {expected:?} in:\n{message}"
            );
        }
        // Once only; a refund without sendEmail sends nothing.
        app.post(
            "/return",
            &json!({"shipment": "810-1", "products": {ids[0].clone(): 1}, "refund": {"refundPayment": true}}),
        );
        std::thread::sleep(Duration::from_millis(800));
        assert_eq!(sink.messages().len(), 1, "{backend:?}");
    }
}

/// A mailbox the mail server says does not exist (550) is not asked again every hour: the
/// confirmation is given up, kept with the server's answer, counted in `/metrics`, and the
/// other confirmations go out as before.
#[test]
fn a_confirmation_refused_for_good_is_not_sent_again_and_is_counted() {
    for backend in backends() {
        let sink = SmtpSink::start();
        sink.refuse_recipient("gone@example.com");
        let app = spawn_app_with(
            backend,
            &[
                ("CONSIGN_SMTP_URL", &sink.url()),
                ("CONSIGN_METRICS_TOKEN", "metrics-secret-1"),
            ],
        );
        let mut gone = example_order(830, "auth-830");
        gone["email"] = json!("gone@example.com");
        let ids = app.import(&gone);
        app.post(
            "/shipments",
            &json!({"order": 830, "products": {ids[0].clone(): 1}, "shipped": true, "tracking": "G1"}),
        );
        let outbox = || -> Vec<String> {
            app.dump()
                .into_iter()
                .filter(|row| row.starts_with("outbox "))
                .collect()
        };
        wait_for("the refusal", || {
            outbox().iter().any(|row| row.contains("\"refused\""))
        });
        let refused = outbox();
        assert_eq!(refused.len(), 1, "{backend:?}: {refused:?}");
        assert!(
            refused[0].contains("no such mailbox") && refused[0].contains("attempts: 1"),
            "{backend:?}: the server's answer is kept: {refused:?}"
        );
        let sessions = sink.sessions();
        // Another customer's confirmation still goes out, and the refused one is not tried
        // again meanwhile (the test's retry base is 100 ms: a failure would have been retried
        // several times by now).
        let ids = app.import(&example_order(831, "auth-831"));
        app.post(
            "/shipments",
            &json!({"order": 831, "products": {ids[0].clone(): 1}, "shipped": true, "tracking": "A1"}),
        );
        wait_for("the other confirmation", || sink.messages().len() == 1);
        assert!(sink.messages()[0].contains("To: anna@example.com"));
        std::thread::sleep(Duration::from_millis(800));
        assert_eq!(
            sink.sessions(),
            sessions + 1,
            "{backend:?}: only the other confirmation's session"
        );
        assert_eq!(
            outbox()
                .iter()
                .filter(|r| r.contains("\"refused\""))
                .count(),
            1
        );
        let scraped = ureq::get(&format!("{}/metrics", app.address))
            .set("Authorization", "Bearer metrics-secret-1")
            .call()
            .expect("metrics")
            .into_string()
            .unwrap();
        assert!(
            scraped.contains("consign_outbox_refused 1\n")
                && scraped.contains("consign_outbox_depth 0\n"),
            "{backend:?}:\n{scraped}"
        );
    }
}
