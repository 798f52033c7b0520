//! Operations routes at the root, without an API key: `/healthz`, `/readyz`, and `/metrics`,
//! which is served only where an operator enabled it (a bearer token, or its own listener).

use actix_web::{web, HttpRequest, HttpResponse};
use subtle::ConstantTimeEq;

use consign_service::ServiceError;

use crate::answer::Answer;
use crate::error::ApiError;
use crate::telemetry::RequestMetrics;
use crate::ApiState;

/// The process is up.
pub async fn healthz() -> HttpResponse {
    Answer::ok([]).into_response()
}

/// The database answers and every migration is applied (503 otherwise). Why not goes to the
/// log only: a database's error names its host and user, and this route takes no key.
pub async fn readyz(state: web::Data<ApiState>) -> Result<Answer, ApiError> {
    match state.consign.readiness().await {
        Ok(()) => Ok(Answer::ok([])),
        Err(error) => {
            let why = match &error {
                ServiceError::Unavailable(why) | ServiceError::Internal(why) => why.clone(),
                other => other.to_string(),
            };
            tracing::warn!(%why, "answered not ready");
            Err(ApiError::NotReady)
        }
    }
}

/// `/metrics` on the main listener: only with `Authorization: Bearer <CONSIGN_METRICS_TOKEN>`.
pub async fn metrics_with_token(
    request: HttpRequest,
    state: web::Data<ApiState>,
    metrics: web::Data<RequestMetrics>,
) -> Result<HttpResponse, ApiError> {
    let expected = state.settings.metrics_token.as_deref().unwrap_or_default();
    let given = request
        .headers()
        .get("Authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let matches = !expected.is_empty() && bool::from(given.as_bytes().ct_eq(expected.as_bytes()));
    if !matches {
        return Err(ApiError::Unauthorized);
    }
    Ok(metrics_text(&state, &metrics).await)
}

/// `/metrics` on its own listener (`CONSIGN_METRICS_LISTEN`), where reaching it is the access.
pub async fn metrics_open(
    state: web::Data<ApiState>,
    metrics: web::Data<RequestMetrics>,
) -> HttpResponse {
    metrics_text(&state, &metrics).await
}

/// The metrics, with the store's figures read again when they are older than a few seconds.
async fn metrics_text(state: &ApiState, metrics: &RequestMetrics) -> HttpResponse {
    let now = state.consign.now_millis();
    if metrics.claim_store_read(now) {
        match state.consign.stats().await {
            Ok(stats) => metrics.set_store_figures(Some(&stats)),
            Err(error) => {
                tracing::warn!(%error, "metrics: store figures unavailable");
                metrics.set_store_figures(None);
            }
        }
    }
    metrics.set_statements_sent(state.consign.statements_sent());
    metrics.set_writer_commits(state.consign.writer_commits());
    let mut out = String::with_capacity(4096);
    metrics.render(&mut out);
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(out)
}
