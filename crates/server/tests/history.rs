//! A history check in the style of Jepsen's bank test: concurrent clients run random mixes of
//! create (capture on and off), update, delete, complete, capture, and returns with refunds
//! (retried with `PUT returns/<id>` after a decline) against the real server,
//! with the provider stand-in injecting faults, while a controller SIGKILLs and restarts the
//! server (on PostgreSQL two instances, at different moments). Clients retry with their
//! Idempotency-Key after connection errors, 409 and 503, as a real client would. After recovery
//! the API's view is compared with the stand-in's ledger, and every failure count must be 0.
//!
//! Bounded: `CONSIGN_HISTORY_KILLS` kills per backend (default 10), loopback only. The long soak
//! is the same test with more kills (docs/reliability.md).

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use consign_db::testing::{postgres_required, Throwaway};
use consign_provider_stand_in::{Fault, StandIn};
use serde_json::{json, Value};
use support::{agent, free_port, start_at, Server, KEY};

const ORDERS: i64 = 24;

#[derive(Debug, Default)]
struct Figures {
    requests: u64,
    faults_injected: u64,
    restarts: u64,
    units_over_allocated: u64,
    double_captures: u64,
    orphan_captures: u64,
    captured_without_provider: u64,
    pending_left: u64,
    replays_that_differed: u64,
    replays_checked: u64,
    captured_shipments: u64,
    /// Shipments a client was told were created (and not told were deleted).
    acknowledged_shipments: u64,
    /// Of those, not listed after the kills: an acknowledged write that did not survive.
    acknowledged_missing: u64,
    /// Shipments a client was told were deleted that are still listed.
    deleted_but_listed: u64,
    /// Deletes answered "shipment does not exist" after an earlier attempt with the same key
    /// lost its connection: that attempt may have deleted it (killed after the commit, before its
    /// answer was stored), so the client cannot know, and neither can the check.
    deletes_outcome_unknown: u64,
    refunds_at_provider: u64,
    refunded_returns: u64,
    /// More than one refund at the provider for one return.
    double_refunds: u64,
    /// A refund at the provider whose return Consign does not report refunded by that amount.
    refunds_without_return: u64,
    /// A return reported refunded that the provider never refunded.
    refunded_without_provider: u64,
    /// Returns whose refund is still pending after recovery.
    refunds_pending_left: u64,
    /// Orders that report more refunded than captured, or more returned than captured.
    refunded_above_captured: u64,
    returned_above_captured: u64,
    /// Returns a client was told were created that are not listed.
    acknowledged_returns_missing: u64,
}

struct Cluster {
    db_url: String,
    stand_in: StandIn,
    ports: Vec<u16>,
    servers: Mutex<Vec<Option<Server>>>,
}

const SETTINGS: &[(&str, &str)] = &[
    ("CONSIGN_STRIPE_TIMEOUT", "1s"),
    ("CONSIGN_RATE_LIMIT", "0"),
    ("CONSIGN_IDEMPOTENCY_TAKEOVER", "2s"),
    ("CONSIGN_RECOVERY_AFTER", "1s"),
];

impl Cluster {
    fn start(&self, i: usize) {
        // Each start's warnings go to a file (kept from the last start), read if the check fails.
        let log = self.log(i);
        let mut settings = SETTINGS.to_vec();
        settings.extend([("RUST_LOG", "warn"), ("STDERR_TO", log.as_str())]);
        let server = start_at(self.ports[i], &self.db_url, &self.stand_in, None, &settings);
        self.servers.lock().unwrap()[i] = Some(server);
    }

    fn kill(&self, i: usize) {
        if let Some(Server { mut child, .. }) = self.servers.lock().unwrap()[i].take() {
            child.kill().ok();
            child.wait().ok();
        }
    }

    fn log(&self, i: usize) -> String {
        std::env::temp_dir()
            .join(format!(
                "consign-history-{}-{}-{i}.log",
                std::process::id(),
                self.ports[i]
            ))
            .display()
            .to_string()
    }

    fn base(&self, i: usize) -> String {
        format!(
            "http://127.0.0.1:{}/api/order",
            self.ports[i % self.ports.len()]
        )
    }
}

/// One call: (status, body, replayed?) or a transport error.
fn send(
    base: &str,
    method: &str,
    path: &str,
    key: &str,
    body: &Value,
) -> Result<(u16, String, bool), String> {
    let request = agent()
        .request(method, &format!("{base}{path}"))
        .set("API-Authorization", KEY)
        .set("Content-Type", "application/json")
        .set("Idempotency-Key", key);
    let result = if method == "DELETE" {
        request.call()
    } else {
        request.send_string(&body.to_string())
    };
    match result {
        Ok(r) | Err(ureq::Error::Status(_, r)) => {
            let replayed = r.header("Idempotent-Replayed") == Some("true");
            Ok((r.status(), r.into_string().unwrap_or_default(), replayed))
        }
        Err(ureq::Error::Transport(t)) => Err(t.to_string()),
    }
}

/// A client's view: the final answer for each key it used, and the shipments it created.
#[derive(Default)]
struct Client {
    /// key -> (method, path, body, first final answer)
    answers: HashMap<String, (String, String, Value, String)>,
    /// (key, first final answer, answer when sent again)
    replays: Vec<(String, String, String)>,
    /// Shipments answered `ok` on create.
    shipments: Vec<String>,
    /// Shipments answered `ok` on delete.
    deleted: Vec<String>,
    /// Shipments whose delete was answered "does not exist" after a lost connection.
    maybe_deleted: Vec<String>,
    /// Returns answered `ok` on create.
    returns: Vec<i64>,
}

fn run_client(
    cluster: Arc<Cluster>,
    id: usize,
    lines: Arc<HashMap<i64, [String; 2]>>,
    stop: Arc<AtomicBool>,
    requests: Arc<AtomicU64>,
) -> Client {
    let mut client = Client::default();
    let mut seed = 0x2545_f491_4f6c_dd1d_u64 ^ (id as u64 + 1).wrapping_mul(0x9e37_79b9);
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut op = 0;
    while !stop.load(Ordering::Relaxed) {
        op += 1;
        let key = format!("c{id}-op{op}");
        let r = rand();
        let order = 1 + (r % ORDERS as u64) as i64;
        let shipment = (!client.shipments.is_empty())
            .then(|| client.shipments[(r >> 20) as usize % client.shipments.len()].clone());
        let (method, path, body) = match ((r >> 8) % 12, shipment) {
            (0..=3, _) | (_, None) => {
                let line = lines[&order][((r >> 12) % 2) as usize].clone();
                (
                    "POST",
                    "/shipments".to_owned(),
                    json!({"order": order, "products": {line: 1 + (r >> 16) % 2}, "capture": (r >> 24) % 3 != 0}),
                )
            }
            (4 | 5, Some(s)) => (
                "PUT",
                "/shipment".to_owned(),
                json!({"shipment": s, "tracking": format!("T{op}")}),
            ),
            (6, Some(s)) => ("PUT", "/capture".to_owned(), json!({"shipment": s})),
            (7, Some(s)) => ("PUT", format!("/shipments/{s}"), json!({"gtg": true})),
            (8, Some(s)) => ("DELETE", format!("/shipments/{s}"), json!(null)),
            (9, Some(s)) => {
                let order: i64 = s.split('-').next().unwrap().parse().unwrap();
                let line = lines[&order][((r >> 12) % 2) as usize].clone();
                (
                    "POST",
                    "/return".to_owned(),
                    json!({"shipment": s, "products": {line: 1}, "refund": {"refundPayment": (r >> 24) % 4 != 0}}),
                )
            }
            (10, _) if !client.returns.is_empty() => {
                let id = client.returns[(r >> 20) as usize % client.returns.len()];
                (
                    "PUT",
                    format!("/returns/{id}"),
                    json!({"refundPayment": true}),
                )
            }
            (_, Some(_)) => {
                // Send an earlier request again with its key: a client that did not see the answer.
                let index = (r >> 28) as usize % client.answers.len().max(1);
                if let Some((k, (m, p, b, first))) = client.answers.iter().nth(index) {
                    let (k, m, p, b, first) =
                        (k.clone(), m.clone(), p.clone(), b.clone(), first.clone());
                    if let Some((_, again, _)) =
                        call_until_final(&cluster, id, &m, &p, &k, &b, &stop, &requests)
                    {
                        client.replays.push((k, first, again));
                    }
                }
                continue;
            }
        };
        if let Some((_, text, lost_connection)) =
            call_until_final(&cluster, id, method, &path, &key, &body, &stop, &requests)
        {
            let answer = serde_json::from_str::<Value>(&text).unwrap_or(Value::Null);
            // Centra answers "does not exist" with 200 (a refusal, not a malformed request): the
            // message, not the status, says the shipment was gone when this attempt arrived.
            let gone = answer["status"] == "no" && answer["msg"] == "shipment does not exist";
            if method == "DELETE" && gone && lost_connection {
                let shipment = path.trim_start_matches("/shipments/").to_owned();
                client.maybe_deleted.push(shipment);
            } else if answer["status"] == "ok" && path == "/return" {
                if let Some(id) = answer["return"].as_i64() {
                    client.returns.push(id);
                }
            } else if answer["status"] == "ok" {
                if let Some(s) = answer["shipment"].as_str().map(str::to_owned) {
                    match method {
                        "POST" => client.shipments.push(s),
                        "DELETE" => client.deleted.push(s),
                        _ => {}
                    }
                }
            }
            client
                .answers
                .insert(key, (method.to_owned(), path, body, text));
        }
    }
    client
}

/// Sends until a final answer (200 or 400), retrying with the same key after connection
/// errors, 409 and 503, against whichever instance answers. Also says whether an attempt lost
/// its connection (the server may have been killed after doing the work).
#[allow(clippy::too_many_arguments)]
fn call_until_final(
    cluster: &Cluster,
    id: usize,
    method: &str,
    path: &str,
    key: &str,
    body: &Value,
    stop: &AtomicBool,
    requests: &AtomicU64,
) -> Option<(u16, String, bool)> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut instance = id;
    let mut lost_connection = false;
    loop {
        requests.fetch_add(1, Ordering::Relaxed);
        match send(&cluster.base(instance), method, path, key, body) {
            Ok((status, text, _)) if status == 200 || status == 400 => {
                return Some((status, text, lost_connection))
            }
            Ok((status, text, _)) if ![409, 503, 429].contains(&status) => {
                panic!("{method} {path}: unexpected {status} {text}")
            }
            Ok(_) => {}
            Err(_) => lost_connection = true,
        }
        if Instant::now() > deadline
            || (stop.load(Ordering::Relaxed) && Instant::now() + Duration::from_secs(50) > deadline)
        {
            return None;
        }
        instance += 1;
        thread::sleep(Duration::from_millis(150));
    }
}

fn minor(amount: &Value) -> i64 {
    let text = amount.to_string();
    let (whole, cents) = text.split_once('.').unwrap_or((&text, "0"));
    whole.parse::<i64>().unwrap_or(0) * 100
        + format!("{cents:0<2}")[..2].parse::<i64>().unwrap_or(0)
}

fn history(db_url: &str, instances: usize, kills: u64) -> Figures {
    let stand_in = StandIn::start_in_background();
    let cluster = Arc::new(Cluster {
        db_url: db_url.to_owned(),
        stand_in: stand_in.clone(),
        ports: (0..instances).map(|_| free_port()).collect(),
        servers: Mutex::new((0..instances).map(|_| None).collect()),
    });
    for i in 0..instances {
        cluster.start(i);
    }
    // Orders: two lines of three units; one in six authorised on an intent that declines.
    let mut lines = HashMap::new();
    for order in 1..=ORDERS {
        let intent = if order % 6 == 0 {
            format!("pi_decline_{order}")
        } else {
            format!("pi_{order}")
        };
        stand_in.authorize(&intent, 9_400, "EUR", true);
        let body = json!({"order": order, "currency": "EUR", "email": format!("h{order}@example.com"),
            "products": [{"sku": "A", "qty": 3, "price": "20.00", "vat": "25"}, {"sku": "B", "qty": 3, "price": "10.00", "vat": "12"}],
            "shippingValue": "4.00", "payment": {"provider": "stripe", "reference": intent, "amount": "94.00"}});
        let (_, text, _) = send(
            &cluster.base(0),
            "POST",
            "/order",
            &format!("import-{order}"),
            &body,
        )
        .expect("import");
        let answer: Value = serde_json::from_str(&text).unwrap();
        let ids = answer["products"]
            .as_array()
            .unwrap_or_else(|| panic!("{answer}"));
        lines.insert(
            order,
            [
                ids[0]["lineId"].as_str().unwrap().to_owned(),
                ids[1]["lineId"].as_str().unwrap().to_owned(),
            ],
        );
    }
    let lines = Arc::new(lines);
    let stop = Arc::new(AtomicBool::new(false));
    let requests = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..6)
        .map(|id| {
            let (cluster, lines, stop, requests) = (
                cluster.clone(),
                lines.clone(),
                stop.clone(),
                requests.clone(),
            );
            thread::spawn(move || run_client(cluster, id, lines, stop, requests))
        })
        .collect();
    let mut figures = Figures::default();
    let faults = [
        Fault::Status(500),
        Fault::Status(503),
        Fault::DropAfterProcessing,
        Fault::DelayAfterProcessing(Duration::from_millis(1500)),
        Fault::DropBeforeProcessing,
    ];
    let mut seed = 7u64;
    for kill in 0..kills {
        for _ in 0..3 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            stand_in.inject([faults[(seed >> 33) as usize % faults.len()].clone()]);
            figures.faults_injected += 1;
            thread::sleep(Duration::from_millis(150 + (seed >> 40) % 300));
        }
        let victim = kill as usize % instances;
        cluster.kill(victim);
        cluster.start(victim);
        figures.restarts += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let client_views: Vec<Client> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    figures.requests = requests.load(Ordering::Relaxed);
    // Idempotency: a key sent again must have been answered exactly as the first time.
    for view in &client_views {
        for (key, first, again) in &view.replays {
            figures.replays_checked += 1;
            if first != again {
                figures.replays_that_differed += 1;
                eprintln!("replay differed for {key}: {first} / {again}");
            }
        }
    }
    // Recovery settles what the crashes left; then the API is compared with the ledger.
    let deadline = Instant::now() + Duration::from_secs(60);
    let orders = loop {
        let page: Value = serde_json::from_str(
            &send(
                &cluster.base(0),
                "GET",
                "/orders?limit=1000",
                "",
                &json!(null),
            )
            .map(|(_, t, _)| t)
            .unwrap_or_default(),
        )
        .unwrap_or(Value::Null);
        let orders = page["orders"].as_array().cloned().unwrap_or_default();
        let open = orders
            .iter()
            .flat_map(|o| o["shipments"].as_array().cloned().unwrap_or_default())
            .filter(|s| s["captureState"] == "pending" || s["captureState"] == "needsReview")
            .count();
        let returns = all_returns(&cluster);
        let refunds_open = returns
            .iter()
            .filter(|r| r["refundState"] == "pending" || r["refundState"] == "needsReview")
            .count();
        if (open == 0 && refunds_open == 0 && orders.len() == ORDERS as usize)
            || Instant::now() > deadline
        {
            figures.pending_left = open as u64;
            figures.refunds_pending_left = refunds_open as u64;
            if open > 0 {
                report_open_shipments(&cluster, instances, &orders);
            }
            break orders;
        }
        thread::sleep(Duration::from_millis(300));
    };
    let returns = all_returns(&cluster);
    for i in 0..instances {
        cluster.kill(i);
        let _ = std::fs::remove_file(cluster.log(i));
    }
    check_refunds(&mut figures, &stand_in, &orders, &returns, &client_views);
    let mut at_provider: HashMap<String, Vec<i64>> = HashMap::new();
    for capture in stand_in.ledger() {
        let parts: Vec<&str> = capture.idempotency_key.rsplitn(4, '-').collect();
        at_provider
            .entry(format!("{}-{}", parts[2], parts[1]))
            .or_default()
            .push(capture.amount);
    }
    let mut captured: HashMap<String, i64> = HashMap::new();
    for order in &orders {
        for line in order["products"].as_array().unwrap() {
            figures.units_over_allocated += line["qtyAllocated"]
                .as_u64()
                .unwrap_or(0)
                .saturating_sub(line["qty"].as_u64().unwrap_or(0));
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
    figures.captured_shipments = captured.len() as u64;
    // Acknowledged writes survive the kills: every shipment a client was told was created is
    // listed, unless it was told it was deleted (or, after a lost connection, that it no longer
    // exists); every one it was told was deleted, or does not exist, is not.
    let listed: std::collections::HashSet<String> = orders
        .iter()
        .flat_map(|o| o["shipments"].as_array().cloned().unwrap_or_default())
        .filter_map(|s| s["shipmentId"].as_str().map(str::to_owned))
        .collect();
    for view in &client_views {
        figures.deletes_outcome_unknown += view.maybe_deleted.len() as u64;
        for s in &view.shipments {
            if view.deleted.contains(s) || view.maybe_deleted.contains(s) {
                continue;
            }
            figures.acknowledged_shipments += 1;
            if !listed.contains(s) {
                figures.acknowledged_missing += 1;
                eprintln!("acknowledged shipment {s} is not listed after the kills; its calls:");
                for (key, (method, path, body, answer)) in &view.answers {
                    let quoted = format!("\"{s}\"");
                    if path.ends_with(&format!("/{s}"))
                        || body.to_string().contains(&quoted)
                        || answer.contains(&quoted)
                    {
                        eprintln!("  {key} {method} {path} {body} -> {answer}");
                    }
                }
            }
        }
        // "Does not exist" is also an answer: that shipment must not come back either.
        for s in view.deleted.iter().chain(&view.maybe_deleted) {
            if listed.contains(s) {
                figures.deleted_but_listed += 1;
                eprintln!("shipment {s} was answered deleted but is listed");
            }
        }
    }
    for (shipment, amounts) in &at_provider {
        figures.double_captures += amounts.len().saturating_sub(1) as u64;
        if captured.get(shipment) != Some(&amounts.iter().sum::<i64>()) {
            figures.orphan_captures += 1;
        }
    }
    figures.captured_without_provider = captured
        .iter()
        .filter(|(s, value)| **value > 0 && !at_provider.contains_key(*s))
        .count() as u64;
    figures
}

/// Every return, newest first (the history makes far fewer than a thousand).
fn all_returns(cluster: &Cluster) -> Vec<Value> {
    let mut all = Vec::new();
    for page in 1..=10 {
        let answer: Value = send(
            &cluster.base(0),
            "GET",
            &format!("/returns?limit=100&page={page}"),
            "",
            &json!(null),
        )
        .ok()
        .and_then(|(_, t, _)| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
        let returns = answer["returns"].as_array().cloned().unwrap_or_default();
        let done = returns.len() < 100;
        all.extend(returns);
        if done {
            break;
        }
    }
    all
}

/// The refund side of the comparison: the provider's refund ledger against the returns Consign
/// reports, and the money rule per order.
fn check_refunds(
    figures: &mut Figures,
    stand_in: &StandIn,
    orders: &[Value],
    returns: &[Value],
    clients: &[Client],
) {
    let mut at_provider: HashMap<String, Vec<i64>> = HashMap::new();
    for refund in stand_in.refund_ledger() {
        figures.refunds_at_provider += 1;
        let id = refund
            .metadata
            .iter()
            .find(|(k, _)| k == "consign_return")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        at_provider.entry(id).or_default().push(refund.amount);
    }
    let refunded: HashMap<String, i64> = returns
        .iter()
        .filter(|r| r["refundState"] == "refunded")
        .map(|r| (r["returnId"].to_string(), minor(&r["refundValue"])))
        .collect();
    figures.refunded_returns = refunded.len() as u64;
    for (id, amounts) in &at_provider {
        figures.double_refunds += amounts.len().saturating_sub(1) as u64;
        if refunded.get(id) != Some(&amounts.iter().sum::<i64>()) {
            figures.refunds_without_return += 1;
            eprintln!(
                "refund at the provider for return {id}: {amounts:?}, reported {:?}",
                refunded.get(id)
            );
        }
    }
    figures.refunded_without_provider = refunded
        .iter()
        .filter(|(id, value)| **value > 0 && !at_provider.contains_key(*id))
        .count() as u64;
    for order in orders {
        if minor(&order["refundedValue"]) > minor(&order["capturedValue"]) {
            figures.refunded_above_captured += 1;
        }
        for line in order["products"].as_array().cloned().unwrap_or_default() {
            if line["qtyReturned"].as_u64() > line["qtyCaptured"].as_u64() {
                figures.returned_above_captured += 1;
            }
        }
    }
    let listed: std::collections::HashSet<i64> = returns
        .iter()
        .filter_map(|r| r["returnId"].as_i64())
        .collect();
    for client in clients {
        for id in &client.returns {
            if !listed.contains(id) {
                figures.acknowledged_returns_missing += 1;
                eprintln!("acknowledged return {id} is not listed after the kills");
            }
        }
    }
}

/// What a failed recovery check needs to be understood: the shipments still open, and the last
/// warnings of each instance.
fn report_open_shipments(cluster: &Cluster, instances: usize, orders: &[Value]) {
    for order in orders {
        for s in order["shipments"].as_array().cloned().unwrap_or_default() {
            if s["captureState"] == "pending" || s["captureState"] == "needsReview" {
                eprintln!("still open: {s}");
            }
        }
    }
    for i in 0..instances {
        let log = std::fs::read_to_string(cluster.log(i)).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        eprintln!("instance {i}, last warnings:");
        for line in &lines[lines.len().saturating_sub(40)..] {
            eprintln!("  {line}");
        }
    }
}

#[test]
fn random_histories_with_kills_and_provider_faults_keep_every_guarantee() {
    let kills: u64 = std::env::var("CONSIGN_HISTORY_KILLS")
        .ok()
        .and_then(|k| k.parse().ok())
        .unwrap_or(10);
    let mut runs = vec![("sqlite", Throwaway::sqlite(), 1)];
    match Throwaway::postgres() {
        Ok(pg) => runs.push(("postgres", pg, 2)),
        Err(why) if postgres_required() => panic!("CI=true but PostgreSQL is unreachable: {why}"),
        Err(why) => eprintln!("SKIPPED on PostgreSQL (unreachable: {why})"),
    }
    for (backend, db, instances) in &runs {
        let f = history(&db.url, *instances, kills);
        eprintln!("history {backend} ({instances} instance(s)): {f:?}");
        assert!(
            f.captured_shipments > 0
                && f.acknowledged_shipments > 0
                && f.requests > 100
                && f.replays_checked > 0,
            "{backend}: {f:?}"
        );
        assert_eq!(
            (
                f.units_over_allocated,
                f.double_captures,
                f.orphan_captures,
                f.captured_without_provider,
                f.pending_left,
                f.replays_that_differed,
                f.acknowledged_missing,
                f.deleted_but_listed
            ),
            (0, 0, 0, 0, 0, 0, 0, 0),
            "{backend}: {f:?}"
        );
        assert!(
            f.refunded_returns > 0,
            "{backend}: no refund happened: {f:?}"
        );
        assert_eq!(
            (
                f.double_refunds,
                f.refunds_without_return,
                f.refunded_without_provider,
                f.refunds_pending_left,
                f.refunded_above_captured,
                f.returned_above_captured,
                f.acknowledged_returns_missing
            ),
            (0, 0, 0, 0, 0, 0, 0),
            "{backend}: {f:?}"
        );
    }
}
