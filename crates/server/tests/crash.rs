//! kill -9 under load at each fault point of the capture saga, restart, let recovery run, then
//! compare the database (through the API) with the provider stand-in's ledger.
//!
//! The `consign` binary is the real one, built with fault points (a test-only feature): the
//! point under test pauses every request that reaches it without blocking its worker thread,
//! and records each arrival, so the test kills the process only once every request in flight
//! is parked exactly there (and checks that they all were).

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use consign_db::testing::{postgres_required, Throwaway};
use consign_provider_stand_in::smtp::SmtpSink;
use consign_provider_stand_in::StandIn;
use serde_json::{json, Value};
use support::{call, call_keyed, start, start_with, Server};

const FAULT_POINTS: [&str; 3] = ["after-reserve", "after-capture", "after-settle"];

/// A throwaway SQLite file, and a throwaway PostgreSQL database when the server is reachable
/// (required with `CI=true`).
fn databases() -> Vec<(&'static str, Throwaway)> {
    let mut databases = vec![("sqlite", Throwaway::sqlite())];
    match Throwaway::postgres() {
        Ok(pg) => databases.push(("postgres", pg)),
        Err(why) if postgres_required() => panic!("CI=true but PostgreSQL is unreachable: {why}"),
        Err(why) => eprintln!("SKIPPED on PostgreSQL (unreachable: {why})"),
    }
    databases
}

fn minor(amount: &Value) -> i64 {
    let text = amount.to_string();
    let (whole, cents) = text.split_once('.').unwrap_or((&text, "0"));
    whole.parse::<i64>().unwrap() * 100 + cents.parse::<i64>().unwrap()
}

/// What one kill-and-recover cycle found.
#[derive(Debug, Default)]
struct Findings {
    requests: usize,
    parked_at_the_point: usize,
    killed_in_flight: usize,
    captures_at_provider: usize,
    captured_shipments: usize,
    double_captures: usize,
    orphan_captures: usize,
    captured_without_provider: usize,
    amount_mismatches: usize,
    pending_left: usize,
    over_allocated: usize,
}

/// A server whose requests pause at one fault point, each arrival recorded in a file, so the
/// test kills it only once every request in flight is parked exactly there.
struct Parked {
    server: Server,
    point: String,
    arrivals: std::path::PathBuf,
    log: std::path::PathBuf,
}

impl Parked {
    fn start(db_url: &str, stand_in: &StandIn, point: &str, tag: &str) -> Parked {
        let arrivals = std::env::temp_dir().join(format!(
            "consign-crash-{tag}-{}-{point}",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&arrivals);
        let log = arrivals.with_extension("log");
        let (arrivals_path, log_path) = (arrivals.display().to_string(), log.display().to_string());
        let server = start_with(
            db_url,
            stand_in,
            None,
            &[
                ("CONSIGN_FAILPOINT_PAUSE", point),
                ("CONSIGN_FAILPOINT_ARRIVALS", arrivals_path.as_str()),
                // The pause does not block a worker; more workers than requests make sure of it.
                ("CONSIGN_WORKERS", "8"),
                ("RUST_LOG", "info"),
                ("STDERR_TO", log_path.as_str()),
            ],
        );
        Parked {
            server,
            point: point.to_owned(),
            arrivals,
            log,
        }
    }

    fn parked(&self) -> usize {
        std::fs::read_to_string(&self.arrivals)
            .map(|text| text.lines().filter(|l| *l == self.point).count())
            .unwrap_or(0)
    }

    /// Waits until `expected` requests are parked (or 30 s, and then says why), kills the
    /// server with SIGKILL, and answers how many were parked.
    fn kill_when_parked(self, expected: usize) -> usize {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.parked() < expected && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(50));
        }
        let parked = self.parked();
        if parked < expected {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            eprintln!(
                "{}: {parked} of {expected} parked; the server's last lines:",
                self.point
            );
            for line in &lines[lines.len().saturating_sub(60)..] {
                eprintln!("  {line}");
            }
        }
        let Server { mut child, .. } = self.server;
        child.kill().expect("SIGKILL");
        child.wait().unwrap();
        let _ = std::fs::remove_file(&self.arrivals);
        let _ = std::fs::remove_file(&self.log);
        parked
    }
}

fn cycle(db_url: &str, point: &str, orders: std::ops::Range<i64>) -> Findings {
    let stand_in = StandIn::start_in_background();
    let parking = Parked::start(
        db_url,
        &stand_in,
        point,
        &format!("shipments-{}", orders.start),
    );
    let server = &parking.server;
    let mut lines = HashMap::new();
    for id in orders.clone() {
        stand_in.authorize(&format!("pi_{id}"), 5_900, "EUR", true);
        let order = json!({"order": id, "currency": "EUR", "email": format!("c{id}@example.com"),
            "products": [{"sku": "A", "qty": 2, "price": "20.00", "vat": "25"}, {"sku": "B", "qty": 1, "price": "15.00", "vat": "25"}],
            "shippingValue": "4.00", "payment": {"provider": "stripe", "reference": format!("pi_{id}"), "amount": "59.00"}});
        let answer = call(&server.base, "POST", "/order", Some(&order)).unwrap();
        lines.insert(
            id,
            answer["products"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["lineId"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>(),
        );
    }
    let lines = Arc::new(lines);
    // Load: two partial shipments per order at once, all parked at the fault point.
    let base = server.base.clone();
    let clients: Vec<_> = orders
        .clone()
        .flat_map(|id| [(id, 0usize), (id, 1usize)])
        .map(|(id, which)| {
            let (base, lines) = (base.clone(), lines.clone());
            thread::spawn(move || {
                let line = &lines[&id][which];
                call(
                    &base,
                    "POST",
                    "/shipments",
                    Some(&json!({"order": id, "products": {line.clone(): 1}})),
                )
            })
        })
        .collect();
    // Kill only once every request is parked at the point (or after 30 s, and then say so).
    let expected = clients.len();
    let parked_at_the_point = parking.kill_when_parked(expected);
    let outcomes: Vec<_> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    let mut findings = Findings {
        requests: outcomes.len(),
        parked_at_the_point,
        killed_in_flight: outcomes.iter().filter(|o| o.is_err()).count(),
        ..Findings::default()
    };
    // Restart without fault points; recovery settles what the crash left.
    let server = start(db_url, &stand_in, None);
    let deadline = Instant::now() + Duration::from_secs(30);
    let listed = loop {
        let mut all = Vec::new();
        for id in orders.clone() {
            all.push(
                call(&server.base, "GET", &format!("/orders?order={id}"), None).unwrap()["orders"]
                    [0]
                .clone(),
            );
        }
        let open = all
            .iter()
            .flat_map(|o| o["shipments"].as_array().unwrap().iter())
            .filter(|s| s["captureState"] != "captured" && s["captureState"] != "uncaptured")
            .count();
        if open == 0 || Instant::now() > deadline {
            findings.pending_left = open;
            break all;
        }
        thread::sleep(Duration::from_millis(250));
    };
    let Server { mut child, .. } = server;
    child.kill().ok();
    child.wait().ok();

    let ledger = stand_in.ledger();
    findings.captures_at_provider = ledger.len();
    // Provider keys are "consign-<installation>-<order>-<n>-<attempt>": the shipment is in the key.
    let shipment_of = |key: &str| {
        let parts: Vec<&str> = key.rsplitn(4, '-').collect();
        format!("{}-{}", parts[2], parts[1])
    };
    let mut at_provider: HashMap<String, Vec<i64>> = HashMap::new();
    for capture in &ledger {
        at_provider
            .entry(shipment_of(&capture.idempotency_key))
            .or_default()
            .push(capture.amount);
    }
    let mut captured: HashMap<String, i64> = HashMap::new();
    for order in &listed {
        for line in order["products"].as_array().unwrap() {
            if line["qtyAllocated"].as_u64() > line["qty"].as_u64() {
                findings.over_allocated += 1;
            }
        }
        for s in order["shipments"].as_array().unwrap() {
            if s["captureState"] == "captured" {
                captured.insert(
                    s["shipmentId"].as_str().unwrap().to_owned(),
                    minor(&s["captureValue"]),
                );
            }
        }
    }
    findings.captured_shipments = captured.len();
    for (shipment, amounts) in &at_provider {
        findings.double_captures += amounts.len().saturating_sub(1);
        match captured.get(shipment) {
            None => findings.orphan_captures += 1,
            Some(value) if *value != amounts.iter().sum::<i64>() => findings.amount_mismatches += 1,
            Some(_) => {}
        }
    }
    findings.captured_without_provider = captured
        .keys()
        .filter(|s| !at_provider.contains_key(*s))
        .count();
    findings
}

fn check(label: &str, findings: &Findings) {
    eprintln!("{label}: {findings:?}");
    assert_eq!(
        findings.parked_at_the_point, findings.requests,
        "{label}: every request reached the fault point before the kill"
    );
    assert_eq!(
        findings.killed_in_flight, findings.requests,
        "{label}: every request was still parked there when killed"
    );
    assert!(
        findings.captured_shipments > 0,
        "{label}: recovery captured nothing"
    );
    assert_eq!(findings.double_captures, 0, "{label}");
    assert_eq!(findings.orphan_captures, 0, "{label}");
    assert_eq!(findings.captured_without_provider, 0, "{label}");
    assert_eq!(findings.amount_mismatches, 0, "{label}");
    assert_eq!(findings.pending_left, 0, "{label}");
    assert_eq!(findings.over_allocated, 0, "{label}");
}

#[test]
fn sigkill_at_each_fault_point_then_recovery_leaves_no_double_orphan_or_missing_capture() {
    for (backend, db) in &databases() {
        for (i, point) in FAULT_POINTS.iter().enumerate() {
            let first = 100 * (i as i64 + 1);
            let findings = cycle(&db.url, point, first..first + 4);
            check(&format!("{backend} {point}"), &findings);
        }
    }
}

#[test]
fn a_crash_between_commit_and_send_still_sends_the_confirmation_exactly_once() {
    let db = Throwaway::sqlite();
    let sink = SmtpSink::start();
    let stand_in = StandIn::start_in_background();
    let arrivals =
        std::env::temp_dir().join(format!("consign-crash-outbox-{}", std::process::id()));
    let _ = std::fs::remove_file(&arrivals);
    let mail = [
        ("CONSIGN_SMTP_URL", sink.url()),
        ("CONSIGN_OUTBOX_INTERVAL", "100ms".to_owned()),
        ("CONSIGN_OUTBOX_LEASE", "2s".to_owned()),
    ];
    let mail: Vec<(&str, &str)> = mail.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let arrivals_path = arrivals.display().to_string();
    let mut parking = mail.clone();
    parking.push(("CONSIGN_FAILPOINT_ARRIVALS", arrivals_path.as_str()));
    let server = start_with(&db.url, &stand_in, Some("outbox-before-send"), &parking);
    stand_in.authorize("pi_900", 5_900, "EUR", true);
    let order = json!({"order": 900, "currency": "EUR", "email": "c900@example.com",
        "products": [{"sku": "A", "qty": 2, "price": "20.00", "vat": "25"}],
        "shippingValue": "4.00", "payment": {"provider": "stripe", "reference": "pi_900", "amount": "44.00"}});
    let line = call(&server.base, "POST", "/order", Some(&order)).unwrap()["products"][0]["lineId"]
        .clone();
    let created = call(&server.base, "POST", "/shipments", Some(&json!({"order": 900, "products": {line.as_str().unwrap(): 1}, "shipped": true, "tracking": "T900"}))).unwrap();
    assert_eq!(created["status"], "ok", "{created}");
    // The outbox row is committed with the shipment; the sender claims it and stops before
    // sending (the arrival is recorded, then the fault point holds it).
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&arrivals).is_ok_and(|t| t.contains("outbox-before-send")) {
        assert!(
            Instant::now() < deadline,
            "the sender never reached the send"
        );
        thread::sleep(Duration::from_millis(50));
    }
    let _ = std::fs::remove_file(&arrivals);
    assert_eq!(sink.messages().len(), 0);
    let Server { mut child, .. } = server;
    child.kill().expect("SIGKILL");
    child.wait().unwrap();
    let server = start_with(&db.url, &stand_in, None, &mail);
    let deadline = Instant::now() + Duration::from_secs(30);
    // The dead sender's lease (2 s here) runs out, then the restarted sender takes the message.
    while sink.messages().is_empty() {
        assert!(Instant::now() < deadline, "the confirmation was never sent");
        thread::sleep(Duration::from_millis(200));
    }
    // Longer than the lease and a few passes: a message sent but not marked would go again.
    thread::sleep(Duration::from_millis(3000));
    assert_eq!(sink.messages().len(), 1, "sent exactly once");
    assert!(sink.messages()[0].contains("T900"));
    let Server { mut child, .. } = server;
    child.kill().ok();
    child.wait().ok();
}

const REFUND_FAULT_POINTS: [&str; 3] = [
    "after-refund-reserve",
    "after-refund",
    "after-refund-settle",
];

/// What one kill-and-recover cycle of refunds found.
#[derive(Debug, Default)]
struct RefundFindings {
    requests: usize,
    parked_at_the_point: usize,
    killed_in_flight: usize,
    refunds_at_provider: usize,
    refunded_returns: usize,
    double_refunds: usize,
    refunds_without_return: usize,
    refunded_without_provider: usize,
    amount_mismatches: usize,
    pending_left: usize,
    refunded_above_captured: usize,
}

/// Ships and captures every order, then returns two lines of each with a refund at once, all
/// parked at `point`; kills, restarts, and compares Consign's returns with the refund ledger.
fn refund_cycle(db_url: &str, point: &str, orders: std::ops::Range<i64>) -> RefundFindings {
    let stand_in = StandIn::start_in_background();
    let parking = Parked::start(
        db_url,
        &stand_in,
        point,
        &format!("refunds-{}", orders.start),
    );
    let server = &parking.server;
    let mut lines = HashMap::new();
    for id in orders.clone() {
        stand_in.authorize(&format!("pi_{id}"), 5_900, "EUR", true);
        let order = json!({"order": id, "currency": "EUR", "email": format!("c{id}@example.com"),
            "products": [{"sku": "A", "qty": 2, "price": "20.00", "vat": "25"}, {"sku": "B", "qty": 1, "price": "15.00", "vat": "25"}],
            "shippingValue": "4.00", "payment": {"provider": "stripe", "reference": format!("pi_{id}"), "amount": "59.00"}});
        let answer = call(&server.base, "POST", "/order", Some(&order)).unwrap();
        let ids: Vec<String> = answer["products"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["lineId"].as_str().unwrap().to_owned())
            .collect();
        let shipped = call(
            &server.base,
            "POST",
            "/shipments",
            Some(&json!({"order": id, "products": {ids[0].clone(): 2, ids[1].clone(): 1}})),
        )
        .unwrap();
        assert_eq!(shipped["status"], "ok", "{shipped}");
        lines.insert(id, ids);
    }
    let lines = Arc::new(lines);
    let base = server.base.clone();
    let clients: Vec<_> = orders
        .clone()
        .flat_map(|id| [(id, 0usize), (id, 1usize)])
        .map(|(id, which)| {
            let (base, lines) = (base.clone(), lines.clone());
            thread::spawn(move || {
                let line = &lines[&id][which];
                call(
                    &base,
                    "POST",
                    "/return",
                    Some(
                        &json!({"shipment": format!("{id}-1"), "products": {line.clone(): 1},
                                 "refund": {"refundPayment": true}}),
                    ),
                )
            })
        })
        .collect();
    let expected = clients.len();
    let parked_at_the_point = parking.kill_when_parked(expected);
    let outcomes: Vec<_> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    let mut findings = RefundFindings {
        requests: outcomes.len(),
        parked_at_the_point,
        killed_in_flight: outcomes.iter().filter(|o| o.is_err()).count(),
        ..RefundFindings::default()
    };
    let server = start(db_url, &stand_in, None);
    let deadline = Instant::now() + Duration::from_secs(30);
    let returns = loop {
        let mut all = Vec::new();
        for id in orders.clone() {
            let answer = call(&server.base, "GET", &format!("/returns?order={id}"), None).unwrap();
            all.extend(answer["returns"].as_array().unwrap().iter().cloned());
        }
        let open = all
            .iter()
            .filter(|r| r["refundState"] == "pending" || r["refundState"] == "needsReview")
            .count();
        if open == 0 || Instant::now() > deadline {
            findings.pending_left = open;
            break all;
        }
        thread::sleep(Duration::from_millis(250));
    };
    for id in orders.clone() {
        let order = call(&server.base, "GET", &format!("/orders?order={id}"), None).unwrap()
            ["orders"][0]
            .clone();
        if minor(&order["refundedValue"]) > minor(&order["capturedValue"]) {
            findings.refunded_above_captured += 1;
        }
    }
    let Server { mut child, .. } = server;
    child.kill().ok();
    child.wait().ok();

    let mut at_provider: HashMap<String, Vec<i64>> = HashMap::new();
    let ledger = stand_in.refund_ledger();
    findings.refunds_at_provider = ledger.len();
    for refund in &ledger {
        let return_id = refund
            .metadata
            .iter()
            .find(|(k, _)| k == "consign_return")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        at_provider
            .entry(return_id)
            .or_default()
            .push(refund.amount);
    }
    let refunded: HashMap<String, i64> = returns
        .iter()
        .filter(|r| r["refundState"] == "refunded")
        .map(|r| (r["returnId"].to_string(), minor(&r["refundValue"])))
        .collect();
    findings.refunded_returns = refunded.len();
    for (ret, amounts) in &at_provider {
        findings.double_refunds += amounts.len().saturating_sub(1);
        match refunded.get(ret) {
            None => findings.refunds_without_return += 1,
            Some(value) if *value != amounts.iter().sum::<i64>() => findings.amount_mismatches += 1,
            Some(_) => {}
        }
    }
    findings.refunded_without_provider = refunded
        .keys()
        .filter(|r| !at_provider.contains_key(*r))
        .count();
    findings
}

#[test]
fn sigkill_at_each_refund_fault_point_then_recovery_leaves_no_double_orphan_or_missing_refund() {
    for (backend, db) in &databases() {
        for (i, point) in REFUND_FAULT_POINTS.iter().enumerate() {
            let first = 1000 + 100 * (i as i64 + 1);
            let f = refund_cycle(&db.url, point, first..first + 4);
            let label = format!("{backend} {point}");
            eprintln!("{label}: {f:?}");
            assert_eq!(f.parked_at_the_point, f.requests, "{label}: all parked");
            assert_eq!(f.killed_in_flight, f.requests, "{label}: all in flight");
            assert_eq!(
                f.refunded_returns, f.requests,
                "{label}: every return refunded"
            );
            assert_eq!(
                f.refunds_at_provider, f.requests,
                "{label}: one refund each"
            );
            assert_eq!(f.double_refunds, 0, "{label}");
            assert_eq!(f.refunds_without_return, 0, "{label}");
            assert_eq!(f.refunded_without_provider, 0, "{label}");
            assert_eq!(f.amount_mismatches, 0, "{label}");
            assert_eq!(f.pending_left, 0, "{label}");
            assert_eq!(f.refunded_above_captured, 0, "{label}");
        }
    }
}

/// A delete killed after its commit, before its answer was stored: the retry with the same
/// idempotency key takes the key over and is answered as the delete would have been ("shipment
/// removed"), where it used to be told the shipment does not exist. Another key is still told
/// so, and the units stay released.
#[test]
fn a_delete_killed_after_its_commit_is_answered_removed_when_retried_with_its_key() {
    for (backend, db) in &databases() {
        let stand_in = StandIn::start_in_background();
        let parking = Parked::start(&db.url, &stand_in, "after-delete", "delete");
        let base = parking.server.base.clone();
        stand_in.authorize("pi_700", 5_900, "EUR", true);
        let order = json!({"order": 700, "currency": "EUR", "email": "c700@example.com",
            "products": [{"sku": "A", "qty": 2, "price": "20.00", "vat": "25"}],
            "shippingValue": "19.00", "payment": {"provider": "stripe", "reference": "pi_700", "amount": "59.00"}});
        let line = call(&base, "POST", "/order", Some(&order)).unwrap()["products"][0]["lineId"]
            .as_str()
            .unwrap()
            .to_owned();
        let ship = json!({"order": 700, "products": {line.as_str(): 2}, "capture": false});
        let created = call(&base, "POST", "/shipments", Some(&ship)).unwrap();
        let shipment = created["shipment"].as_str().unwrap().to_owned();
        let path = format!("/shipments/{shipment}");
        let deleting = {
            let (base, path) = (base.clone(), path.clone());
            thread::spawn(move || call_keyed(&base, "DELETE", &path, None, Some("delete-700")))
        };
        let parked = parking.kill_when_parked(1);
        assert_eq!(parked, 1, "{backend}: the delete reached its fault point");
        assert!(
            deleting.join().unwrap().is_err(),
            "{backend}: killed in flight"
        );

        let server = start_with(
            &db.url,
            &stand_in,
            None,
            &[("CONSIGN_IDEMPOTENCY_TAKEOVER", "1s")],
        );
        thread::sleep(Duration::from_millis(1_200));
        let retried = call_keyed(&server.base, "DELETE", &path, None, Some("delete-700")).unwrap();
        assert_eq!(
            (&retried["status"], &retried["msg"], &retried["shipment"]),
            (&json!("ok"), &json!("shipment removed"), &json!(shipment)),
            "{backend}: {retried}"
        );
        let other = call_keyed(&server.base, "DELETE", &path, None, Some("delete-700-b")).unwrap();
        assert_eq!(
            other["msg"], "shipment does not exist",
            "{backend}: {other}"
        );
        let again = call(&server.base, "POST", "/shipments", Some(&ship)).unwrap();
        assert_eq!(
            again["status"], "ok",
            "{backend}: the units were released: {again}"
        );
        let Server { mut child, .. } = server;
        child.kill().ok();
        child.wait().ok();
    }
}
