//! Races: many clients competing for the same units never ship more than was ordered, and what
//! the gateway captured equals what the captured shipments say.

use std::sync::Arc;
use std::thread;

use consign_tests::*;
use serde_json::{json, Value};

fn order_with(id: i64, quantities: &[u32]) -> Value {
    let products: Vec<Value> = quantities
        .iter()
        .enumerate()
        .map(|(i, qty)| json!({"sku": format!("SKU-{i}"), "name": "Item", "qty": qty, "price": format!("{}.{:02}", 10 + i * 7, i * 13 % 100), "vat": "25"}))
        .collect();
    json!({"order": id, "currency": "SEK", "email": format!("c{id}@example.com"), "products": products,
           "shippingValue": "19.00", "payment": {"provider": "sandbox", "reference": format!("auth-{id}"), "amount": "100000.00"}})
}

/// An app with eight HTTP workers: PostgreSQL writes run on the worker that took the request,
/// so the workers are how many requests contend in the database at once.
fn racing_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, &[("CONSIGN_WORKERS", "8")])
}

/// Minor units of an exact decimal amount as the API writes it (`298.50` -> 29850).
fn minor(amount: &Value) -> i64 {
    let text = amount.to_string();
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, "00"));
    whole.parse::<i64>().unwrap() * 100 + fraction.parse::<i64>().unwrap()
}

fn check_invariants(app: &TestApp, orders: &[i64]) -> i64 {
    let mut captured_in_shipments = 0;
    for id in orders {
        let order = app.order(*id);
        for line in order["products"].as_array().unwrap() {
            let (qty, allocated) = (
                line["qty"].as_u64().unwrap(),
                line["qtyAllocated"].as_u64().unwrap(),
            );
            assert!(allocated <= qty, "order {id} over-allocated: {line}");
            let in_shipments: u64 = order["shipments"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|s| s["products"].as_array().unwrap().iter())
                .filter(|p| p["lineId"] == line["lineId"])
                .map(|p| p["qty"].as_u64().unwrap())
                .sum();
            assert_eq!(
                in_shipments, allocated,
                "order {id}: listed shipments disagree with the line"
            );
        }
        for shipment in order["shipments"].as_array().unwrap() {
            if shipment["captureState"] == "captured" {
                captured_in_shipments += minor(&shipment["captureValue"]);
            }
        }
        assert_eq!(
            minor(&order["capturedValue"]),
            order["shipments"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|s| s["captureState"] == "captured")
                .map(|s| minor(&s["captureValue"]))
                .sum::<i64>()
        );
    }
    captured_in_shipments
}

#[test]
fn fifty_concurrent_requests_for_one_line_never_ship_more_than_ordered() {
    for backend in backends() {
        let app = Arc::new(racing_app(backend));
        let line = app.import(&order_with(1, &[10]))[0].clone();
        let handles: Vec<_> = (0..50)
            .map(|_| {
                let (app, line) = (app.clone(), line.clone());
                thread::spawn(move || {
                    app.post("/shipments", &json!({"order": 1, "products": {line: 1}}))
                })
            })
            .collect();
        let replies: Vec<Reply> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let ok = replies
            .iter()
            .filter(|r| r.status == 200 && r.json()["status"] == "ok")
            .count();
        for refused in replies.iter().filter(|r| r.json()["status"] != "ok") {
            assert_eq!(refused.status, 200, "{backend:?}: {}", refused.body);
            assert!(
                refused.json()["msg"]
                    .as_str()
                    .unwrap()
                    .contains("can still be shipped"),
                "{}",
                refused.body
            );
        }
        assert_eq!(ok, 10, "{backend:?}: exactly the ordered units ship");
        let mut numbers: Vec<String> = replies
            .iter()
            .filter_map(|r| r.json()["shipment"].as_str().map(str::to_owned))
            .collect();
        numbers.sort();
        numbers.dedup();
        assert_eq!(numbers.len(), 10, "shipment numbers are unique");
        let order = app.order(1);
        assert_eq!(order["products"][0]["qtyAllocated"], json!(10));
        let captured = check_invariants(&app, &[1]);
        assert_eq!(
            captured,
            app.sandbox.captured_minor(),
            "gateway and shipments agree"
        );
        assert_eq!(
            minor(&order["capturedValue"]),
            minor(&order["grandTotalValue"]),
            "fully shipped: captures sum to the total"
        );
    }
}

#[test]
fn two_hundred_requests_across_twenty_orders_keep_every_invariant() {
    for backend in backends() {
        let app = Arc::new(racing_app(backend));
        let orders: Vec<i64> = (100..120).collect();
        let lines: Vec<Vec<String>> = orders
            .iter()
            .map(|id| app.import(&order_with(*id, &[3, 2, 4])))
            .collect();
        let handles: Vec<_> = (0..200usize)
            .map(|i| {
                let app = app.clone();
                let order = orders[i % 20];
                let ids = &lines[i % 20];
                // Mixed partial requests, some over-asking, a quarter with capture off.
                let mut products = serde_json::Map::new();
                products.insert(ids[i % 3].clone(), json!(1 + i % 2));
                if i % 4 == 1 {
                    products.insert(ids[(i + 1) % 3].clone(), json!(1 + i % 3));
                }
                let body = json!({"order": order, "products": products, "capture": i % 4 != 3});
                thread::spawn(move || app.post("/shipments", &body))
            })
            .collect();
        let mut ok = 0;
        for reply in handles.into_iter().map(|h| h.join().unwrap()) {
            assert_eq!(reply.status, 200, "{backend:?}: {}", reply.body);
            let answer = reply.json();
            if answer["status"] == "ok" {
                ok += 1;
            } else {
                assert_eq!(answer["status"], "no");
                assert!(
                    answer["msg"]
                        .as_str()
                        .unwrap()
                        .contains("can still be shipped"),
                    "{}",
                    reply.body
                );
            }
        }
        assert!(ok >= 20, "{backend:?}: some requests must succeed ({ok})");
        let captured = check_invariants(&app, &orders);
        assert_eq!(
            captured,
            app.sandbox.captured_minor(),
            "{backend:?}: gateway and shipments agree"
        );
    }
}
