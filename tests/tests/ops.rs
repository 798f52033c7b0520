//! `/healthz`, `/readyz` and `/metrics`: at the root, without a key.

use consign_tests::*;
use serde_json::json;

fn root(app: &TestApp, path: &str) -> (u16, String) {
    get(&format!("{}{path}", app.address), None)
}

fn get(url: &str, bearer: Option<&str>) -> (u16, String) {
    let mut request = ureq::get(url);
    if let Some(token) = bearer {
        request = request.set("Authorization", &format!("Bearer {token}"));
    }
    let response = match request.call() {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{e}"),
    };
    (response.status(), response.into_string().unwrap())
}

const METRICS_TOKEN: &str = "metrics-secret-1";

fn metrics(app: &TestApp) -> (u16, String) {
    get(&format!("{}/metrics", app.address), Some(METRICS_TOKEN))
}

#[test]
fn health_and_readiness_answer_without_a_key() {
    for backend in backends() {
        let app = spawn_app(backend);
        assert_eq!(
            root(&app, "/healthz"),
            (200, json!({"status": "ok"}).to_string())
        );
        assert_eq!(
            root(&app, "/readyz"),
            (200, json!({"status": "ok"}).to_string()),
            "{backend:?}"
        );
    }
}

#[test]
fn metrics_count_requests_by_route_and_outcome_and_show_captures_pool_and_outbox() {
    let app = spawn_app_with(Backend::Sqlite, &[("CONSIGN_METRICS_TOKEN", METRICS_TOKEN)]);
    let ids = app.import(&example_order(900, "auth-900"));
    app.post(
        "/shipments",
        &json!({"order": 900, "products": {ids[0].clone(): 1}}),
    );
    app.post(
        "/shipments",
        &json!({"order": 900, "products": {ids[0].clone(): 5}}),
    );
    app.post(
        "/shipments",
        &json!({"order": 900, "products": {ids[1].clone(): 1}, "shipped": true, "capture": false}),
    );
    // Refused before any answer of ours: labelled by the HTTP status. A method HTTP does not
    // define is labelled `other`, whatever its name: a client inventing names must not grow
    // the metrics.
    let keyed = [
        ("API-Authorization", TEST_KEY),
        ("Content-Type", "application/json"),
    ];
    assert_eq!(
        app.raw("POST", "/shipments", &keyed, Some(b"{")).status,
        400
    );
    for invented in ["PROPFIND", "X-1", "X-2"] {
        app.raw(invented, "/shipments", &keyed, None);
    }
    let (status, text) = metrics(&app);
    assert_eq!(status, 200);
    assert!(
        !text.contains("PROPFIND") && !text.contains(r#"method="X-"#),
        "a method HTTP does not define is not a label of its own:\n{text}"
    );
    assert!(
        text.contains(r#"consign_http_requests_total{route="/api/order/shipments",method="other",outcome="405"} 3"#),
        "methods HTTP does not define share one label:\n{text}"
    );
    for expected in [
        r#"consign_http_requests_total{route="/api/order/shipments",method="POST",outcome="400"} 1"#,
        r#"consign_http_requests_total{route="/api/order/shipments",method="POST",outcome="ok"} 2"#,
        r#"consign_http_requests_total{route="/api/order/shipments",method="POST",outcome="no"} 1"#,
        r#"consign_http_requests_total{route="/api/order/order",method="POST",outcome="ok"} 1"#,
        r#"consign_http_request_duration_seconds_count{route="/api/order/shipments",method="POST",outcome="ok"} 2"#,
        r#"consign_capture_attempts{state="pending"} 0"#,
        r#"consign_capture_attempts{state="unknown"} 0"#,
        r#"consign_capture_attempts{state="needs_review"} 0"#,
        "consign_shipments_needing_review 0",
        r#"consign_refund_attempts{state="settling"} 0"#,
        r#"consign_refund_attempts{state="needs_review"} 0"#,
        r#"consign_db_pool_connections{state="size"} 8"#,
        "consign_up 1",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    assert!(text.contains("consign_outbox_depth "));
    // Settled attempts are the history, which a scrape does not read.
    assert!(!text.contains(r#"state="succeeded""#), "{text}");
    assert!(text.contains("le=\"+Inf\""));
    // The live counts of statements sent and of the SQLite writer's commits grow with the
    // work: a captured shipment adds its statements and two commits (reserve, then settle, one
    // after the other, so never in one commit).
    let count = |text: &str, name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
    };
    let sent = |text: &str| count(text, "consign_db_statements_total");
    let commits = |text: &str| count(text, "consign_db_writer_commits_total");
    let (sent_before, commits_before) = (sent(&text), commits(&text));
    assert!(
        sent_before > 0,
        "the import and the shipments sent statements"
    );
    app.post(
        "/shipments",
        &json!({"order": 900, "products": {ids[0].clone(): 1}}),
    );
    let text = metrics(&app).1;
    let (sent_after, commits_after) = (sent(&text), commits(&text));
    assert!(
        sent_after > sent_before,
        "{sent_after} statements after a shipment, {sent_before} before"
    );
    // At least two: the outbox's own writes may commit in between (or share a commit).
    assert!(
        commits_after >= commits_before + 2,
        "{commits_after} writer commits after a captured shipment, {commits_before} before"
    );
}

#[test]
fn metrics_are_not_served_unless_an_operator_enabled_them() {
    // No token and no metrics listener: business figures are nowhere.
    let app = spawn_app(Backend::Sqlite);
    assert_eq!(root(&app, "/metrics").0, 404);
    // With a token: only requests that carry it.
    let app = spawn_app_with(Backend::Sqlite, &[("CONSIGN_METRICS_TOKEN", METRICS_TOKEN)]);
    assert_eq!(root(&app, "/metrics").0, 401);
    let url = format!("{}/metrics", app.address);
    assert_eq!(get(&url, Some("metrics-secret-2")).0, 401);
    assert_eq!(get(&url, Some(METRICS_TOKEN)).0, 200);
}

#[test]
fn a_separate_metrics_listener_serves_them_without_a_token_and_the_api_port_does_not() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let app = spawn_app_with(
        Backend::Sqlite,
        &[("CONSIGN_METRICS_LISTEN", listen.as_str())],
    );
    let (status, text) = get(&format!("http://{listen}/metrics"), None);
    assert_eq!(status, 200);
    assert!(text.contains("consign_up 1"), "{text}");
    assert_eq!(
        get(&format!("http://{listen}/api/order/orders"), None).0,
        404
    );
    assert_eq!(root(&app, "/metrics").0, 404);
}

#[test]
fn a_scrape_does_not_query_the_store_again_within_a_few_seconds() {
    // The mail folder cannot be made (its parent is a file), so a queued confirmation stays in
    // the outbox: the depth the store reports moves once and stays.
    let app = spawn_app_with(
        Backend::Sqlite,
        &[
            ("CONSIGN_METRICS_TOKEN", METRICS_TOKEN),
            ("CONSIGN_MAIL_DIR", "/dev/null/mail"),
        ],
    );
    let ids = app.import(&example_order(910, "auth-910"));
    let (_, first) = metrics(&app);
    let read_at = std::time::Instant::now();
    assert!(first.contains("consign_outbox_depth 0\n"), "{first}");
    app.post(
        "/shipments",
        &json!({"order": 910, "products": {ids[0].clone(): 1}, "shipped": true, "capture": false}),
    );
    let (_, second) = metrics(&app);
    // Request counters move at once; the store's figures are the ones read a moment ago.
    assert!(
        second.contains(r#"consign_http_requests_total{route="/api/order/shipments",method="POST",outcome="ok"} 1"#),
        "{second}"
    );
    assert!(
        second.contains("consign_outbox_depth 0\n"),
        "the store was read again within a few seconds:\n{second}"
    );
    // Once they are old enough, the next scrape reads them again.
    let max_age = std::time::Duration::from_millis(5_000);
    std::thread::sleep(
        max_age.saturating_sub(read_at.elapsed()) + std::time::Duration::from_millis(100),
    );
    let (_, third) = metrics(&app);
    assert!(third.contains("consign_outbox_depth 1\n"), "{third}");
}
