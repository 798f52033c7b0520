//! `/healthz`, `/readyz` and `/metrics`: at the root, without a key.

use consign_tests::*;
use serde_json::json;

fn root(app: &TestApp, path: &str) -> (u16, String) {
    let response = match ureq::get(&format!("{}{path}", app.address)).call() {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{e}"),
    };
    (response.status(), response.into_string().unwrap())
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
    let app = spawn_app(Backend::Sqlite);
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
    let (status, text) = root(&app, "/metrics");
    assert_eq!(status, 200);
    for expected in [
        r#"consign_http_requests_total{route="/api/order/shipments",method="POST",outcome="ok"} 2"#,
        r#"consign_http_requests_total{route="/api/order/shipments",method="POST",outcome="no"} 1"#,
        r#"consign_http_requests_total{route="/api/order/order",method="POST",outcome="ok"} 1"#,
        r#"consign_http_request_duration_seconds_count{route="/api/order/shipments",method="POST",outcome="ok"} 2"#,
        r#"consign_capture_attempts{state="succeeded"} 1"#,
        r#"consign_capture_attempts{state="pending"} 0"#,
        "consign_shipments_needing_review 0",
        r#"consign_db_pool_connections{state="size"} 8"#,
        "consign_up 1",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    assert!(text.contains("consign_outbox_depth "));
    assert!(text.contains("le=\"+Inf\""));
}
