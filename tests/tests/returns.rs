//! Returns and refunds over HTTP, as a warehouse client does them with Centra's requests: on
//! SQLite and PostgreSQL, against the sandbox gateway, whose ledger is what really moved.

use consign_tests::*;
use serde_json::{json, Value};

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

fn no(reply: &Reply, status: u16) -> Value {
    let answer = reply.json();
    assert_eq!(
        (reply.status, answer["status"].clone()),
        (status, json!("no")),
        "{}",
        reply.body
    );
    answer
}

/// Imports the example order (747.00 SEK) and ships and captures everything in one shipment.
fn shipped(app: &TestApp, id: i64, reference: &str) -> (String, String, String) {
    let ids = app.import(&example_order(id, reference));
    let (tshirt, cap) = (ids[0].clone(), ids[1].clone());
    let created = ok(&app.post(
        "/shipments",
        &json!({"order": id, "products": {tshirt.clone(): 2, cap.clone(): 1}}),
    ));
    (
        created["shipment"].as_str().unwrap().to_owned(),
        tshirt,
        cap,
    )
}

fn returns_of(app: &TestApp, shipment: &str) -> Vec<Value> {
    ok(&app.get(&format!("/returns?shipment={shipment}")))["returns"]
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn centras_request_examples_a_partial_return_and_its_refund() {
    for backend in backends() {
        let app = spawn_app(backend);
        let (shipment, tshirt, cap) = shipped(&app, 120276, "auth-120276");
        // Centra's first example: one of each line back, no refund.
        let created = ok(&app.post(
            "/return",
            &json!({"shipment": shipment, "returnStock": 1, "comment": "Return created with Order Api",
                    "products": {tshirt.clone(): "1", cap.clone(): "1"}}),
        ));
        assert_eq!(created["order"], json!(120276));
        assert_eq!(created["returnCompleted"], json!(false));
        assert_eq!(created["returnedItems"], json!([tshirt, cap]));
        assert_eq!(created["refundValue"].to_string(), "448.50");
        assert!(created.get("refund").is_none(), "{created}");
        let first = created["return"].as_i64().unwrap();
        assert_eq!(
            app.sandbox.refunded_minor(),
            0,
            "{backend:?}: no refund asked"
        );
        // The second example: the last T-shirt back, refunded at once, confirmation asked.
        let refunded = ok(&app.post(
            "/return",
            &json!({"shipment": shipment, "returnStock": 1, "comment": "Return created with Order Api",
                    "products": {tshirt.clone(): "1"},
                    "refund": {"refundPayment": true, "sendEmail": true}}),
        ));
        assert_eq!(refunded["returnCompleted"], json!(true));
        assert_eq!(refunded["refund"], json!({"status": "ok"}));
        assert_eq!(refunded["refundValue"].to_string(), "249.50");
        assert_eq!(app.sandbox.refunded_minor(), 24_950, "{backend:?}");
        let second = refunded["return"].as_i64().unwrap();
        assert!(second > first, "ids only grow");
        // Get returns, newest first, with Centra's fields.
        let listed = returns_of(&app, &shipment);
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0]["returnId"], json!(second));
        assert_eq!(listed[1]["returnId"], json!(first));
        let r = &listed[1];
        assert_eq!(r["shipment"], json!(shipment));
        assert_eq!(r["orderId"], json!(120276));
        assert_eq!(r["currency"], "SEK");
        assert_eq!(r["returnToStock"], json!(true));
        assert_eq!(r["comment"], "Return created with Order Api");
        assert_eq!(r["createdFrom"], "Order API");
        assert_eq!(r["refundState"], "none");
        // VAT included in 249.50 + 199.00 at 25%: 448.50 / 5 = 89.70.
        assert_eq!(r["taxValue"].to_string(), "89.70");
        assert!(r["shipmentId"].as_i64().unwrap() > 0);
        let products = r["products"].as_array().unwrap();
        assert_eq!(products.len(), 2);
        assert_eq!(products[0]["orderLineId"].to_string(), tshirt);
        assert_eq!(products[0]["quantity"], json!(1));
        assert_eq!(products[0]["price"].to_string(), "249.50");
        assert_eq!(
            products[0]["shipmentLineId"], listed[0]["products"][0]["shipmentLineId"],
            "one shipment line, one id"
        );
        assert_eq!(listed[0]["refundState"], "refunded");
        assert!(listed[0]["creditNote"].as_str().is_some(), "{}", listed[0]);
        // Update return (Centra's example): complete the first; then refund it.
        let completed = ok(&app.put(&format!("/returns/{first}"), &json!({"completed": true})));
        assert_eq!(completed["return"]["completed"], json!(true));
        assert_eq!(completed["return"]["refundState"], "none");
        let paid = ok(&app.put(
            &format!("/returns/{first}"),
            &json!({"refundPayment": true}),
        ));
        assert_eq!(paid["return"]["refundState"], "refunded");
        assert_eq!(app.sandbox.refunded_minor(), 24_950 + 44_850);
        // Asked again: nothing twice.
        let again = ok(&app.put(
            &format!("/returns/{first}"),
            &json!({"refundPayment": true}),
        ));
        assert_eq!(again["return"]["refundState"], "refunded");
        assert_eq!(app.sandbox.refunded_minor(), 24_950 + 44_850);
        // A refunded return cannot be set back to pending.
        let back = no(
            &app.put(&format!("/returns/{first}"), &json!({"completed": false})),
            200,
        );
        assert!(back["msg"].as_str().unwrap().contains("refunded"), "{back}");
        // The figures in Get orders and Get shipments.
        let order = app.order(120276);
        assert_eq!(order["refundedValue"].to_string(), "698.00");
        assert_eq!(order["products"][0]["qtyReturned"], json!(2));
        assert_eq!(order["products"][1]["qtyReturned"], json!(1));
        let listed = ok(&app.get(&format!("/shipments/{shipment}")));
        assert_eq!(
            listed["shipments"][0]["refundedValue"].to_string(),
            "698.00"
        );
        // Everything came back: nothing more can be returned, nothing is written. (The refund
        // confirmation's outbox row moves on its own as the sender takes it: wait until it is
        // sent before comparing.)
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        let before = loop {
            let dump = app.dump();
            if !dump
                .iter()
                .any(|r| r.starts_with("outbox ") && !r.contains("\"sent\""))
            {
                break dump;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{backend:?}: confirmation not sent"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        };
        let nothing = no(
            &app.post(
                "/return",
                &json!({"shipment": shipment, "products": {tshirt.clone(): 1}}),
            ),
            200,
        );
        assert_eq!(nothing["notReturned"][0]["lineId"], json!(tshirt));
        assert_eq!(
            app.dump(),
            before,
            "{backend:?}: a refused return writes nothing"
        );
    }
}

/// A refund completes the return, so asking for one while setting the return back to pending
/// is refused before any money moves: carried out in turn, the refund went out and the answer
/// said `no`, and a client believing it would refund the customer again by hand.
#[test]
fn a_refund_asked_with_the_return_set_back_to_pending_is_refused_before_any_money_moves() {
    for backend in backends() {
        let app = spawn_app(backend);
        let (shipment, tshirt, _) = shipped(&app, 120277, "auth-120277");
        let created = ok(&app.post(
            "/return",
            &json!({"shipment": shipment, "products": {tshirt.clone(): 1}}),
        ));
        let id = created["return"].as_i64().unwrap();
        let both = json!({"refundPayment": true, "completed": false});
        let refused = no(&app.put(&format!("/returns/{id}"), &both), 200);
        assert_eq!(
            refused["msg"],
            json!("a refunded return is completed and cannot be set back to pending"),
            "{backend:?}"
        );
        assert_eq!(app.sandbox.refunded_minor(), 0, "{backend:?}: nothing sent");
        // The same request for a return that does not exist says so.
        let missing = no(&app.put("/returns/424243", &both), 200);
        assert_eq!(
            missing["msg"], "Return with id=424243 does not exist",
            "{backend:?}"
        );
        let listed = returns_of(&app, &shipment);
        assert_eq!(listed[0]["refundState"], "none", "{backend:?}");
        assert_eq!(listed[0]["completed"], json!(false), "{backend:?}");
        assert!(
            listed[0].get("creditNote").is_none_or(Value::is_null),
            "{}",
            listed[0]
        );
        // Asked for with the return completed, it goes through.
        let both = json!({"refundPayment": true, "completed": true});
        let paid = ok(&app.put(&format!("/returns/{id}"), &both));
        assert_eq!(paid["return"]["refundState"], "refunded", "{backend:?}");
        assert_eq!(app.sandbox.refunded_minor(), 24_950, "{backend:?}");
    }
}

#[test]
fn a_whole_shipment_with_its_shipping_fee_and_an_over_return_left_out() {
    for backend in backends() {
        let app = spawn_app(backend);
        let (shipment, tshirt, cap) = shipped(&app, 7001, "auth-7001");
        // Three T-shirts were never shipped: left out, the cap comes back. (`createdAt` in
        // either of Centra's forms is accepted.)
        let partial = ok(&app.post(
            "/return",
            &json!({"shipment": shipment, "products": {tshirt.clone(): 3, cap.clone(): 1},
                    "createdAt": "2015-12-24 13:25:01"}),
        ));
        assert_eq!(partial["returnedItems"], json!([cap]));
        assert_eq!(partial["notReturned"][0]["lineId"], json!(tshirt));
        assert!(
            partial["notReturned"][0]["msg"]
                .as_str()
                .unwrap()
                .contains("only 2 of 2"),
            "{partial}"
        );
        // No products: everything still returnable, with the shipping fee, less a return cost.
        let rest = ok(&app.post(
            "/return",
            &json!({"shipment": shipment, "shippingCostFromShipment": true, "returnCost": "20.00",
                    "refund": {"refundPayment": true}}),
        ));
        assert_eq!(rest["returnedItems"], json!([tshirt]));
        // 2 x 249.50 + 49.00 - 20.00
        assert_eq!(rest["refundValue"].to_string(), "528.00");
        assert_eq!(app.sandbox.refunded_minor(), 52_800, "{backend:?}");
        // Both a cost and its FromShipment flag: 400.
        let both = no(
            &app.post(
                "/return",
                &json!({"shipment": shipment, "shippingCost": 1, "shippingCostFromShipment": true}),
            ),
            400,
        );
        assert!(
            both["msg"].as_str().unwrap().contains("shippingCost"),
            "{both}"
        );
    }
}

#[test]
fn refunds_above_what_remains_are_refused_with_nothing_written() {
    for backend in backends() {
        let app = spawn_app(backend);
        let (shipment, tshirt, _) = shipped(&app, 7002, "auth-7002");
        // 249.50 + a handling cost of 600 is more than the 747.00 captured? No: 849.50 is.
        let before = app.dump();
        let refused = no(
            &app.post(
                "/return",
                &json!({"shipment": shipment, "products": {tshirt.clone(): 1},
                        "handlingCost": "600.00", "refund": {"refundPayment": true}}),
            ),
            200,
        );
        let msg = refused["msg"].as_str().unwrap();
        assert!(msg.contains("849.50") && msg.contains("747.00"), "{msg}");
        assert_eq!(app.dump(), before, "{backend:?}");
        assert_eq!(app.sandbox.refunded_minor(), 0);
        // More decimals than SEK has: refused, nothing written.
        let decimals = no(
            &app.post(
                "/return",
                &json!({"shipment": shipment, "products": {tshirt.clone(): 1}, "returnCost": "1.005"}),
            ),
            200,
        );
        assert!(
            decimals["msg"].as_str().unwrap().contains("returnCost"),
            "{decimals}"
        );
        assert_eq!(app.dump(), before, "{backend:?}");
        // An uncaptured shipment has no money to give back.
        let ids = app.import(&example_order(7003, "auth-7003"));
        let open = ok(&app.post(
            "/shipments",
            &json!({"order": 7003, "products": {ids[0].clone(): 1}, "capture": false}),
        ));
        let before_refusals = app.dump();
        let refused = no(
            &app.post("/return", &json!({"shipment": open["shipment"]})),
            200,
        );
        assert!(
            refused["msg"]
                .as_str()
                .unwrap()
                .contains("update or delete"),
            "{refused}"
        );
        let missing = no(&app.post("/return", &json!({"shipment": "999-1"})), 200);
        assert_eq!(missing["msg"], "shipment does not exist");
        let unknown = no(
            &app.put("/returns/424242", &json!({"completed": true})),
            200,
        );
        assert_eq!(unknown["msg"], "Return with id=424242 does not exist");
        // Strict fields.
        let stray = no(
            &app.post("/return", &json!({"shipment": shipment, "refundAll": true})),
            400,
        );
        assert!(
            stray["msg"].as_str().unwrap().contains("refundAll"),
            "{stray}"
        );
        let negative = no(
            &app.post("/return", &json!({"shipment": shipment, "returnCost": -1})),
            400,
        );
        assert!(
            negative["msg"].as_str().unwrap().contains("returnCost"),
            "{negative}"
        );
        // One line under two spellings of its id (two units were shipped): refused as one
        // line named twice, never read as two lines (whose rows would collide).
        let twice = no(
            &app.post(
                "/return",
                &json!({"shipment": shipment, "products": {tshirt.clone(): 1, format!("0{tshirt}"): 1}}),
            ),
            400,
        );
        assert_eq!(
            twice["msg"],
            format!("line {tshirt} appears more than once"),
            "{twice}"
        );
        assert_eq!(app.dump(), before_refusals, "{backend:?}");
    }
}

#[test]
fn a_declined_refund_keeps_the_return_and_a_retry_refunds_it() {
    for backend in backends() {
        let app = spawn_app(backend);
        // Captures succeed against "norefund" references; refunds are declined.
        let (shipment, tshirt, _) = shipped(&app, 7004, "norefund-7004");
        let created = ok(&app.post(
            "/return",
            &json!({"shipment": shipment, "products": {tshirt.clone(): 1}, "refund": {"refundPayment": true}}),
        ));
        assert_eq!(created["returnCompleted"], json!(false));
        assert_eq!(created["refund"]["status"], "no");
        assert!(created["refund"]["msg"].as_str().is_some(), "{created}");
        let id = created["return"].as_i64().unwrap();
        let listed = returns_of(&app, &shipment);
        assert_eq!(listed[0]["refundState"], "declined");
        // Retried while the provider still declines: status no, with the return.
        let declined = no(
            &app.put(&format!("/returns/{id}"), &json!({"refundPayment": true})),
            200,
        );
        assert_eq!(declined["return"]["returnId"], json!(id));
        assert_eq!(declined["return"]["refundState"], "declined");
        assert_eq!(app.sandbox.refunded_minor(), 0, "{backend:?}");
        // The declined amount was released: the rest of the shipment can still be refunded.
        let rest = ok(&app.post(
            "/return",
            &json!({"shipment": shipment, "refund": {"refundPayment": true}}),
        ));
        assert_eq!(rest["refund"]["status"], "no");
        assert_eq!(rest["refundValue"].to_string(), "448.50");
        // A provider that declines once: the retry with PUT returns/<id> refunds it.
        let (shipment, tshirt, _) = shipped(&app, 7006, "refundlater-7006");
        let created = ok(&app.post(
            "/return",
            &json!({"shipment": shipment, "products": {tshirt.clone(): 2}, "refund": {"refundPayment": true}}),
        ));
        assert_eq!(created["refund"]["status"], "no", "{created}");
        let id = created["return"].as_i64().unwrap();
        let retried = ok(&app.put(
            &format!("/returns/{id}"),
            &json!({"refundPayment": true, "sendEmail": false}),
        ));
        assert_eq!(retried["return"]["refundState"], "refunded");
        assert_eq!(retried["return"]["completed"], json!(true));
        assert_eq!(app.sandbox.refunded_minor(), 49_900, "{backend:?}");
    }
}

#[test]
fn a_refund_whose_outcome_is_unknown_is_settled_by_recovery_once() {
    for backend in backends() {
        let app = spawn_app(backend);
        // "timeout" references: the first call of each attempt times out (the capture's too,
        // which recovery settles first).
        let ids = app.import(&example_order(7005, "timeout-7005"));
        let tshirt = ids[0].clone();
        let reply = app.post(
            "/shipments",
            &json!({"order": 7005, "products": {tshirt.clone(): 2}}),
        );
        no(&reply, 503);
        let shipment = "7005-1".to_owned();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while ok(&app.get(&format!("/shipments/{shipment}")))["shipments"][0]["captureState"]
            != "captured"
        {
            assert!(
                std::time::Instant::now() < deadline,
                "{backend:?}: capture not recovered"
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        let reply = app.post(
            "/return",
            &json!({"shipment": shipment, "products": {tshirt.clone(): 1}, "refund": {"refundPayment": true}}),
        );
        let unknown = no(&reply, 503);
        assert!(reply.retry_after.is_some());
        let id = unknown["return"].as_i64().unwrap();
        assert_eq!(returns_of(&app, &shipment)[0]["refundState"], "pending");
        // While pending, a second refund is refused, not sent, with when to look again.
        let in_flight = app.put(&format!("/returns/{id}"), &json!({"refundPayment": true}));
        no(&in_flight, 409);
        assert!(
            in_flight.retry_after.is_some(),
            "{backend:?}: 409 without Retry-After"
        );
        // Recovery replays the same key: refunded once.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while returns_of(&app, &shipment)[0]["refundState"] != "refunded" {
            assert!(
                std::time::Instant::now() < deadline,
                "{backend:?}: recovery did not settle"
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        assert_eq!(app.sandbox.refunded_minor(), 24_950, "{backend:?}: once");
        // A client that retries with its Idempotency-Key after a 503 continues the same
        // return: the items do not come back twice and the refund is made once.
        let body = json!({"shipment": shipment, "products": {tshirt.clone(): 1},
                          "refund": {"refundPayment": true}})
        .to_string();
        let send_body = |body: &str| {
            app.raw(
                "POST",
                "/return",
                &[
                    ("API-Authorization", TEST_KEY),
                    ("Content-Type", "application/json"),
                    ("Idempotency-Key", "return-7005-second"),
                ],
                Some(body.as_bytes()),
            )
        };
        let send = || send_body(&body);
        let first = no(&send(), 503);
        // The 503 was not stored: the same key on a return from another shipment is not the
        // retry, and is never answered with this return.
        let other = json!({"shipment": "999-1", "products": {tshirt.clone(): 1}}).to_string();
        let reused = no(&send_body(&other), 422);
        assert_eq!(
            reused["msg"], "idempotency key reused with a different request",
            "{backend:?}"
        );
        // Nor is one for more units of the same shipment's line: answered with this return, the
        // client would believe two units returned and refunded where one was.
        let more = json!({"shipment": shipment, "products": {tshirt.clone(): 2},
                          "refund": {"refundPayment": true}})
        .to_string();
        let reused = no(&send_body(&more), 422);
        assert_eq!(
            reused["msg"], "idempotency key reused with a different request",
            "{backend:?}"
        );
        let retried = ok(&send());
        assert_eq!(retried["return"], first["return"], "{backend:?}");
        assert_eq!(retried["refund"]["status"], "ok");
        assert_eq!(
            returns_of(&app, &shipment).len(),
            2,
            "{backend:?}: one return per request"
        );
        assert_eq!(app.sandbox.refunded_minor(), 2 * 24_950, "{backend:?}");
    }
}

/// Credit note numbers in the database, in order.
fn credit_note_numbers(app: &TestApp) -> Vec<i64> {
    app.dump()
        .iter()
        .filter_map(|row| row.strip_prefix("credit_notes ("))
        .map(|rest| rest.split(',').next().unwrap().parse().unwrap())
        .collect()
}

fn minor(amount: &Value) -> i64 {
    let text = amount.to_string();
    let (whole, cents) = text.split_once('.').unwrap_or((&text, "0"));
    whole.parse::<i64>().unwrap() * 100 + format!("{cents:0<2}")[..2].parse::<i64>().unwrap()
}

/// Fifty concurrent returns with refunds of one line shipped ten times (and, on PostgreSQL,
/// through two instances): exactly ten come back, the refunds add up to what the provider
/// refunded and never exceed the capture, and the credit notes are numbered 1..=10.
#[test]
fn fifty_concurrent_returns_of_one_line_never_return_or_refund_more_than_was_shipped() {
    for backend in backends() {
        let db = throwaway(backend);
        let first = std::sync::Arc::new(spawn_app_on(backend, &db.url, &[]));
        let apps = match backend {
            Backend::Postgres => vec![
                first.clone(),
                std::sync::Arc::new(spawn_app_on(backend, &db.url, &[])),
            ],
            Backend::Sqlite => vec![first.clone()],
        };
        let order = json!({"order": 9100, "currency": "SEK", "email": "x@example.com",
            "products": [{"sku": "A", "qty": 10, "price": "10.00", "vat": "25"}],
            "shippingValue": "0", "payment": {"provider": "sandbox", "reference": "auth-9100", "amount": "100.00"}});
        let line = first.import(&order)[0].clone();
        ok(&first.post(
            "/shipments",
            &json!({"order": 9100, "products": {line.clone(): 10}}),
        ));
        let handles: Vec<_> = (0..50usize)
            .map(|i| {
                let app = apps[i % apps.len()].clone();
                let body = json!({"shipment": "9100-1", "products": {line.clone(): 1},
                                  "refund": {"refundPayment": true}});
                std::thread::spawn(move || app.post("/return", &body))
            })
            .collect();
        let mut returned = 0;
        for reply in handles.into_iter().map(|h| h.join().unwrap()) {
            let answer = reply.json();
            assert_eq!(reply.status, 200, "{backend:?}: {}", reply.body);
            if answer["status"] == "ok" {
                assert_eq!(answer["refund"]["status"], "ok", "{answer}");
                returned += 1;
            } else {
                assert!(answer["notReturned"].is_array(), "{answer}");
            }
        }
        assert_eq!(returned, 10, "{backend:?}");
        let order = first.order(9100);
        assert_eq!(order["products"][0]["qtyReturned"], json!(10));
        assert_eq!(minor(&order["refundedValue"]), 10_000);
        let at_providers: i64 = apps.iter().map(|a| a.sandbox.refunded_minor()).sum();
        assert_eq!(
            at_providers, 10_000,
            "{backend:?}: the provider refunded what Consign reports"
        );
        let listed = returns_of(&first, "9100-1");
        assert_eq!(listed.len(), 10);
        assert_eq!(
            listed.iter().map(|r| minor(&r["refundValue"])).sum::<i64>(),
            at_providers
        );
        assert_eq!(
            credit_note_numbers(&first),
            (1..=10).collect::<Vec<_>>(),
            "{backend:?}"
        );
        // The credit note behind one link, read with a PDF parser.
        let url = listed[0]["creditNote"].as_str().unwrap();
        let response = ureq::get(url).call().expect("a signed link needs no key");
        assert_eq!(response.content_type(), "application/pdf");
        let mut pdf = Vec::new();
        std::io::Read::read_to_end(&mut response.into_reader(), &mut pdf).unwrap();
        let document = lopdf::Document::load_mem(&pdf).expect("a valid PDF");
        let pages: Vec<u32> = document.get_pages().keys().copied().collect();
        let text = document.extract_text(&pages).unwrap();
        assert!(
            text.contains("Credit note") && text.contains("CN-"),
            "{text}"
        );
        assert!(text.contains("10.00") && text.contains("9100-1"), "{text}");
        // Another return's token does not open it.
        let other = listed[1]["creditNote"].as_str().unwrap();
        let token = other.split("token=").nth(1).unwrap();
        let forged = format!("{}?token={token}", url.split('?').next().unwrap());
        assert_eq!(
            ureq::get(&forged)
                .call()
                .map_err(|e| match e {
                    ureq::Error::Status(code, _) => code,
                    _ => 0,
                })
                .err(),
            Some(401)
        );
    }
}
