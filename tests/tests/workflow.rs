//! The warehouse workflow after create: list, update, complete, capture, delete, over HTTP.

use consign_ports::{KeyStore, Timestamp};
use consign_tests::*;
use serde_json::{json, Value};

fn lines(app: &TestApp, id: i64, reference: &str) -> (String, String) {
    let ids = app.import(&example_order(id, reference));
    (ids[0].clone(), ids[1].clone())
}

fn ok(reply: &Reply) -> Value {
    let answer = reply.json();
    assert_eq!(
        (reply.status, answer["status"].clone()),
        (200, json!("ok")),
        "{}",
        reply.body
    );
    answer
}

#[test]
fn the_warehouse_flow_from_import_to_a_fully_shipped_order() {
    for backend in backends() {
        let app = spawn_app(backend);
        let (tshirt, cap) = lines(&app, 500, "auth-500");
        // Create without capturing, good to go.
        let created = ok(&app.post("/shipments", &json!({"order": 500, "products": {tshirt.clone(): 1, cap.clone(): 1}, "capture": false, "gtg": true})));
        let id = created["shipment"].as_str().unwrap().to_owned();
        assert_eq!(id, "500-1");
        // The warehouse lists what is good to go.
        let listed = ok(&app.get("/shipments"));
        let shipment = &listed["shipments"][0];
        assert_eq!(
            listed["shipments"].as_array().unwrap().len(),
            1,
            "{backend:?}"
        );
        assert_eq!(shipment["shipmentId"], json!(id));
        assert_eq!(shipment["orderId"], "500");
        assert_eq!(
            (
                shipment["paid"].clone(),
                shipment["shouldCapture"].clone(),
                shipment["gtg"].clone()
            ),
            (json!(0), json!(1), json!(1))
        );
        assert_eq!(shipment["captureState"], "uncaptured");
        assert_eq!(
            shipment["grandTotalValue"].to_string(),
            "497.50",
            "what it would capture now"
        );
        assert_eq!(shipment["invoices"], json!([]));
        // It picks the second T-shirt too.
        let updated = ok(&app.put(
            &format!("/shipments/{id}"),
            &json!({"products": {tshirt.clone(): 2}}),
        ));
        let products = updated["shipment"]["products"].as_array().unwrap();
        assert_eq!(products.len(), 2);
        assert!(
            products
                .iter()
                .any(|p| p["lineId"] == json!(tshirt) && p["qty"] == json!(2)),
            "{updated}"
        );
        assert_eq!(updated["shipment"]["grandTotalValue"].to_string(), "747.00");
        // Complete: capture, ship, track.
        let completed = ok(&app.put("/shipment", &json!({"shipment": id, "carrier": "DHL", "service": "Express", "tracking": "JD0001", "packages": 1})));
        assert_eq!(
            completed,
            json!({"status": "ok", "order": 500, "shipment": "500-1"}),
            "complete: nothing missing"
        );
        assert_eq!(app.sandbox.captured_minor(), 74_700);
        let order = app.order(500);
        assert_eq!(order["orderStatus"], "shipped", "{backend:?}: {order}");
        assert_eq!(order["capturedValue"].to_string(), "747.00");
        assert_eq!(order["products"][0]["qtyShipped"], json!(2));
        let done = ok(&app.get("/shipments?status=completed"));
        let shipment = &done["shipments"][0];
        assert_eq!(shipment["trackingNumber"], "JD0001");
        assert_eq!(shipment["carrier"], "DHL");
        assert_eq!(shipment["defaultCarrier"], "DHL", "Centra's name for it");
        assert_eq!(shipment["trackingUrl"], "");
        assert_eq!(shipment["deliveryService"], "Express");
        assert_eq!(
            (shipment["paid"].clone(), shipment["shipped"].clone()),
            (json!(1), json!(1))
        );
        assert_eq!(shipment["invoices"].as_array().unwrap().len(), 1);
        assert_ne!(shipment["shippedDate"], "0000-00-00 00:00:00");
        assert_eq!(
            ok(&app.get("/shipments"))["shipments"],
            json!([]),
            "nothing left to pick"
        );
        // One shipment, whatever its status, as Centra's Get shipment answers it.
        let one = ok(&app.get(&format!("/shipments/{id}?order=500")));
        assert_eq!(one["shipments"][0]["shipmentId"], json!(id));
    }
}

#[test]
fn delete_releases_units_and_captured_shipments_refuse_edits() {
    for backend in backends() {
        let app = spawn_app(backend);
        let (tshirt, cap) = lines(&app, 510, "auth-510");
        let first = ok(&app.post(
            "/shipments",
            &json!({"order": 510, "products": {tshirt.clone(): 2}, "capture": false}),
        ));
        assert_eq!(app.order(510)["products"][0]["qtyShippable"], json!(0));
        let deleted = ok(&app.delete("/shipments/510-1"));
        assert_eq!(
            deleted,
            json!({"status": "ok", "msg": "shipment removed", "order": 510, "shipment": first["shipment"]})
        );
        assert_eq!(
            app.order(510)["products"][0]["qtyShippable"],
            json!(2),
            "{backend:?}: units released"
        );
        assert_eq!(app.order(510)["shipments"], json!([]));
        let again = app.delete("/shipments/510-1").json();
        assert_eq!(
            (
                again["status"].clone(),
                again["msg"].clone(),
                again["shipment"].clone()
            ),
            (
                json!("no"),
                json!("shipment does not exist"),
                json!("510-1")
            )
        );
        // Numbers are never reused; a captured shipment refuses line edits and deletion.
        let captured = ok(&app.post(
            "/shipments",
            &json!({"order": 510, "products": {tshirt.clone(): 1}}),
        ));
        assert_eq!(captured["shipment"], "510-2");
        let before = app.dump();
        let edit = app
            .put(
                "/shipments/510-2",
                &json!({"products": {tshirt.clone(): 2}}),
            )
            .json();
        assert_eq!(edit["msg"], "shipment is captured and can not be updated");
        let delete = app.delete("/shipments/510-2").json();
        assert_eq!(
            delete["msg"],
            "shipment has invoices or creditnotes and could not be deleted."
        );
        assert_eq!(
            app.dump(),
            before,
            "{backend:?}: refusals changed the database"
        );
        // gtg may still be set on a captured shipment.
        let gtg = ok(&app.put("/shipments/510-2", &json!({"gtg": true})));
        assert_eq!(gtg["shipment"]["gtg"], json!(1));
        // Capturing a captured shipment answers ok again without capturing twice.
        let captured_before = app.sandbox.captured_minor();
        let recapture = ok(&app.put("/capture", &json!({"shipment": "510-2"})));
        assert_eq!(recapture["missing"], json!(["shipped"]));
        assert_eq!(app.sandbox.captured_minor(), captured_before);
        // A sent, uncaptured shipment refuses line edits with Centra's text.
        ok(&app.post(
            "/shipments",
            &json!({"order": 510, "products": {cap.clone(): 1}, "capture": false, "shipped": true}),
        ));
        let sent = app
            .put("/shipments/510-3", &json!({"products": {cap: 0}}))
            .json();
        assert_eq!(sent["msg"], "shipment is sent and can not be updated");
        // Complete without capture says what is missing.
        let partial = ok(&app.put(
            "/shipment",
            &json!({"shipment": "510-3", "capture": false, "gtg": false}),
        ));
        assert_eq!(partial["missing"], json!(["paid", "gtg"]));
    }
}

#[test]
fn a_declined_capture_on_complete_applies_nothing_else() {
    let app = spawn_app(Backend::Sqlite);
    let (tshirt, _) = lines(&app, 520, "decline-520");
    ok(&app.post(
        "/shipments",
        &json!({"order": 520, "products": {tshirt: 1}, "capture": false}),
    ));
    let before = app.dump();
    let failed = app.put(
        "/shipment",
        &json!({"shipment": "520-1", "tracking": "JD9", "carrier": "DHL"}),
    );
    assert_eq!(failed.status, 200);
    assert_eq!(
        failed.json(),
        json!({"status": "no", "msg": "capture failed", "order": 520, "shipment": "520-1"}),
        "as Centra's error example: the order too, though the request named only the shipment"
    );
    let shipment = &app.order(520)["shipments"][0];
    assert_eq!(shipment["captureState"], "uncaptured");
    assert_eq!(
        (
            shipment["gtg"].clone(),
            shipment["shipped"].clone(),
            shipment["trackingId"].clone(),
            shipment["carrier"].clone()
        ),
        (json!(0), json!(0), json!(""), json!(""))
    );
    assert_eq!(
        app.order(520)["products"][0]["qtyAllocated"],
        json!(1),
        "the shipment stays, uncaptured"
    );
    let after = app.dump();
    let visible = |rows: &[String]| {
        rows.iter()
            .filter(|r| !r.starts_with("capture_attempts"))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(visible(&after).len(), visible(&before).len());
    let captures = app.put("/capture", &json!({"shipment": "520-1"})).json();
    assert_eq!(
        captures,
        json!({"status": "no", "msg": "capture failed", "order": 520, "shipment": "520-1"})
    );
}

#[test]
fn each_calls_bad_input_answers_a_clear_error_and_changes_nothing() {
    let app = spawn_app(Backend::Sqlite);
    let (tshirt, _) = lines(&app, 530, "auth-530");
    ok(&app.post(
        "/shipments",
        &json!({"order": 530, "products": {tshirt.clone(): 1}, "capture": false}),
    ));
    let cases: Vec<(&str, &str, Option<Value>, u16, &str)> = vec![
        (
            "PUT",
            "/shipment",
            Some(json!({})),
            400,
            "missing field shipment",
        ),
        (
            "PUT",
            "/shipment",
            Some(json!({"shipment": "530"})),
            400,
            "must be a shipment id",
        ),
        (
            "PUT",
            "/shipment",
            Some(json!({"shipment": "530-1", "gtg": "yes"})),
            400,
            "field gtg",
        ),
        (
            "PUT",
            "/shipment",
            Some(json!({"shipment": "530-1", "tracking": "a", "trackingNumber": "b"})),
            400,
            "give one of them",
        ),
        (
            "PUT",
            "/shipment",
            Some(json!({"shipment": "530-1", "internalComment": "x".repeat(4001)})),
            400,
            "too long",
        ),
        (
            "PUT",
            "/shipment",
            Some(json!({"shipment": "530-1", "carrierr": "DHL"})),
            400,
            "unknown field",
        ),
        (
            "PUT",
            "/shipment",
            Some(json!({"shipment": "530-9"})),
            200,
            "shipment does not exist",
        ),
        (
            "PUT",
            "/shipment",
            Some(json!({"shipment": "530-1", "order": 531})),
            200,
            "shipment does not exist",
        ),
        (
            "PUT",
            "/capture",
            Some(json!({"shipment": "999-1"})),
            200,
            "shipment does not exist",
        ),
        (
            "PUT",
            "/capture",
            Some(json!({"shipment": "530-1", "capture": true})),
            400,
            "unknown field",
        ),
        (
            "PUT",
            "/shipments/530-1",
            Some(json!({})),
            400,
            "nothing to update",
        ),
        (
            "PUT",
            "/shipments/530-1",
            Some(json!({"products": {tshirt.clone(): -1}})),
            400,
            "whole number",
        ),
        (
            "PUT",
            "/shipments/530-1",
            Some(json!({"products": {tshirt.clone(): 5}})),
            200,
            "can still be shipped",
        ),
        (
            "PUT",
            "/shipments/530-1",
            Some(json!({"products": {tshirt.clone(): 0}})),
            200,
            "delete it instead",
        ),
        (
            "PUT",
            "/shipments/530-1",
            Some(json!({"products": {"77777": 1}})),
            200,
            "does not exist on order 530",
        ),
        (
            "PUT",
            "/shipments/530-x",
            Some(json!({"gtg": true})),
            400,
            "must be a shipment id",
        ),
        (
            "DELETE",
            "/shipments/530-1?order=531",
            None,
            200,
            "shipment does not exist",
        ),
        (
            "DELETE",
            "/shipments/530-1?force=1",
            None,
            400,
            "unknown parameter",
        ),
        (
            "GET",
            "/shipments?status=shipped",
            None,
            400,
            "parameter status",
        ),
        ("GET", "/shipments?limit=101", None, 400, "parameter limit"),
        (
            "GET",
            "/shipments/530-2",
            None,
            200,
            "shipment does not exist",
        ),
        (
            "GET",
            "/shipments/530-1?order=1",
            None,
            200,
            "shipment does not exist",
        ),
    ];
    let before = app.dump();
    for (method, path, body, status, msg) in cases {
        let reply = match (method, &body) {
            ("PUT", Some(body)) => app.put(path, body),
            ("DELETE", _) => app.delete(path),
            _ => app.get(path),
        };
        assert_eq!(
            reply.status, status,
            "{method} {path} {body:?}: {}",
            reply.body
        );
        let answer = reply.json();
        assert_eq!(answer["status"], "no");
        assert!(
            answer["msg"].as_str().unwrap().contains(msg),
            "{method} {path}: {} lacks {msg:?}",
            reply.body
        );
        assert_eq!(app.dump(), before, "{method} {path} changed the database");
    }
}

#[test]
fn a_retry_storm_with_one_idempotency_key_creates_one_shipment_and_one_capture() {
    for backend in backends() {
        let app = std::sync::Arc::new(spawn_app(backend));
        let (tshirt, _) = lines(&app, 540, "auth-540");
        let body = json!({"order": 540, "products": {tshirt: 1}}).to_string();
        let handles: Vec<_> = (0..20)
            .map(|_| {
                let (app, body) = (app.clone(), body.clone());
                std::thread::spawn(move || loop {
                    let reply = app.raw(
                        "POST",
                        "/shipments",
                        &[
                            ("API-Authorization", TEST_KEY),
                            ("Content-Type", "application/json"),
                            ("Idempotency-Key", "storm-1"),
                        ],
                        Some(body.as_bytes()),
                    );
                    if reply.status != 409 {
                        return reply;
                    }
                    assert!(reply.retry_after.is_some());
                    std::thread::sleep(std::time::Duration::from_millis(20));
                })
            })
            .collect();
        let replies: Vec<Reply> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        for reply in &replies {
            assert_eq!(reply.status, 200);
            assert_eq!(
                reply.body, replies[0].body,
                "{backend:?}: every answer is the same"
            );
        }
        assert_eq!(
            replies
                .iter()
                .filter(|r| r.replayed.as_deref() == Some("true"))
                .count(),
            19
        );
        assert_eq!(replies[0].json()["shipment"], "540-1");
        assert_eq!(
            app.order(540)["shipments"].as_array().unwrap().len(),
            1,
            "{backend:?}: one shipment"
        );
        assert_eq!(app.sandbox.capture_count(), 1, "{backend:?}: one capture");
    }
}

#[test]
fn idempotency_keys_refuse_another_body_and_are_scoped_to_the_api_key() {
    let app = spawn_app(Backend::Sqlite);
    let (tshirt, cap) = lines(&app, 550, "auth-550");
    let send = |key: &str, api_key: &str, body: &Value| {
        app.raw(
            "POST",
            "/shipments",
            &[
                ("API-Authorization", api_key),
                ("Content-Type", "application/json"),
                ("Idempotency-Key", key),
            ],
            Some(body.to_string().as_bytes()),
        )
    };
    let first = send(
        "k-1",
        TEST_KEY,
        &json!({"order": 550, "products": {tshirt.clone(): 1}}),
    );
    assert_eq!(first.json()["shipment"], "550-1");
    let other = send(
        "k-1",
        TEST_KEY,
        &json!({"order": 550, "products": {cap.clone(): 1}}),
    );
    assert_eq!(other.status, 422);
    assert_eq!(
        other.json(),
        json!({"status": "no", "msg": "idempotency key reused with a different request"})
    );
    // Another API key's "k-1" is its own key: it runs.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let second_key = "csk_second-integration-key-000000";
    runtime
        .block_on(app.database.add_key(second_key, "second", Timestamp(0)))
        .unwrap();
    let theirs = send(
        "k-1",
        second_key,
        &json!({"order": 550, "products": {tshirt.clone(): 1}}),
    );
    assert_eq!(theirs.json()["shipment"], "550-2");
    assert_eq!(theirs.replayed, None);
    // 400s are stored too; malformed keys are refused.
    let bad = send("k-2", TEST_KEY, &json!({"order": 550}));
    let replay = send("k-2", TEST_KEY, &json!({"order": 550}));
    assert_eq!(
        (bad.status, replay.status, replay.replayed.as_deref()),
        (400, 400, Some("true"))
    );
    let long = send(
        &"k".repeat(256),
        TEST_KEY,
        &json!({"order": 550, "products": {cap: 1}}),
    );
    assert_eq!(long.status, 400);
    assert!(long.json()["msg"]
        .as_str()
        .unwrap()
        .contains("Idempotency-Key"));
    assert_eq!(app.order(550)["shipments"].as_array().unwrap().len(), 2);
}

#[test]
fn an_unknown_outcome_is_not_stored_and_the_retry_drives_the_same_capture() {
    let app = spawn_app_with(Backend::Sqlite, &[("CONSIGN_RECOVERY_AFTER", "60s")]);
    let (tshirt, _) = lines(&app, 560, "timeout-560");
    let body = json!({"order": 560, "products": {tshirt.clone(): 1}});
    let send_body = |body: &Value| {
        app.raw(
            "POST",
            "/shipments",
            &[
                ("API-Authorization", TEST_KEY),
                ("Content-Type", "application/json"),
                ("Idempotency-Key", "pending-1"),
            ],
            Some(body.to_string().as_bytes()),
        )
    };
    let send = || send_body(&body);
    let first = send();
    assert_eq!(first.status, 503, "{}", first.body);
    assert_eq!(first.json()["shipment"], "560-1");
    // The 503 was not stored, so the key is free again: a request for other units with it is
    // not the retry, and is never answered with the first request's shipment.
    let other = send_body(&json!({"order": 560, "products": {tshirt: 2}}));
    assert_eq!(other.status, 422, "{}", other.body);
    assert_eq!(
        other.json()["msg"],
        "idempotency key reused with a different request"
    );
    let retry = send();
    assert_eq!(retry.status, 200, "{}", retry.body);
    assert_eq!(retry.replayed, None, "a 503 is never stored as final");
    assert_eq!(
        retry.json()["shipment"],
        "560-1",
        "the retry drove the same shipment"
    );
    assert!(retry.json()["invoice"].is_string());
    let third = send();
    assert_eq!(
        (third.replayed.as_deref(), third.body.clone()),
        (Some("true"), retry.body.clone())
    );
    assert_eq!(app.order(560)["shipments"].as_array().unwrap().len(), 1);
    assert_eq!(app.sandbox.capture_count(), 1, "captured once");
}

/// The largest order id an import accepts is also one whose shipments can be addressed.
#[test]
fn a_shipment_of_the_largest_order_id_can_be_read_and_completed() {
    for backend in backends() {
        let app = spawn_app(backend);
        let order = i64::MAX;
        let (tshirt, _) = lines(&app, order, "auth-max");
        let created = ok(&app.post(
            "/shipments",
            &json!({"order": order, "products": {tshirt: 1}, "capture": false}),
        ));
        let id = created["shipment"].as_str().unwrap().to_owned();
        assert_eq!(id, format!("{order}-1"), "{backend:?}");
        let read = ok(&app.get(&format!("/shipments/{id}")));
        assert_eq!(read["shipments"][0]["shipmentId"], json!(id), "{backend:?}");
        ok(&app.put("/shipment", &json!({"shipment": id})));
    }
}

/// A capture or complete answered 503 (outcome unknown) and retried with its idempotency key
/// drives that same capture to its outcome; without a key the shipment is in flight (409).
#[test]
fn a_capture_or_complete_retried_with_its_key_drives_the_capture_in_flight() {
    for backend in backends() {
        let app = spawn_app_with(backend, &[("CONSIGN_RECOVERY_AFTER", "60s")]);
        for (order, path, key) in [
            (561, "/capture", "capture-1"),
            (562, "/shipment", "complete-1"),
        ] {
            let (tshirt, _) = lines(&app, order, &format!("timeout-{order}"));
            let created = ok(&app.post(
                "/shipments",
                &json!({"order": order, "products": {tshirt: 1}, "capture": false}),
            ));
            let id = created["shipment"].as_str().unwrap().to_owned();
            let body = json!({"shipment": id}).to_string();
            let send = |key: Option<&str>| {
                let mut headers = vec![
                    ("API-Authorization", TEST_KEY),
                    ("Content-Type", "application/json"),
                ];
                headers.extend(key.map(|k| ("Idempotency-Key", k)));
                app.raw("PUT", path, &headers, Some(body.as_bytes()))
            };
            let first = send(Some(key));
            assert_eq!(first.status, 503, "{backend:?} {path}: {}", first.body);
            let without_key = send(None);
            assert_eq!(
                without_key.status, 409,
                "{backend:?} {path}: {}",
                without_key.body
            );
            let retry = send(Some(key));
            assert_eq!(retry.status, 200, "{backend:?} {path}: {}", retry.body);
            assert_eq!(retry.json()["status"], "ok", "{backend:?} {path}");
            assert_eq!(retry.json()["shipment"], json!(id), "{backend:?} {path}");
        }
        assert_eq!(
            app.sandbox.capture_count(),
            2,
            "{backend:?}: each captured once"
        );
    }
}

/// A complete with another key meeting a capture in flight drives it and still applies its own
/// changes: an ok answer never drops what the request asked.
#[test]
fn a_complete_with_its_own_key_meeting_a_capture_in_flight_applies_its_changes() {
    for backend in backends() {
        let app = spawn_app_with(backend, &[("CONSIGN_RECOVERY_AFTER", "60s")]);
        let (tshirt, _) = lines(&app, 563, "timeout-563");
        ok(&app.post(
            "/shipments",
            &json!({"order": 563, "products": {tshirt: 1}, "capture": false}),
        ));
        let complete = |key: &str, body: Value| {
            app.raw(
                "PUT",
                "/shipment",
                &[
                    ("API-Authorization", TEST_KEY),
                    ("Content-Type", "application/json"),
                    ("Idempotency-Key", key),
                ],
                Some(body.to_string().as_bytes()),
            )
        };
        let first = complete("first", json!({"shipment": "563-1", "shipped": false}));
        assert_eq!(first.status, 503, "{backend:?}: {}", first.body);
        let second = complete("second", json!({"shipment": "563-1", "tracking": "JD563"}));
        assert_eq!(second.status, 200, "{backend:?}: {}", second.body);
        let shipment = &app.order(563)["shipments"][0];
        assert_eq!(
            (
                shipment["captureState"].clone(),
                shipment["trackingId"].clone()
            ),
            (json!("captured"), json!("JD563")),
            "{backend:?}"
        );
        assert_eq!(app.sandbox.capture_count(), 1, "{backend:?}");
    }
}
