//! Request ids, access logs and request metrics, for every request.
//!
//! The log line holds method, route pattern, status, outcome and duration: never the query
//! string (document links carry tokens there), a header or a body, so no key, token or card data
//! reaches the logs.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web;

use crate::answer::Outcome;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

#[derive(Default)]
struct Series {
    count: u64,
    sum: f64,
    buckets: [u64; BUCKETS.len()],
}

/// Counters and histograms of the HTTP edge.
#[derive(Default)]
pub struct RequestMetrics {
    /// (route, method, outcome) -> requests and latency.
    series: Mutex<BTreeMap<(String, String, String), Series>>,
    next_id: AtomicU64,
}

impl RequestMetrics {
    fn record(&self, route: String, method: String, outcome: String, seconds: f64) {
        let mut series = self.series.lock().unwrap_or_else(|p| p.into_inner());
        let entry = series.entry((route, method, outcome)).or_default();
        entry.count += 1;
        entry.sum += seconds;
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                entry.buckets[i] += 1;
            }
        }
    }

    /// The Prometheus text of the request series.
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write;
        let series = self.series.lock().unwrap_or_else(|p| p.into_inner());
        out.push_str("# HELP consign_http_requests_total Requests by route, method and outcome.\n");
        out.push_str("# TYPE consign_http_requests_total counter\n");
        for ((route, method, outcome), s) in series.iter() {
            let _ = writeln!(out, "consign_http_requests_total{{route=\"{route}\",method=\"{method}\",outcome=\"{outcome}\"}} {}", s.count);
        }
        out.push_str("# HELP consign_http_request_duration_seconds Request latency.\n");
        out.push_str("# TYPE consign_http_request_duration_seconds histogram\n");
        for ((route, method, outcome), s) in series.iter() {
            let labels = format!("route=\"{route}\",method=\"{method}\",outcome=\"{outcome}\"");
            for (i, bound) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "consign_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {}",
                    s.buckets[i]
                );
            }
            let _ = writeln!(
                out,
                "consign_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                s.count
            );
            let _ = writeln!(
                out,
                "consign_http_request_duration_seconds_sum{{{labels}}} {}",
                s.sum
            );
            let _ = writeln!(
                out,
                "consign_http_request_duration_seconds_count{{{labels}}} {}",
                s.count
            );
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
    let method = request.method().to_string();
    let mut response = next.call(request).await?;
    let route = response
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".into());
    let status = response.status();
    let outcome = match response.response().extensions().get::<Outcome>() {
        Some(Outcome(true)) => "ok".to_owned(),
        Some(Outcome(false)) if status.is_success() => "no".to_owned(),
        _ => status.as_u16().to_string(),
    };
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response
            .headers_mut()
            .insert(HeaderName::from_static("x-request-id"), value);
    }
    let seconds = started.elapsed().as_secs_f64();
    tracing::info!(target: "consign::access", request_id = %request_id, %method, %route, status = status.as_u16(), %outcome, ms = seconds * 1000.0, "request");
    if let Some(metrics) = metrics {
        metrics.record(route, method, outcome, seconds);
    }
    Ok(response)
}
