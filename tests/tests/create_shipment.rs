//! Create Shipment end to end: the real server on loopback, over HTTP, on every backend.

use consign_ports::{KeyStore, Timestamp};
use consign_tests::*;
use serde_json::{json, Value};

fn lines(app: &TestApp, id: i64, reference: &str) -> (String, String) {
    let ids = app.import(&example_order(id, reference));
    (ids[0].clone(), ids[1].clone())
}

#[test]
fn the_seed_request_gets_the_seed_response_shape() {
    for backend in backends() {
        let app = spawn_app(backend);
        let (tshirt, cap) = lines(&app, 83651, "auth-83651");
        let reply = app.post(
            "/shipments",
            &json!({"order": 83651, "products": {tshirt.clone(): 1, cap: 1}}),
        );
        assert_eq!(reply.status, 200, "{backend:?}: {}", reply.body);
        assert_eq!(reply.content_type, "application/json");
        let answer = reply.json();
        assert_eq!(answer["status"], "ok");
        assert_eq!(answer["order"], json!(83651), "order is a number");
        assert_eq!(answer["shipment"], "83651-1");
        for (field, kind) in [
            ("deliveryNote", "delivery-note"),
            ("proforma", "proforma"),
            ("invoice", "invoice"),
        ] {
            let url = answer[field]
                .as_str()
                .unwrap_or_else(|| panic!("{field} missing: {answer}"));
            let prefix = format!(
                "{}/api/order/documents/83651-1/{kind}.pdf?token=",
                app.address
            );
            assert!(url.starts_with(&prefix), "{url}");
        }
        // The first captured shipment carries the shipping fee: 249.50 + 199.00 + 49.00.
        assert_eq!(app.sandbox.captured_minor(), 49_750);
        let order = app.order(83651);
        assert_eq!(order["shipments"][0]["captureValue"].to_string(), "497.50");
        assert_eq!(order["shipments"][0]["captureState"], "captured");
        assert_eq!(order["products"][0]["qtyShippable"], json!(1));
        // The next shipment gets the next number and the exact remainder.
        let second = app
            .post(
                "/shipments",
                &json!({"order": 83651, "products": {tshirt: 1}}),
            )
            .json();
        assert_eq!(second["shipment"], "83651-2");
        let order = app.order(83651);
        assert_eq!(order["capturedValue"].to_string(), "747.00");
        assert_eq!(order["grandTotalValue"].to_string(), "747.00");
        assert_eq!(
            app.sandbox.captured_minor(),
            74_700,
            "captures add up to the total"
        );
    }
}

#[test]
fn the_seeds_error_examples_come_back_with_their_exact_messages() {
    for backend in backends() {
        let app = spawn_app(backend);
        let reply = app.post("/shipments", &json!({"order": 1337, "products": {"1": 1}}));
        assert_eq!(reply.status, 200);
        assert_eq!(
            reply.json(),
            json!({"status": "no", "msg": "order does not exist", "order": 1337})
        );

        let (tshirt, _) = lines(&app, 5, "decline-5");
        let before = app.dump();
        let reply = app.post(
            "/shipments",
            &json!({"order": "5", "products": {tshirt: 1}}),
        );
        assert_eq!(reply.status, 200);
        assert_eq!(
            reply.json(),
            json!({"status": "no", "msg": "can not capture order", "order": 5})
        );
        assert_eq!(app.sandbox.captured_minor(), 0);
        let order = app.order(5);
        assert_eq!(
            order["shipments"],
            json!([]),
            "{backend:?}: a declined shipment is not listed"
        );
        assert_eq!(
            order["products"][0]["qtyShippable"],
            json!(2),
            "units released"
        );
        assert_ne!(app.dump(), before, "the voided shipment stays for audit");
    }
}

#[test]
fn each_rejection_rule_answers_status_no_and_changes_nothing_visible() {
    for backend in backends() {
        let app = spawn_app(backend);
        let (tshirt, cap) = lines(&app, 10, "auth-10");
        let mut no_payment = example_order(11, "x");
        no_payment.as_object_mut().unwrap().remove("payment");
        let other_lines = app.import(&no_payment);
        let cases: Vec<(Value, String)> = vec![
            (
                json!({"order": 999, "products": {tshirt.clone(): 1}}),
                "order does not exist".into(),
            ),
            (
                json!({"order": 10, "products": {other_lines[0].clone(): 1}}),
                format!("line {} does not exist on order 10", other_lines[0]),
            ),
            (
                json!({"order": 10, "products": {"987654": 1}}),
                "line 987654 does not exist on order 10".into(),
            ),
            (
                json!({"order": 10, "products": {tshirt.clone(): 3}}),
                format!("line {tshirt}: requested 3, but only 2 of 2 can still be shipped"),
            ),
            (
                json!({"order": 10, "products": {tshirt.clone(): 1, cap.clone(): 2}}),
                format!("line {cap}: requested 2, but only 1 of 1 can still be shipped"),
            ),
            (
                json!({"order": 11, "products": {other_lines[0].clone(): 1}}),
                "order has no payment authorisation".into(),
            ),
        ];
        for (request, msg) in cases {
            let before = app.dump();
            let reply = app.post("/shipments", &request);
            assert_eq!(reply.status, 200, "{request}: {}", reply.body);
            let answer = reply.json();
            assert_eq!(answer["status"], "no");
            assert_eq!(answer["msg"], msg, "{backend:?} {request}");
            assert_eq!(answer["order"], request["order"]);
            assert_eq!(
                app.dump(),
                before,
                "{backend:?}: {request} changed the database"
            );
        }
        assert_eq!(app.sandbox.captured_minor(), 0);
    }
}

#[test]
fn capture_false_creates_an_uncaptured_shipment_without_an_invoice() {
    for backend in backends() {
        let app = spawn_app(backend);
        let (tshirt, _) = lines(&app, 20, "auth-20");
        let answer = app
            .post(
                "/shipments",
                &json!({"order": 20, "products": {tshirt: 2}, "capture": false, "gtg": true}),
            )
            .json();
        assert_eq!(answer["status"], "ok");
        assert_eq!(answer["shipment"], "20-1");
        assert!(
            answer.get("invoice").is_none(),
            "no invoice before capture: {answer}"
        );
        assert!(answer["deliveryNote"].is_string());
        assert_eq!(app.sandbox.captured_minor(), 0, "nothing captured");
        let order = app.order(20);
        let shipment = &order["shipments"][0];
        assert_eq!(shipment["captureState"], "uncaptured");
        assert_eq!(shipment["captureValue"], json!(0));
        assert_eq!(shipment["paid"], json!(0));
        assert_eq!(shipment["gtg"], json!(1));
        assert_eq!(order["products"][0]["qtyAllocated"], json!(2));
        assert_eq!(order["products"][0]["qtyCaptured"], json!(0));
    }
}

#[test]
fn an_unknown_capture_outcome_answers_503_and_recovery_settles_it() {
    for backend in backends() {
        let app = spawn_app(backend);
        let (tshirt, _) = lines(&app, 30, "timeout-30");
        let reply = app.post("/shipments", &json!({"order": 30, "products": {tshirt: 1}}));
        assert_eq!(reply.status, 503, "{}", reply.body);
        assert!(reply.retry_after.is_some());
        let answer = reply.json();
        assert_eq!(answer["status"], "no");
        assert_eq!(answer["shipment"], "30-1");
        assert_eq!(app.order(30)["shipments"][0]["captureState"], "pending");
        // Recovery replays the attempt with the same key; the sandbox then captures it once.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let order = app.order(30);
            if order["shipments"][0]["captureState"] == "captured" {
                assert_eq!(order["shipments"][0]["captureValue"].to_string(), "298.50");
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{backend:?}: recovery never settled: {order}"
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        assert_eq!(app.sandbox.capture_count(), 1, "captured exactly once");
        assert_eq!(app.sandbox.captured_minor(), 29_850);
    }
}

#[test]
fn xml_answers_have_a_response_root_and_flags_as_digits() {
    let app = spawn_app(Backend::Sqlite);
    let (tshirt, _) = lines(&app, 40, "auth-40");
    let reply = app.post(
        "/shipments",
        &json!({"order": 40, "products": {tshirt: 1}, "xml": true, "gtg": "1"}),
    );
    assert_eq!(reply.status, 200);
    assert_eq!(reply.content_type, "application/xml");
    assert!(reply.body.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?><response><status>ok</status><order>40</order><shipment>40-1</shipment>"), "{}", reply.body);
    let list = app.get("/orders?order=40&xml=1");
    assert_eq!(list.content_type, "application/xml");
    assert!(
        list.body
            .contains("<shipments><item><shipmentId>40-1</shipmentId>"),
        "{}",
        list.body
    );
    assert!(list.body.contains("<gtg>1</gtg>"));
    assert!(list.body.contains("<products><item><lineId>"));
    let refused = app.post(
        "/shipments",
        &json!({"order": 404, "products": {"1": 1}, "xml": 1}),
    );
    assert_eq!(refused.body, "<?xml version=\"1.0\" encoding=\"UTF-8\"?><response><status>no</status><msg>order does not exist</msg><order>404</order></response>");
    let unparsable = app.raw(
        "POST",
        "/shipments",
        &[("API-Authorization", TEST_KEY)],
        Some(b"{\"xml\":true,"),
    );
    assert_eq!(unparsable.status, 400);
    assert_eq!(
        unparsable.content_type, "application/json",
        "a body that cannot be parsed is answered in JSON"
    );
    // A bad query parameter beside a valid xml flag is answered as asked; a bad flag in JSON.
    let bad_limit = app.get("/orders?xml=1&limit=abc");
    assert_eq!(
        (bad_limit.status, bad_limit.content_type.as_str()),
        (400, "application/xml"),
        "{}",
        bad_limit.body
    );
    assert!(
        bad_limit
            .body
            .contains("<status>no</status><msg>parameter limit"),
        "{}",
        bad_limit.body
    );
    let bad_flag = app.get("/orders?xml=maybe");
    assert_eq!(
        (bad_flag.status, bad_flag.content_type.as_str()),
        (400, "application/json")
    );
}

#[test]
fn missing_wrong_and_revoked_keys_get_401_and_touch_nothing() {
    let app = spawn_app(Backend::Sqlite);
    let (tshirt, _) = lines(&app, 50, "auth-50");
    let body = json!({"order": 50, "products": {tshirt: 1}}).to_string();
    let revoked = "csk_revoked-key-for-this-test-000000";
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let id = runtime
        .block_on(app.database.add_key(revoked, "to revoke", Timestamp(0)))
        .unwrap();
    runtime
        .block_on(app.database.revoke_key(id, Timestamp(1)))
        .unwrap();
    let before = app.dump();
    for headers in [
        vec![],
        vec![("API-Authorization", "csk_wrong")],
        vec![("API-Authorization", revoked)],
        vec![("API-Authorization", "")],
    ] {
        for (method, path) in [
            ("POST", "/shipments"),
            ("GET", "/orders"),
            ("POST", "/order"),
            ("GET", "/no-such-route"),
        ] {
            let mut all = headers.clone();
            all.push(("Content-Type", "application/json"));
            let reply = app.raw(
                method,
                path,
                &all,
                (method == "POST").then_some(body.as_bytes()),
            );
            assert_eq!(reply.status, 401, "{method} {path} with {headers:?}");
            assert_eq!(reply.json(), json!({"status": "no", "msg": "unauthorized"}));
        }
    }
    assert_eq!(app.dump(), before);
    assert_eq!(app.sandbox.captured_minor(), 0);
    // With a key: unknown routes are 404 and wrong methods 405 with Allow.
    let missing = app.get("/no-such-route");
    assert_eq!(
        (missing.status, missing.json()["msg"].clone()),
        (404, json!("not found"))
    );
    let wrong = app.get("/shipments/../order");
    assert_eq!(wrong.status, 405);
    assert_eq!(wrong.allow.as_deref(), Some("POST"));
    let outside = app.raw("GET", "/../../elsewhere", &[], None);
    assert_eq!(outside.status, 404);
}

#[test]
fn centras_string_numbers_and_flags_are_read_leniently() {
    let app = spawn_app(Backend::Sqlite);
    let (tshirt, cap) = lines(&app, 60, "auth-60");
    let answer = app
        .post(
            "/shipments",
            &json!({"order": "60", "products": {tshirt: "2", cap: 1}, "capture": "0", "gtg": 1, "shipped": "true",
                    "carrier": "DHL", "service": "Express", "packages": "2", "tracking": "JD0001", "sendEmail": null,
                    "createAlways": "false", "deductPreviousCosts": 0}),
        )
        .json();
    assert_eq!(answer["status"], "ok", "{answer}");
    assert_eq!(answer["order"], json!(60));
    let shipment = &app.order(60)["shipments"][0];
    assert_eq!(shipment["captureState"], "uncaptured");
    assert_eq!(
        (shipment["gtg"].clone(), shipment["shipped"].clone()),
        (json!(1), json!(1))
    );
    assert_eq!(shipment["carrier"], "DHL");
    assert_eq!(shipment["trackingId"], "JD0001");
    assert_ne!(shipment["shippedDate"], "0000-00-00 00:00:00");
}

#[test]
fn importing_an_existing_order_id_is_refused_and_assigned_ids_never_collide() {
    let app = spawn_app(Backend::Sqlite);
    app.import(&example_order(1, "a"));
    let before = app.dump();
    let again = app.post("/order", &example_order(1, "b"));
    assert_eq!(again.status, 200);
    assert_eq!(
        again.json(),
        json!({"status": "no", "msg": "order already exists", "order": 1})
    );
    assert_eq!(app.dump(), before);
    let mut assigned = example_order(0, "c");
    assigned.as_object_mut().unwrap().remove("order");
    let answer = app.post("/order", &assigned).json();
    assert_eq!(answer["status"], "ok");
    assert_ne!(answer["order"], json!(1));
    let too_small = app.post("/order", &{
        let mut o = example_order(2, "d");
        o["payment"]["amount"] = json!("746.99");
        o
    });
    assert_eq!(too_small.status, 400);
    assert_eq!(
        too_small.json()["msg"],
        "payment amount 746.99 does not cover the order total 747.00"
    );
}

/// A page longer than the part the server reads at a time comes back whole and in order, with
/// its offset, as JSON and as XML.
#[test]
fn a_page_of_orders_longer_than_a_part_is_listed_whole_and_in_order() {
    for backend in backends() {
        let app = spawn_app(backend);
        for id in 1..=130 {
            app.import(&example_order(id, &format!("auth-{id}")));
        }
        let ids = |path: &str| -> Vec<String> {
            let reply = app.get(path);
            assert_eq!(reply.status, 200, "{}", reply.body);
            reply.json()["orders"]
                .as_array()
                .expect("orders")
                .iter()
                .map(|o| o["orderId"].as_str().expect("orderId").to_owned())
                .collect()
        };
        let expected = |ids: std::ops::RangeInclusive<i64>| -> Vec<String> {
            ids.map(|id| id.to_string()).collect()
        };
        assert_eq!(ids("/orders?limit=1000"), expected(1..=130));
        assert_eq!(ids("/orders?limit=120&offset=7"), expected(8..=127));
        assert_eq!(ids("/orders?limit=50&offset=100"), expected(101..=130));
        let xml = app.get("/orders?limit=1000&xml=1");
        assert!(xml.body.ends_with("</orders></response>"), "{}", xml.body);
        assert_eq!(xml.body.matches("<item><orderId>").count(), 130);
    }
}
