//! `GET shipments` holds each order of a page once, however many of the page's shipments it
//! holds: a page of 100 shipments of one order of 1,000 long lines used to read that order
//! 100 times over (a row per shipment and order line), some hundred megabytes for one request.

use consign_tests::*;
use serde_json::{json, Value};

/// The process's peak resident memory (`VmHWM`), in KiB.
fn peak_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .expect("/proc/self/status")
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

/// Starts the peak over from what is resident now (Linux: `5` to `clear_refs`).
fn reset_peak() {
    std::fs::write("/proc/self/clear_refs", "5").expect("reset the peak");
}

#[test]
fn a_page_of_one_large_orders_shipments_holds_the_order_once() {
    for backend in backends() {
        let app = spawn_app(backend);
        // 1,000 lines, each with the longest name and a long sku.
        let products: Vec<Value> = (0..1000)
            .map(|i| {
                json!({"sku": format!("SKU-{i:04}-{}", "S".repeat(50)), "name": format!("{i:04} {}", "N".repeat(250)),
                       "qty": 1, "price": "1.00", "vat": "25"})
            })
            .collect();
        let order = json!({"order": 9300, "currency": "SEK", "email": "big@example.com",
            "firstName": "F".repeat(255), "lastName": "L".repeat(255),
            "address": {"address": "A".repeat(255), "zipcode": "11122", "city": "C".repeat(255), "country": "SE"},
            "products": products, "shippingValue": "0",
            "payment": {"provider": "sandbox", "reference": "auth-9300", "amount": "1000.00"}});
        let lines = app.import(&order);
        assert_eq!(lines.len(), 1000);
        for line in lines.iter().take(100) {
            let reply = app.post(
                "/shipments",
                &json!({"order": 9300, "products": {line.clone(): 1}, "capture": false}),
            );
            assert_eq!(reply.status, 200, "{}", reply.body);
        }
        reset_peak();
        let before = peak_kib();
        let page = app.get("/shipments?status=inprogress&order=9300&limit=100");
        let grown_mib = peak_kib().saturating_sub(before) / 1024;
        eprintln!("{backend:?}: the page's peak grew {grown_mib} MiB");
        assert_eq!(page.status, 200, "{}", page.body);
        let shipments = page.json()["shipments"].as_array().map(Vec::len);
        assert_eq!(shipments, Some(100), "{backend:?}");
        assert!(
            grown_mib < 16,
            "{backend:?}: one page took {grown_mib} MiB more at its peak"
        );
    }
}
