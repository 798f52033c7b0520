//! `API-Authorization` on everything under the base path, checked before routing.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, ResponseError};

use crate::error::ApiError;
use crate::ApiState;

/// Lets the request through with its key's id in the extensions, or answers 401 (503 when the
/// key store is unavailable) without touching anything else.
pub async fn require_api_key(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let Some(state) = request.app_data::<web::Data<ApiState>>().cloned() else {
        return Ok(request
            .into_response(ApiError::Unauthorized.error_response())
            .map_into_right_body());
    };
    if carries_valid_document_token(&request, &state) {
        return next
            .call(request)
            .await
            .map(ServiceResponse::map_into_left_body);
    }
    let key = request
        .headers()
        .get("API-Authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim()
        .to_owned();
    match state.consign.authenticate(&key).await {
        Ok(id) => {
            if let Some(wait) = over_rate_limit(&state, id) {
                return Ok(request
                    .into_response(ApiError::RateLimited(wait).error_response())
                    .map_into_right_body());
            }
            request.extensions_mut().insert(id);
            next.call(request)
                .await
                .map(ServiceResponse::map_into_left_body)
        }
        Err(error) => Ok(request
            .into_response(ApiError::from(error).error_response())
            .map_into_right_body()),
    }
}

/// A document URL whose `token` was signed for exactly this shipment and kind, and is still
/// valid, needs no API key (a warehouse prints it from the link, as with Centra's links).
fn carries_valid_document_token(request: &ServiceRequest, state: &ApiState) -> bool {
    if request.method() != actix_web::http::Method::GET {
        return false;
    }
    let Some(rest) = request
        .path()
        .strip_prefix(state.settings.base_path.as_str())
        .and_then(|p| p.strip_prefix("/documents/"))
    else {
        return false;
    };
    let Some((shipment, file)) = rest.split_once('/') else {
        return false;
    };
    let Some(kind) = crate::routes::documents::kind_of(file) else {
        return false;
    };
    form_urlencoded::parse(request.query_string().as_bytes())
        .find(|(name, _)| name == "token")
        .is_some_and(|(_, token)| {
            state
                .settings
                .documents
                .verify(shipment, kind.slug(), &token)
        })
}

/// Seconds to wait when this key has used up its requests for now.
fn over_rate_limit(state: &ApiState, key: consign_ports::ApiKeyId) -> Option<u64> {
    use governor::clock::{Clock, DefaultClock};
    let limiter = state.settings.rate_limit.as_ref()?;
    limiter.check_key(&key.0).err().map(|not_until| {
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
    })
}
