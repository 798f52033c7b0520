//! Security: keys on every route, rate limits per key, header limits.

use consign_ports::{KeyStore, Timestamp};
use consign_tests::*;
use serde_json::json;

/// Every route under the base path, with a method it serves.
const ROUTES: &[(&str, &str)] = &[
    ("POST", "/order"),
    ("GET", "/orders"),
    ("POST", "/shipments"),
    ("GET", "/shipments"),
    ("GET", "/shipments/1-1"),
    ("PUT", "/shipments/1-1"),
    ("DELETE", "/shipments/1-1"),
    ("PUT", "/shipment"),
    ("PUT", "/capture"),
    ("GET", "/documents/1-1/proforma.pdf"),
    ("GET", "/no-such-route"),
];

#[test]
fn every_route_answers_401_without_a_key_and_with_a_revoked_key() {
    let app = spawn_app(Backend::Sqlite);
    let revoked = "csk_revoked-security-key-00000000";
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let id = runtime
        .block_on(app.database.add_key(revoked, "revoked", Timestamp(0)))
        .unwrap();
    runtime
        .block_on(app.database.revoke_key(id, Timestamp(1)))
        .unwrap();
    let before = app.dump();
    for (method, path) in ROUTES {
        for key in [None, Some(revoked), Some("csk_never-issued")] {
            let mut headers = vec![("Content-Type", "application/json")];
            if let Some(key) = key {
                headers.push(("API-Authorization", key));
            }
            let body = (*method != "GET" && *method != "DELETE").then_some(&b"{}"[..]);
            let reply = app.raw(method, path, &headers, body);
            assert_eq!(reply.status, 401, "{method} {path} with {key:?}");
            assert_eq!(reply.json(), json!({"status": "no", "msg": "unauthorized"}));
        }
    }
    assert_eq!(app.dump(), before);
}

#[test]
fn each_api_key_is_rate_limited_on_its_own() {
    let app = spawn_app_with(Backend::Sqlite, &[("CONSIGN_RATE_LIMIT", "5")]);
    let other = "csk_second-rate-limit-key-0000000";
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime
        .block_on(app.database.add_key(other, "other", Timestamp(0)))
        .unwrap();
    let replies: Vec<Reply> = (0..40).map(|_| app.get("/orders")).collect();
    let limited: Vec<&Reply> = replies.iter().filter(|r| r.status == 429).collect();
    assert!(
        !limited.is_empty(),
        "40 requests at once must exceed 5/s with a burst of 10"
    );
    assert!(
        replies.iter().filter(|r| r.status == 200).count() >= 10,
        "the burst is allowed"
    );
    for reply in &limited {
        assert_eq!(
            reply.json(),
            json!({"status": "no", "msg": "rate limit exceeded; retry later"})
        );
        let wait: u64 = reply
            .retry_after
            .as_deref()
            .expect("Retry-After")
            .parse()
            .unwrap();
        assert!((1..=2).contains(&wait), "{wait}");
    }
    let theirs = app.raw("GET", "/orders", &[("API-Authorization", other)], None);
    assert_eq!(theirs.status, 200, "another key has its own budget");
    std::thread::sleep(std::time::Duration::from_millis(1200));
    assert_eq!(app.get("/orders").status, 200, "the budget refills");
}

#[test]
fn oversized_headers_are_refused_without_a_server_error() {
    let app = spawn_app(Backend::Sqlite);
    let huge = "x".repeat(64 * 1024);
    let result = ureq::get(&app.url("/orders"))
        .set("API-Authorization", TEST_KEY)
        .set("X-Padding", &huge)
        .call();
    match result {
        Ok(response) => panic!("a 64 KiB header was accepted: {}", response.status()),
        Err(ureq::Error::Status(status, response)) => {
            assert_eq!(status, 431);
            assert_eq!(
                response.into_string().unwrap(),
                r#"{"status":"no","msg":"request headers exceed 64 headers or 16384 bytes"}"#
            );
        }
        // The server may close the connection instead of answering: also a refusal.
        Err(ureq::Error::Transport(_)) => {}
    }
    assert_eq!(
        app.get("/orders").status,
        200,
        "the server is still serving"
    );
}

/// Settings of an instance on which only Stripe captures (its API is never reached here).
const STRIPE_ONLY: &[(&str, &str)] = &[
    ("CONSIGN_GATEWAY", "stripe"),
    ("CONSIGN_STRIPE_SECRET_KEY", "sk_test_not_used"),
    ("CONSIGN_STRIPE_API_BASE", "http://127.0.0.1:9"),
];

#[test]
fn only_enabled_gateways_take_orders_and_captures() {
    for backend in backends() {
        let db = throwaway(backend);
        // An order imported while the sandbox was enabled...
        let sandbox = spawn_app_on(backend, &db.url, &[]);
        let ids = sandbox.import(&example_order(960, "auth-960"));
        let uncaptured = sandbox.post(
            "/shipments",
            &serde_json::json!({"order": 960, "products": {ids[1].clone(): 1}, "capture": false}),
        );
        assert_eq!(uncaptured.json()["status"], "ok", "{backend:?}");
        let shipment = uncaptured.json()["shipment"].as_str().unwrap().to_owned();
        drop(sandbox);

        // ...on an instance where only Stripe is enabled: no new sandbox order, and no capture
        // of the stored one, with nothing written.
        let stripe = spawn_app_on(backend, &db.url, STRIPE_ONLY);
        let refused = stripe.post("/order", &example_order(961, "auth-961"));
        assert_eq!(refused.status, 400, "{backend:?}: {}", refused.body);
        assert_eq!(
            refused.json()["msg"],
            "unknown payment provider \"sandbox\"; enabled providers: stripe"
        );
        let before = stripe.dump();
        let msg = "payment provider \"sandbox\" is not enabled here; enabled providers: stripe";
        let create = stripe.post(
            "/shipments",
            &serde_json::json!({"order": 960, "products": {ids[0].clone(): 1}}),
        );
        assert_eq!(
            (
                create.status,
                create.json()["status"].clone(),
                create.json()["msg"].clone()
            ),
            (200, json!("no"), json!(msg)),
            "{backend:?}"
        );
        let capture = stripe.put("/capture", &serde_json::json!({"shipment": shipment}));
        assert_eq!(capture.json()["msg"], msg, "{backend:?}");
        let complete = stripe.put("/shipment", &serde_json::json!({"shipment": shipment}));
        assert_eq!(complete.json()["msg"], msg, "{backend:?}");
        assert_eq!(
            stripe.dump(),
            before,
            "{backend:?}: a refused capture wrote"
        );
        // Shipping without capture involves no provider.
        let uncaptured = stripe.post(
            "/shipments",
            &serde_json::json!({"order": 960, "products": {ids[0].clone(): 1}, "capture": false}),
        );
        assert_eq!(uncaptured.json()["status"], "ok", "{backend:?}");
    }
}

#[test]
fn failed_authentications_are_limited_per_client_address() {
    // 2 failures a second, bursts of 4; everything here comes from 127.0.0.1.
    let app = spawn_app_with(Backend::Sqlite, &[("CONSIGN_AUTH_FAILURE_LIMIT", "2")]);
    // A client with a valid key, verified once.
    assert_eq!(app.get("/orders").status, 200);
    let statuses: Vec<(u16, Option<String>)> = (0..8)
        .map(|i| {
            let wrong = format!("csk_guess-{i:04}-000000000000000000");
            let reply = app.raw(
                "GET",
                "/orders",
                &[("API-Authorization", wrong.as_str())],
                None,
            );
            (reply.status, reply.retry_after)
        })
        .collect();
    let refused = statuses.iter().filter(|(s, _)| *s == 401).count();
    let limited: Vec<&(u16, Option<String>)> = statuses.iter().filter(|(s, _)| *s == 429).collect();
    assert_eq!(refused, 4, "the burst is answered 401: {statuses:?}");
    assert_eq!(limited.len(), 4, "past it 429: {statuses:?}");
    assert!(
        limited.iter().all(|(_, wait)| wait.is_some()),
        "{statuses:?}"
    );
    // The valid key, verified a moment ago, is not held up by the guesses.
    assert_eq!(app.get("/orders").status, 200);
    // Nor once its cache entry has run out and it must be looked up again, while the address
    // (a load balancer's, say, shared with the guesser) is still limited.
    std::thread::sleep(std::time::Duration::from_millis(2_100));
    let guess = |i: usize| {
        let wrong = format!("csk_guess-{i:04}-111111111111111111");
        app.raw(
            "GET",
            "/orders",
            &[("API-Authorization", wrong.as_str())],
            None,
        )
        .status
    };
    assert!(
        (0..20).any(|i| guess(i) == 429),
        "the address was never limited"
    );
    assert_eq!(app.get("/orders").status, 200, "the valid key, looked up");
    assert_eq!(guess(99), 429, "guesses are still limited");
}

/// A document link lets its holder in without a key, so its requests are limited per client
/// address at the keys' rate: a leaked or looping link cannot have PDFs laid out as fast as it
/// asks. The key's own budget is apart.
#[test]
fn document_links_are_rate_limited_per_client_address() {
    let app = spawn_app_with(Backend::Sqlite, &[("CONSIGN_RATE_LIMIT", "5")]);
    let ids = app.import(&example_order(610, "auth-610"));
    let created = app
        .post(
            "/shipments",
            &json!({"order": 610, "products": {ids[0].clone(): 1}}),
        )
        .json();
    let link = created["deliveryNote"].as_str().unwrap();
    let path = link
        .strip_prefix(&format!("{}{}", app.address, app.base))
        .expect("a link under the base");
    let replies: Vec<Reply> = (0..40).map(|_| app.raw("GET", path, &[], None)).collect();
    let served = replies.iter().filter(|r| r.status == 200).count();
    let limited: Vec<&Reply> = replies.iter().filter(|r| r.status == 429).collect();
    assert!(served >= 10, "the burst is served: {served}");
    assert!(
        !limited.is_empty(),
        "40 requests at once must exceed 5/s with a burst of 10"
    );
    assert_eq!(served + limited.len(), 40);
    for reply in &limited {
        assert_eq!(
            reply.json(),
            json!({"status": "no", "msg": "rate limit exceeded; retry later"})
        );
        assert!(reply.retry_after.is_some(), "Retry-After");
    }
    assert_eq!(app.get("/orders").status, 200, "the key has its own budget");
    std::thread::sleep(std::time::Duration::from_millis(1200));
    assert_eq!(
        app.raw("GET", path, &[], None).status,
        200,
        "the budget refills"
    );
}
