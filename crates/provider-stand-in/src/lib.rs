//! # consign-provider-stand-in
//!
//! Test code, never part of the product: a stateful HTTP server on loopback that behaves like
//! Stripe's capture API (`POST /v1/payment_intents/{id}/capture`) and refund API
//! (`POST /v1/refunds`, and `GET /v1/refunds?payment_intent=` to look them up) and
//! `GET /v1/payment_intents/{id}` (what an intent has captured), so the real payment adapter and the real server binary can be tested
//! against it. Refunds are kept in a ledger of their own, never above what was captured on the
//! intent; intents whose id starts with `pi_norefund` answer every refund `failed`. Refunds can
//! be made to answer `pending` ([`StandIn::hold_refunds`]) and be settled later
//! ([`StandIn::finish_refund`]), as Stripe's refunds that settle after the call.
//!
//! It keeps authorisations with their capturable amounts, replays the first answer for a
//! repeated `Idempotency-Key`, answers 409 while the first call with a key is still running,
//! declines by intent id, models single versus multiple capture, and keeps a ledger of what it
//! really captured. Faults are queued and applied to the next requests in order: 5xx, 429,
//! latency, a connection dropped before or after the capture was made, and hangs past the
//! client's timeout.
//!
//! [`smtp::SmtpSink`] is the same for mail: an SMTP server that keeps what it receives.
#![deny(missing_docs)]

pub mod smtp;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The secret key the stand-in accepts (`Authorization: Bearer ...`).
pub const SECRET_KEY: &str = "sk_test_stand_in";

/// A fault applied to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer this status (500, 503, 429) without doing anything.
    Status(u16),
    /// Close the connection without reading further or doing anything.
    DropBeforeProcessing,
    /// Make the capture, then close the connection without answering.
    DropAfterProcessing,
    /// Make the capture, then wait this long before answering (past a client timeout, say).
    DelayAfterProcessing(Duration),
    /// Wait this long, then close the connection without doing anything.
    HangThenDrop(Duration),
    /// Make the capture, then hold the answer until [`StandIn::release_held`] (a request in
    /// flight while the test does something else).
    HoldAfterProcessing,
    /// Make the capture (or refund), then answer this status and body instead of the real
    /// answer (a proxy in front of the provider that garbled it, say).
    AnswerAfterProcessing(u16, String),
}

/// One capture the stand-in really made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capture {
    /// The PaymentIntent.
    pub intent: String,
    /// The idempotency key it was made with.
    pub idempotency_key: String,
    /// Minor units.
    pub amount: i64,
    /// The charge id answered.
    pub charge: String,
}

/// One refund the stand-in really made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    /// The PaymentIntent.
    pub intent: String,
    /// The idempotency key it was made with.
    pub idempotency_key: String,
    /// Minor units.
    pub amount: i64,
    /// The refund id answered.
    pub id: String,
    /// The metadata sent with it.
    pub metadata: Vec<(String, String)>,
    /// `succeeded`, `pending` (held) or `failed` (a held refund that failed later).
    pub status: String,
}

#[derive(Debug)]
struct Intent {
    amount: i64,
    /// ISO 4217, lower case, as Stripe writes it.
    currency: String,
    captured: i64,
    refunded: i64,
    multicapture: bool,
    /// No more captures: fully captured, or a single-capture intent after its capture.
    closed: bool,
}

#[derive(Debug, Clone)]
enum KeyState {
    Running,
    Done {
        params: String,
        status: u16,
        body: String,
    },
}

#[derive(Default)]
struct State {
    intents: HashMap<String, Intent>,
    keys: HashMap<String, KeyState>,
    ledger: Vec<Capture>,
    refunds: Vec<Refund>,
    faults: VecDeque<Fault>,
    latency: Duration,
    requests: usize,
    /// New refunds answer `pending` until finished.
    hold_refunds: bool,
}

/// A running stand-in. Dropping it does not stop the server task; it ends with the runtime.
#[derive(Clone)]
pub struct StandIn {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    state: Arc<Mutex<State>>,
    /// A permit for each held answer let go.
    released: Arc<tokio::sync::Semaphore>,
}

impl StandIn {
    /// Starts on a free loopback port, on the current tokio runtime.
    pub async fn start() -> StandIn {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let url = format!("http://{}", listener.local_addr().expect("local address"));
        let state = Arc::new(Mutex::new(State::default()));
        let released = Arc::new(tokio::sync::Semaphore::new(0));
        let (served, lets_go) = (state.clone(), released.clone());
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve(socket, served.clone(), lets_go.clone()));
            }
        });
        StandIn {
            url,
            state,
            released,
        }
    }

    /// Lets the oldest answer held by [`Fault::HoldAfterProcessing`] go (or the next one, if
    /// none is held yet).
    pub fn release_held(&self) {
        self.released.add_permits(1);
    }

    /// Starts on a runtime of its own thread, for tests that are not async.
    pub fn start_in_background() -> StandIn {
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                sender.send(StandIn::start().await).expect("test waiting");
                std::future::pending::<()>().await;
            });
        });
        receiver.recv().expect("stand-in started")
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Creates an authorisation (a PaymentIntent awaiting capture) of `amount` in `currency`
    /// (ISO 4217, any case), in the units Stripe's API takes for it. Intents whose id starts
    /// with `pi_decline` decline every capture.
    pub fn authorize(&self, intent: &str, amount: i64, currency: &str, multicapture: bool) {
        self.lock().intents.insert(
            intent.to_owned(),
            Intent {
                amount,
                currency: currency.to_ascii_lowercase(),
                captured: 0,
                refunded: 0,
                multicapture,
                closed: false,
            },
        );
    }

    /// Queues faults for the next requests, in order.
    pub fn inject(&self, faults: impl IntoIterator<Item = Fault>) {
        self.lock().faults.extend(faults);
    }

    /// Latency added to every request.
    pub fn set_latency(&self, latency: Duration) {
        self.lock().latency = latency;
    }

    /// Every capture made, in order.
    pub fn ledger(&self) -> Vec<Capture> {
        self.lock().ledger.clone()
    }

    /// Sum of all captures, minor units.
    pub fn captured_total(&self) -> i64 {
        self.lock().ledger.iter().map(|c| c.amount).sum()
    }

    /// Every refund made, in order.
    pub fn refund_ledger(&self) -> Vec<Refund> {
        self.lock().refunds.clone()
    }

    /// Forgets every idempotency key answered so far, as Stripe does after 24 hours: a call
    /// with such a key is then a new request.
    pub fn forget_keys(&self) {
        self.lock()
            .keys
            .retain(|_, state| matches!(state, KeyState::Running));
    }

    /// Sum of all refunds made and not failed (held ones included), minor units.
    pub fn refunded_total(&self) -> i64 {
        self.lock()
            .refunds
            .iter()
            .filter(|r| r.status != "failed")
            .map(|r| r.amount)
            .sum()
    }

    /// From now on, new refunds answer `pending` (the money not moved yet) until
    /// [`StandIn::finish_refund`] settles them; `false` goes back to refunds that succeed at once.
    pub fn hold_refunds(&self, hold: bool) {
        self.lock().hold_refunds = hold;
    }

    /// Settles a held refund: `succeeded`, or `failed` (with `failure_reason`
    /// `expired_or_canceled_card`; its amount can be refunded again). Answers whether a
    /// pending refund with this id was there.
    pub fn finish_refund(&self, id: &str, succeeded: bool) -> bool {
        let mut s = self.lock();
        let Some(refund) = s
            .refunds
            .iter_mut()
            .find(|r| r.id == id && r.status == "pending")
        else {
            return false;
        };
        refund.status = if succeeded { "succeeded" } else { "failed" }.to_owned();
        let (intent, amount) = (refund.intent.clone(), refund.amount);
        if !succeeded {
            if let Some(intent) = s.intents.get_mut(&intent) {
                intent.refunded -= amount;
            }
        }
        true
    }

    /// Requests received so far.
    pub fn requests(&self) -> usize {
        self.lock().requests
    }
}

struct Request {
    method: String,
    path: String,
    authorization: String,
    idempotency_key: String,
    body: String,
}

async fn read_request(socket: &mut TcpStream) -> Option<Request> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if buffer.len() > 64 * 1024 {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&buffer[..header_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let path = request_line.next()?.to_owned();
    let mut headers = HashMap::new();
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buffer.len() < header_end + length {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    Some(Request {
        method,
        path,
        authorization: headers.get("authorization").cloned().unwrap_or_default(),
        idempotency_key: headers.get("idempotency-key").cloned().unwrap_or_default(),
        body: String::from_utf8_lossy(&buffer[header_end..header_end + length]).to_string(),
    })
}

async fn respond(socket: &mut TcpStream, status: u16, body: &str) {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Request Failed",
        404 => "Not Found",
        409 => "Conflict",
        429 => "Too Many Requests",
        _ => "Error",
    };
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = socket.write_all(response.as_bytes()).await;
    let _ = socket.shutdown().await;
}

fn error(kind: &str, code: &str, message: &str) -> String {
    json!({"error": {"type": kind, "code": code, "message": message}}).to_string()
}

async fn serve(
    mut socket: TcpStream,
    state: Arc<Mutex<State>>,
    released: Arc<tokio::sync::Semaphore>,
) {
    let Some(request) = read_request(&mut socket).await else {
        return;
    };
    let fault = {
        let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
        s.requests += 1;
        s.faults.pop_front()
    };
    match &fault {
        Some(Fault::Status(status)) => {
            let body = error("api_error", "injected", "injected fault");
            return respond(&mut socket, *status, &body).await;
        }
        Some(Fault::DropBeforeProcessing) => return,
        Some(Fault::HangThenDrop(wait)) => {
            tokio::time::sleep(*wait).await;
            return;
        }
        _ => {}
    }
    let (status, body) = match begin(&state, &request) {
        Begin::Answer(status, body) => (status, body),
        Begin::Run { operation, latency } => {
            // The key is marked running while the "provider" works: a concurrent call with the
            // same key meets 409, as with Stripe.
            if !latency.is_zero() {
                tokio::time::sleep(latency).await;
            }
            finish(&state, &request, &operation)
        }
    };
    match fault {
        Some(Fault::DropAfterProcessing) => {}
        Some(Fault::DelayAfterProcessing(wait)) => {
            tokio::time::sleep(wait).await;
            respond(&mut socket, status, &body).await;
        }
        Some(Fault::HoldAfterProcessing) => {
            if let Ok(permit) = released.acquire().await {
                permit.forget();
            }
            respond(&mut socket, status, &body).await;
        }
        Some(Fault::AnswerAfterProcessing(status, body)) => {
            respond(&mut socket, status, &body).await;
        }
        _ => respond(&mut socket, status, &body).await,
    }
}

enum Begin {
    Answer(u16, String),
    Run {
        operation: Operation,
        latency: Duration,
    },
}

/// What a request asks.
enum Operation {
    /// Capture this intent.
    Capture(String),
    /// A refund (the intent is in the form).
    Refund,
}

/// Authentication, routing and the idempotency check; marks a new key running.
fn begin(state: &Arc<Mutex<State>>, request: &Request) -> Begin {
    let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
    if request.authorization != format!("Bearer {SECRET_KEY}") {
        return Begin::Answer(
            401,
            error(
                "invalid_request_error",
                "api_key_invalid",
                "Invalid API Key provided",
            ),
        );
    }
    let capture = request
        .path
        .strip_prefix("/v1/payment_intents/")
        .and_then(|rest| rest.strip_suffix("/capture"))
        .map(|intent| Operation::Capture(intent.to_owned()));
    if let Some(query) = request.path.strip_prefix("/v1/refunds?") {
        return Begin::Answer(200, refund_list(&s, query));
    }
    if request.method == "GET" {
        if let Some(intent) = request.path.strip_prefix("/v1/payment_intents/") {
            return intent_answer(&s, intent);
        }
    }
    let refund = (request.path == "/v1/refunds").then_some(Operation::Refund);
    let Some(operation) = capture.or(refund) else {
        return Begin::Answer(
            404,
            error(
                "invalid_request_error",
                "resource_missing",
                "Unrecognized request URL",
            ),
        );
    };
    let key = &request.idempotency_key;
    if !key.is_empty() {
        match s.keys.get(key) {
            Some(KeyState::Running) => {
                return Begin::Answer(
                    409,
                    error(
                        "idempotency_error",
                        "idempotency_key_in_use",
                        "The idempotency key provided is currently being used in another request.",
                    ),
                );
            }
            Some(KeyState::Done {
                params,
                status,
                body,
            }) => {
                if *params != request.body {
                    return Begin::Answer(400, error("idempotency_error", "idempotency_key_reused", "Keys for idempotent requests can only be used with the same parameters they were first used with."));
                }
                return Begin::Answer(*status, body.clone());
            }
            None => {
                s.keys.insert(key.clone(), KeyState::Running);
            }
        }
    }
    Begin::Run {
        operation,
        latency: s.latency,
    }
}

/// The capture or refund itself, atomic under the lock, and the answer stored for the key.
fn finish(state: &Arc<Mutex<State>>, request: &Request, operation: &Operation) -> (u16, String) {
    let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
    let key = request.idempotency_key.clone();
    let (status, body) = match operation {
        Operation::Capture(intent) => capture(&mut s, intent, &key, &request.body),
        Operation::Refund => refund(&mut s, &key, &request.body),
    };
    if !key.is_empty() {
        s.keys.insert(
            key,
            KeyState::Done {
                params: request.body.clone(),
                status,
                body: body.clone(),
            },
        );
    }
    (status, body)
}

fn capture(s: &mut State, intent_id: &str, key: &str, form: &str) -> (u16, String) {
    let params: HashMap<String, String> = form_urlencoded::parse(form.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let Some(amount) = params
        .get("amount_to_capture")
        .and_then(|a| a.parse::<i64>().ok())
    else {
        return (
            400,
            error(
                "invalid_request_error",
                "parameter_missing",
                "Missing required param: amount_to_capture.",
            ),
        );
    };
    let final_capture = params.get("final_capture").is_none_or(|v| v != "false");
    if intent_id.starts_with("pi_decline") {
        return (
            402,
            error("card_error", "card_declined", "Your card was declined."),
        );
    }
    let next_charge = s.ledger.len() + 1;
    let Some(intent) = s.intents.get_mut(intent_id) else {
        return (
            404,
            error(
                "invalid_request_error",
                "resource_missing",
                &format!("No such payment_intent: '{intent_id}'"),
            ),
        );
    };
    if intent.closed {
        return (
            400,
            error(
                "invalid_request_error",
                "payment_intent_unexpected_state",
                "This PaymentIntent could not be captured because it has a status of succeeded.",
            ),
        );
    }
    if !final_capture && !intent.multicapture {
        return (
            400,
            error(
                "invalid_request_error",
                "multicapture_not_enabled",
                "final_capture=false requires multicapture on this PaymentIntent.",
            ),
        );
    }
    if amount <= 0 || intent.captured + amount > intent.amount {
        return (
            400,
            error(
                "invalid_request_error",
                "amount_too_large",
                "The amount to capture exceeds the capturable amount.",
            ),
        );
    }
    intent.captured += amount;
    // Without multicapture the first capture releases the rest of the authorisation.
    intent.closed = final_capture || !intent.multicapture || intent.captured == intent.amount;
    let status = if intent.closed {
        "succeeded"
    } else {
        "requires_capture"
    };
    let charge = format!("ch_{next_charge}");
    let captured = intent.captured;
    let authorised = intent.amount;
    let currency = intent.currency.clone();
    s.ledger.push(Capture {
        intent: intent_id.to_owned(),
        idempotency_key: key.to_owned(),
        amount,
        charge: charge.clone(),
    });
    (
        200,
        json!({"id": intent_id, "object": "payment_intent", "status": status, "amount": authorised,
               "currency": currency, "amount_received": captured, "latest_charge": charge})
        .to_string(),
    )
}

/// `GET /v1/payment_intents/{id}`: the intent with everything captured on it
/// (`amount_received`) and its latest charge, as Stripe answers it.
fn intent_answer(s: &State, intent_id: &str) -> Begin {
    let Some(intent) = s.intents.get(intent_id) else {
        return Begin::Answer(
            404,
            error(
                "invalid_request_error",
                "resource_missing",
                &format!("No such payment_intent: '{intent_id}'"),
            ),
        );
    };
    let status = if intent.closed {
        "succeeded"
    } else {
        "requires_capture"
    };
    let latest_charge = s
        .ledger
        .iter()
        .rev()
        .find(|c| c.intent == intent_id)
        .map(|c| c.charge.clone());
    Begin::Answer(
        200,
        json!({"id": intent_id, "object": "payment_intent", "status": status,
               "amount": intent.amount, "currency": intent.currency,
               "amount_received": intent.captured, "latest_charge": latest_charge})
        .to_string(),
    )
}

/// `GET /v1/refunds?payment_intent=...`: the intent's refunds with their metadata, one page.
fn refund_list(s: &State, query: &str) -> String {
    let intent = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "payment_intent")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let data: Vec<serde_json::Value> = s
        .refunds
        .iter()
        .filter(|r| r.intent == intent)
        .map(|r| {
            let metadata: serde_json::Map<String, serde_json::Value> = r
                .metadata
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::from(v.clone())))
                .collect();
            let currency = s.intents.get(&r.intent).map(|i| i.currency.clone());
            let mut refund = json!({"id": r.id, "object": "refund", "status": r.status,
                   "amount": r.amount, "currency": currency, "payment_intent": r.intent,
                   "metadata": metadata});
            if r.status == "failed" {
                refund["failure_reason"] = "expired_or_canceled_card".into();
            }
            refund
        })
        .collect();
    json!({"object": "list", "data": data, "has_more": false}).to_string()
}

fn refund(s: &mut State, key: &str, form: &str) -> (u16, String) {
    let params: Vec<(String, String)> = form_urlencoded::parse(form.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let (Some(intent_id), Some(amount)) = (
        get("payment_intent"),
        get("amount").and_then(|a| a.parse::<i64>().ok()),
    ) else {
        return (
            400,
            error(
                "invalid_request_error",
                "parameter_missing",
                "Missing required param: payment_intent or amount.",
            ),
        );
    };
    let id = format!("re_{}", s.refunds.len() + 1);
    let Some(intent) = s.intents.get_mut(&intent_id) else {
        return (
            404,
            error(
                "invalid_request_error",
                "resource_missing",
                &format!("No such payment_intent: '{intent_id}'"),
            ),
        );
    };
    if intent_id.starts_with("pi_norefund") {
        return (
            200,
            json!({"id": id, "object": "refund", "status": "failed", "failure_reason": "declined",
                   "amount": amount, "currency": intent.currency, "payment_intent": intent_id})
            .to_string(),
        );
    }
    if amount <= 0 || intent.refunded + amount > intent.captured {
        return (
            400,
            error(
                "invalid_request_error",
                "amount_too_large",
                "Refund amount is greater than the unrefunded amount captured.",
            ),
        );
    }
    intent.refunded += amount;
    let currency = intent.currency.clone();
    let metadata = params
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("metadata[")
                .and_then(|rest| rest.strip_suffix(']'))
                .map(|name| (name.to_owned(), v.clone()))
        })
        .collect();
    let status = if s.hold_refunds {
        "pending"
    } else {
        "succeeded"
    };
    s.refunds.push(Refund {
        intent: intent_id.clone(),
        idempotency_key: key.to_owned(),
        amount,
        id: id.clone(),
        metadata,
        status: status.to_owned(),
    });
    (
        200,
        json!({"id": id, "object": "refund", "status": status, "amount": amount,
               "currency": currency, "payment_intent": intent_id})
        .to_string(),
    )
}
