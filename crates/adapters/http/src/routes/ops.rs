//! Operations routes at the root, without a key: `/healthz`, `/readyz`, `/metrics`.

use std::fmt::Write;

use actix_web::{web, HttpResponse};

use crate::answer::Answer;
use crate::error::ApiError;
use crate::telemetry::RequestMetrics;
use crate::ApiState;

/// The process is up.
pub async fn healthz() -> HttpResponse {
    Answer::ok([]).into_response()
}

/// The database answers and every migration is applied (503 otherwise, saying why).
pub async fn readyz(state: web::Data<ApiState>) -> Result<Answer, ApiError> {
    match state.consign.readiness().await {
        Ok(()) => Ok(Answer::ok([])),
        Err(error) => Err(ApiError::NotReady(error.to_string())),
    }
}

/// Prometheus text: requests and latency by route and outcome, captures by state, shipments
/// needing review, outbox depth, connection pool.
pub async fn metrics(
    state: web::Data<ApiState>,
    requests: web::Data<RequestMetrics>,
) -> HttpResponse {
    let mut out = String::with_capacity(4096);
    requests.render(&mut out);
    match state.consign.stats().await {
        Ok(stats) => {
            out.push_str("# HELP consign_capture_attempts Capture attempts by state.\n# TYPE consign_capture_attempts gauge\n");
            for state in ["pending", "unknown", "needs_review", "succeeded", "failed"] {
                let n = stats
                    .attempts_by_state
                    .iter()
                    .find(|(s, _)| s == state)
                    .map_or(0, |(_, n)| *n);
                let _ = writeln!(out, "consign_capture_attempts{{state=\"{state}\"}} {n}");
            }
            let _ = writeln!(out, "# HELP consign_shipments_needing_review Shipments whose capture needs review.\n# TYPE consign_shipments_needing_review gauge\nconsign_shipments_needing_review {}", stats.shipments_needing_review);
            let _ = writeln!(out, "# HELP consign_outbox_depth Shipping confirmations not yet sent.\n# TYPE consign_outbox_depth gauge\nconsign_outbox_depth {}", stats.outbox_depth);
            let _ = writeln!(out, "# HELP consign_db_pool_connections Connection pool.\n# TYPE consign_db_pool_connections gauge\nconsign_db_pool_connections{{state=\"in_use\"}} {}\nconsign_db_pool_connections{{state=\"waiting\"}} {}\nconsign_db_pool_connections{{state=\"size\"}} {}", stats.pool_in_use, stats.pool_waiting, stats.pool_size);
            let _ = writeln!(out, "# HELP consign_up Whether the database answered this scrape.\n# TYPE consign_up gauge\nconsign_up 1");
        }
        Err(error) => {
            tracing::warn!(%error, "metrics: store figures unavailable");
            out.push_str("# HELP consign_up Whether the database answered this scrape.\n# TYPE consign_up gauge\nconsign_up 0\n");
        }
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(out)
}
