//! Seeding orders through the API and driving create-shipment with concurrent clients.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::options::Options;
use crate::report::Tally;
use crate::server::KEY;
use crate::wire::{Answer, Connection};

/// Partial shipments draw from these: two lines with many units each.
pub const BIG_QTY: u64 = 100_000;
/// Small orders shipped whole start at this id.
pub const FULL_BASE: i64 = 1_000_000;

pub struct Seeded {
    /// Line ids per big order (index = order id - 1).
    pub big: Vec<[String; 2]>,
    /// (order id, line ids) of small orders.
    pub full: Vec<(i64, [String; 2])>,
    /// How many small orders earlier drives shipped: a later drive goes on from there.
    pub full_taken: AtomicUsize,
}

/// A JSON request with the bench's key: (status, parsed answer).
async fn send(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: &Value,
) -> Result<(u16, Value), String> {
    let response = client
        .request(method, url)
        .header("API-Authorization", KEY)
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let text = response.text().await.map_err(|e| e.to_string())?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

async fn post(client: &reqwest::Client, url: &str, body: &Value) -> Result<(u16, Value), String> {
    send(client, reqwest::Method::POST, url, body).await
}

pub async fn get(client: &reqwest::Client, url: &str) -> Result<Value, String> {
    let response = client
        .get(url)
        .header("API-Authorization", KEY)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let text = response.text().await.map_err(|e| e.to_string())?;
    serde_json::from_str(&text).map_err(|e| e.to_string())
}

fn order(id: i64, qty: u64) -> Value {
    let total = qty * 1000 + qty * 500; // minor units of 10.00 and 5.00
    json!({
        "order": id, "currency": "SEK", "email": format!("customer{}@example.com", id % 500),
        "firstName": "Bench", "lastName": "Customer",
        "products": [
            {"sku": "A", "name": "Item A", "qty": qty, "price": "10.00", "vat": "25"},
            {"sku": "B", "name": "Item B", "qty": qty, "price": "5.00", "vat": "12"}
        ],
        "payment": {"provider": "sandbox", "reference": format!("auth-{id}"), "amount": format!("{}.{:02}", total / 100, total % 100)}
    })
}

/// Imports the orders with `clients` concurrent requests.
pub async fn seed(
    client: &reqwest::Client,
    base: &str,
    big: usize,
    full: usize,
    clients: usize,
) -> Result<Seeded, String> {
    let ids: Vec<(i64, u64)> = (1..=big as i64)
        .map(|id| (id, BIG_QTY))
        .chain((0..full as i64).map(|i| (FULL_BASE + i, 1)))
        .collect();
    let ids = Arc::new(ids);
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (client, ids, next, url) = (
            client.clone(),
            ids.clone(),
            next.clone(),
            format!("{base}/order"),
        );
        tasks.push(tokio::spawn(async move {
            let mut lines = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&(id, qty)) = ids.get(i) else { break };
                let (_, answer) = post(&client, &url, &order(id, qty)).await?;
                let products = answer["products"]
                    .as_array()
                    .ok_or_else(|| format!("import {id}: {answer}"))?;
                let line = |k: usize| {
                    products[k]["lineId"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned()
                };
                lines.push((id, [line(0), line(1)]));
            }
            Ok::<_, String>(lines)
        }));
    }
    let mut seeded = Seeded {
        full_taken: AtomicUsize::new(0),
        big: vec![[String::new(), String::new()]; big],
        full: Vec::new(),
    };
    for task in tasks {
        for (id, lines) in task.await.map_err(|e| e.to_string())?? {
            if id >= FULL_BASE {
                seeded.full.push((id, lines));
            } else {
                seeded.big[(id - 1) as usize] = lines;
            }
        }
    }
    seeded.full.sort_by_key(|(id, _)| *id);
    Ok(seeded)
}

/// A tiny xorshift generator per client: the bench must not be the bottleneck.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn classify(tally: &mut Tally, result: &Result<Answer, String>, started: Instant) -> bool {
    tally.latencies.push(started.elapsed().as_micros() as u64);
    match result {
        Ok(Answer {
            status: 200,
            ok: true,
            ..
        }) => {
            tally.ok += 1;
            return true;
        }
        Ok(Answer { status: 200, .. }) => tally.no += 1,
        Ok(Answer { status, .. }) if *status >= 500 => tally.server_errors += 1,
        Ok(_) => tally.client_errors += 1,
        Err(_) => tally.transport_errors += 1,
    }
    false
}

/// What the clients made.
#[derive(Debug, Clone, Copy, Default)]
pub struct Made {
    /// Captured shipments.
    pub shipments: u64,
    /// Returns refunded.
    pub refunds: u64,
}

/// How long a drive goes on.
#[derive(Debug, Clone, Copy)]
pub enum Limit {
    /// For this long.
    For(Duration),
    /// Until its clients have started this many shipments between them (a paired round's
    /// ceiling and floor make as many as Consign's drive just made, so that their databases
    /// grow as Consign's does).
    Shipments(u64),
}

/// A drive's limit as its clients share it.
pub struct Stop {
    deadline: Option<Instant>,
    tickets: Option<std::sync::atomic::AtomicU64>,
}

impl Stop {
    pub fn new(limit: Limit) -> Stop {
        match limit {
            Limit::For(duration) => Stop {
                deadline: Some(Instant::now() + duration),
                tickets: None,
            },
            Limit::Shipments(n) => Stop {
                deadline: None,
                tickets: Some(std::sync::atomic::AtomicU64::new(n)),
            },
        }
    }

    /// Whether a client may start one more shipment (taking its ticket, when counted).
    pub fn another(&self) -> bool {
        if let Some(deadline) = self.deadline {
            return Instant::now() < deadline;
        }
        self.tickets.as_ref().is_some_and(|tickets| {
            tickets
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok()
        })
    }
}

/// Drives create-shipment (and, for `returns_percent` of the captured shipments, a return with
/// a refund of the whole shipment) until `limit`; answers the tally and what was made.
pub async fn drive(
    base: &str,
    seeded: Arc<Seeded>,
    clients: usize,
    limit: Limit,
    uncaptured_percent: u32,
    returns_percent: u32,
) -> Result<(Tally, Made), String> {
    let stop = Arc::new(Stop::new(limit));
    let mut tasks = Vec::new();
    // Line ids as JSON strings, quoted once rather than per request.
    let quoted = |lines: &[String; 2]| lines.clone().map(|l| Value::String(l).to_string());
    let big: Arc<Vec<[String; 2]>> = Arc::new(seeded.big.iter().map(quoted).collect());
    let full: Arc<Vec<(i64, [String; 2])>> = Arc::new(
        seeded
            .full
            .iter()
            .map(|(id, lines)| (*id, quoted(lines)))
            .collect(),
    );
    for c in 0..clients {
        let (big, full, seeded, stop) = (big.clone(), full.clone(), seeded.clone(), stop.clone());
        let mut connection = Connection::new(base)?;
        tasks.push(tokio::spawn(async move {
            let mut rng =
                Rng(0x9e37_79b9_7f4a_7c15 ^ ((c as u64 + 1).wrapping_mul(0x2545_f491_4f6c_dd1d)));
            let mut tally = Tally::default();
            let mut made = Made::default();
            while stop.another() {
                let r = rng.next();
                let capture = (r % 100) as u32 >= uncaptured_percent;
                // One in five requests ships a small order whole (while there are any left); the
                // rest ship part of a big one.
                let small = match (r >> 8) % 5 {
                    0 => full.get(seeded.full_taken.fetch_add(1, Ordering::Relaxed)),
                    _ => None,
                };
                let body = match small {
                    Some((id, [a, b])) => format!(
                        r#"{{"order":{id},"products":{{{a}:1,{b}:1}},"capture":{capture}}}"#
                    ),
                    None => {
                        let i = (r >> 16) as usize % big.len();
                        let line = &big[i][((r >> 32) % 2) as usize];
                        let (order, qty) = (i + 1, 1 + (r >> 40) % 2);
                        format!(
                            r#"{{"order":{order},"products":{{{line}:{qty}}},"capture":{capture}}}"#
                        )
                    }
                };
                let started = Instant::now();
                let result = connection.send("POST", "/shipments", &body).await;
                let created = classify(&mut tally, &result, started);
                if created && capture {
                    made.shipments += 1;
                    if ((r >> 48) % 100) < u64::from(returns_percent) {
                        let shipment = result.ok().and_then(|a| a.shipment).unwrap_or_default();
                        let started = Instant::now();
                        let body = format!(
                            r#"{{"shipment":"{shipment}","refund":{{"refundPayment":true}}}}"#
                        );
                        let done = connection.send("POST", "/return", &body).await;
                        if classify(&mut tally, &done, started) {
                            made.refunds += 1;
                        }
                    }
                } else if created {
                    let shipment = result.ok().and_then(|a| a.shipment).unwrap_or_default();
                    let started = Instant::now();
                    let body = format!(r#"{{"shipment":"{shipment}","tracking":"T1"}}"#);
                    let done = connection.send("PUT", "/shipment", &body).await;
                    if classify(&mut tally, &done, started) {
                        made.shipments += 1;
                    }
                }
            }
            (tally, made)
        }));
    }
    let mut all = Tally::default();
    let mut total = Made::default();
    for task in tasks {
        let (tally, made) = task.await.map_err(|e| e.to_string())?;
        all.merge(tally);
        total.shipments += made.shipments;
        total.refunds += made.refunds;
    }
    Ok((all, total))
}

/// [`drive`] with the run's options (clients, duration, the uncaptured and returned shares).
pub async fn drive_as_asked(
    options: &Options,
    base: &str,
    seeded: Arc<Seeded>,
) -> Result<(Tally, Made), String> {
    drive(
        base,
        seeded,
        options.clients(),
        Limit::For(options.duration()),
        options.uncaptured_percent,
        options.returns_percent,
    )
    .await
}

/// Checks the invariants through the API; answers the failures found.
pub async fn check_invariants(
    client: &reqwest::Client,
    base: &str,
    expected_orders: usize,
) -> Result<Vec<String>, String> {
    let mut failures = Vec::new();
    // Give any capture still settling a moment (sandbox latency, recovery).
    let mut seen = 0;
    for attempt in 0..40 {
        failures.clear();
        seen = 0;
        let mut offset = 0;
        loop {
            let page = get(client, &format!("{base}/orders?limit=1000&offset={offset}")).await?;
            let orders = page["orders"].as_array().cloned().unwrap_or_default();
            if orders.is_empty() {
                break;
            }
            offset += orders.len();
            for order in &orders {
                if order["orderId"]
                    .as_str()
                    .and_then(|id| id.parse::<i64>().ok())
                    .is_some_and(|id| id >= 5_000_000)
                {
                    continue; // history rows
                }
                seen += 1;
                for line in order["products"].as_array().into_iter().flatten() {
                    if line["qtyAllocated"].as_u64() > line["qty"].as_u64() {
                        failures.push(format!("over-allocated line {}", line["lineId"]));
                    }
                }
                let shipments = order["shipments"].as_array().cloned().unwrap_or_default();
                let captured: i64 = shipments
                    .iter()
                    .filter(|s| s["captureState"] == "captured")
                    .map(|s| minor(&s["captureValue"]))
                    .sum();
                if captured != minor(&order["capturedValue"]) {
                    failures.push(format!(
                        "order {}: capturedValue differs from its shipments",
                        order["orderId"]
                    ));
                }
                if minor(&order["refundedValue"]) > minor(&order["capturedValue"]) {
                    failures.push(format!(
                        "order {}: refunded above captured",
                        order["orderId"]
                    ));
                }
                if let Some(s) = shipments
                    .iter()
                    .find(|s| s["captureState"] == "pending" || s["captureState"] == "needsReview")
                {
                    failures.push(format!(
                        "shipment {} left {}",
                        s["shipmentId"], s["captureState"]
                    ));
                }
            }
        }
        if failures.iter().all(|f| !f.contains("left")) || attempt == 39 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    if seen < expected_orders {
        failures.push(format!("listed {seen} orders, expected {expected_orders}"));
    }
    Ok(failures)
}

fn minor(amount: &Value) -> i64 {
    let text = amount.to_string();
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, "0"));
    let fraction = format!("{fraction:0<2}");
    whole.parse::<i64>().unwrap_or(0) * 100 + fraction[..2].parse::<i64>().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counted_drive_gives_out_exactly_its_shipments_between_its_clients() {
        let stop = Arc::new(Stop::new(Limit::Shipments(1000)));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    std::iter::from_fn(|| stop.another().then_some(())).count()
                })
            })
            .collect();
        let taken: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(taken, 1000);
        assert!(!stop.another(), "none left once all are taken");
    }

    #[test]
    fn a_timed_drive_stops_at_its_deadline() {
        let stop = Stop::new(Limit::For(Duration::from_millis(20)));
        assert!(stop.another());
        std::thread::sleep(Duration::from_millis(25));
        assert!(!stop.another());
    }
}
