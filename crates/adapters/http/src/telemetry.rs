//! Request ids, access logs and request metrics, for every request.
//!
//! The log line holds method, route pattern, status, outcome and duration: never the query
//! string (document links carry tokens there), a header or a body, so no key, token or card data
//! reaches the logs.

use std::borrow::Cow;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web;
use consign_ports::StoreStats;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::answer::Outcome;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// Store figures are read at most this often, however often `/metrics` is scraped.
pub const STORE_FIGURES_MAX_AGE_MILLIS: i64 = 5_000;

/// The states of an open capture attempt, always all shown. Settled attempts (`succeeded`,
/// `failed`) are not counted: they are the history, which a count would read whole at every
/// scrape; the request counters show the volume.
const OPEN_ATTEMPT_STATES: [&str; 3] = ["pending", "unknown", "needs_review"];

/// Sets one gauge of `family` per state of `states`, to its count in `counts` (0 when absent:
/// a state whose last attempt settled must fall back to 0, not keep its last figure).
fn set_by_state(
    family: &Family<StateLabel, Gauge>,
    states: &[&'static str],
    counts: &[(String, i64)],
) {
    for &state in states {
        let n = counts
            .iter()
            .find(|(s, _)| s == state)
            .map_or(0, |(_, n)| *n);
        family.get_or_create(&StateLabel { state }).set(n);
    }
}

/// The states a refund attempt not yet refunded nor declined is counted by.
const OPEN_REFUND_STATES: [&str; 4] = ["pending", "settling", "unknown", "needs_review"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    // Borrowed for the usual methods and outcomes: no allocation per request.
    method: Cow<'static, str>,
    outcome: Cow<'static, str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

type LatencyFamily = Family<RequestLabels, Histogram, fn() -> Histogram>;

/// The metrics of an instance: requests by route, method and outcome with their latency (kept
/// by the request path: atomics, and a lock only to add a new series), and the store's figures,
/// read at most every [`STORE_FIGURES_MAX_AGE_MILLIS`] whatever the scrape rate.
pub struct RequestMetrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: LatencyFamily,
    attempts: Family<StateLabel, Gauge>,
    refunds: Family<StateLabel, Gauge>,
    needing_review: Gauge,
    outbox_depth: Gauge,
    outbox_refused: Gauge,
    pool: Family<StateLabel, Gauge>,
    up: Gauge,
    statements: Counter,
    writer_commits: Counter,
    /// When the store figures were last read, in Unix milliseconds (0: never).
    store_read_at: AtomicI64,
    next_id: AtomicU64,
}

impl Default for RequestMetrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "consign_http_requests",
            "Requests by route, method and outcome",
            requests.clone(),
        );
        let latency: LatencyFamily = Family::new_with_constructor(|| Histogram::new(BUCKETS));
        registry.register(
            "consign_http_request_duration_seconds",
            "Request latency",
            latency.clone(),
        );
        let attempts = Family::<StateLabel, Gauge>::default();
        registry.register(
            "consign_capture_attempts",
            "Capture attempts not yet settled, by state",
            attempts.clone(),
        );
        let refunds = Family::<StateLabel, Gauge>::default();
        registry.register(
            "consign_refund_attempts",
            "Refund attempts not yet refunded nor declined, by state (settling: accepted by the provider, not made yet)",
            refunds.clone(),
        );
        let needing_review = Gauge::default();
        registry.register(
            "consign_shipments_needing_review",
            "Shipments whose capture needs review",
            needing_review.clone(),
        );
        let outbox_depth = Gauge::default();
        registry.register(
            "consign_outbox_depth",
            "Shipping confirmations not yet sent",
            outbox_depth.clone(),
        );
        let outbox_refused = Gauge::default();
        registry.register(
            "consign_outbox_refused",
            "Confirmations the mail server refused for good (never sent)",
            outbox_refused.clone(),
        );
        let pool = Family::<StateLabel, Gauge>::default();
        registry.register(
            "consign_db_pool_connections",
            "Connection pool",
            pool.clone(),
        );
        let statements = Counter::default();
        registry.register(
            "consign_db_statements",
            "Statements sent to the database, prepares included (a round trip each on PostgreSQL)",
            statements.clone(),
        );
        let writer_commits = Counter::default();
        registry.register(
            "consign_db_writer_commits",
            "Commits of SQLite's single writer, each holding one or more writes (0 on PostgreSQL)",
            writer_commits.clone(),
        );
        let up = Gauge::default();
        registry.register(
            "consign_up",
            "Whether the database answered the last read of the store figures",
            up.clone(),
        );
        RequestMetrics {
            registry,
            requests,
            latency,
            attempts,
            refunds,
            needing_review,
            outbox_depth,
            outbox_refused,
            pool,
            up,
            statements,
            writer_commits,
            store_read_at: AtomicI64::new(0),
            next_id: AtomicU64::new(0),
        }
    }
}

impl RequestMetrics {
    fn record(
        &self,
        route: String,
        method: Cow<'static, str>,
        outcome: Cow<'static, str>,
        seconds: f64,
    ) {
        let labels = RequestLabels {
            route,
            method,
            outcome,
        };
        self.requests.get_or_create(&labels).inc();
        self.latency.get_or_create(&labels).observe(seconds);
    }

    /// Whether the store figures are older than [`STORE_FIGURES_MAX_AGE_MILLIS`] at `now`; if so
    /// the caller is the one to read them (one reader at a time, whatever the scrape rate).
    pub fn claim_store_read(&self, now_millis: i64) -> bool {
        let last = self.store_read_at.load(Ordering::Acquire);
        now_millis.saturating_sub(last) >= STORE_FIGURES_MAX_AGE_MILLIS
            && self
                .store_read_at
                .compare_exchange(last, now_millis, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
    }

    /// Keeps the store's figures (or, with `None`, that the store did not answer).
    pub fn set_store_figures(&self, stats: Option<&StoreStats>) {
        let Some(stats) = stats else {
            self.up.set(0);
            return;
        };
        set_by_state(
            &self.attempts,
            &OPEN_ATTEMPT_STATES,
            &stats.open_attempts_by_state,
        );
        set_by_state(
            &self.refunds,
            &OPEN_REFUND_STATES,
            &stats.open_refunds_by_state,
        );
        self.needing_review.set(stats.shipments_needing_review);
        self.outbox_depth.set(stats.outbox_depth);
        self.outbox_refused.set(stats.outbox_refused);
        for (state, n) in [
            ("in_use", stats.pool_in_use),
            ("waiting", stats.pool_waiting),
            ("size", stats.pool_size),
        ] {
            self.pool
                .get_or_create(&StateLabel { state })
                .set(i64::from(n));
        }
        self.up.set(1);
    }

    /// Keeps the store's live count of statements sent (read on every scrape: it costs nothing).
    pub fn set_statements_sent(&self, sent: u64) {
        self.statements.inner().store(sent, Ordering::Relaxed);
    }

    /// Keeps the store's live count of its serial writer's commits (read on every scrape).
    pub fn set_writer_commits(&self, commits: u64) {
        self.writer_commits
            .inner()
            .store(commits, Ordering::Relaxed);
    }

    /// The OpenMetrics text of every metric.
    pub fn render(&self, out: &mut String) {
        if prometheus_client::encoding::text::encode(out, &self.registry).is_err() {
            tracing::error!("metrics could not be encoded");
        }
    }

    fn request_id(&self) -> String {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        format!("{nanos:08x}-{n:x}")
    }
}

/// A method's label: its name for HTTP's own methods, `other` for any other token. A client
/// may send any token as a method, and each label is a series the registry keeps for good:
/// labelled by their names, made-up methods would grow it without bound.
fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// A client's `X-Request-Id` is kept when it is short and plain; otherwise one is made.
fn usable(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// The middleware (outermost): id, log line, metrics.
pub async fn telemetry(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let metrics = request.app_data::<web::Data<RequestMetrics>>().cloned();
    let request_id = request
        .headers()
        .get("X-Request-Id")
        .and_then(|v| v.to_str().ok())
        .filter(|id| usable(id))
        .map(str::to_owned)
        .unwrap_or_else(|| {
            metrics
                .as_ref()
                .map_or_else(|| "-".into(), |m| m.request_id())
        });
    // The log line names the method as sent; the metrics only by its label.
    let method = request.method().clone();
    let mut response = next.call(request).await?;
    let route = response
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".into());
    let status = response.status();
    let outcome: Cow<'static, str> = match response.response().extensions().get::<Outcome>() {
        Some(Outcome(true)) => Cow::Borrowed("ok"),
        Some(Outcome(false)) if status.is_success() => Cow::Borrowed("no"),
        _ => Cow::Owned(status.as_u16().to_string()),
    };
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response
            .headers_mut()
            .insert(HeaderName::from_static("x-request-id"), value);
    }
    let seconds = started.elapsed().as_secs_f64();
    tracing::info!(target: "consign::access", request_id = %request_id, %method, %route, status = status.as_u16(), %outcome, ms = seconds * 1000.0, "request");
    if let Some(metrics) = metrics {
        metrics.record(
            route,
            Cow::Borrowed(method_label(&method)),
            outcome,
            seconds,
        );
    }
    Ok(response)
}
