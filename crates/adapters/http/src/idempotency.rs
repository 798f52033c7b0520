//! `Idempotency-Key` on POST, PUT and DELETE: the answer of an executed request (200 or 400) is
//! stored, scoped to the API key, and replayed with `Idempotent-Replayed: true`; the same key
//! with a different request answers 422, and while the first is still running 409.
//!
//! Answers that are not final (401, 409, 413, 415, 429, 503 such as "capture outcome unknown")
//! release the key, so a retry runs again: create shipment then finds the shipment its first run
//! made (the key is recorded on it) and drives that one, never a second.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpResponse, ResponseError};
use consign_ports::{ApiKeyId, IdempotencyBegin, StoredAnswer};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::ApiState;

/// The client's key for this request, scoped to its API key; handlers that create things record
/// it so a retry finds what the first run created.
#[derive(Debug, Clone)]
pub struct RequestKey(pub String);

/// The middleware.
pub async fn idempotency(
    mut request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let changes_state = matches!(
        *request.method(),
        Method::POST | Method::PUT | Method::DELETE
    );
    let key = request
        .headers()
        .get("Idempotency-Key")
        .map(|v| v.to_str().map(str::to_owned).unwrap_or_default());
    let (Some(key), true) = (key, changes_state) else {
        return next
            .call(request)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    let answer =
        |request: ServiceRequest, response: HttpResponse| Ok(request.into_response(response));
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        let response = ApiError::BadRequest(
            "header Idempotency-Key: must be 1 to 255 printable ASCII characters".into(),
        )
        .error_response();
        return answer(request, response);
    }
    let (Some(state), Some(api_key)) = (
        request.app_data::<web::Data<ApiState>>().cloned(),
        request.extensions().get::<ApiKeyId>().copied(),
    ) else {
        return answer(request, ApiError::Unauthorized.error_response());
    };
    let payload = request.extract::<web::Payload>().await?;
    let body = match payload.to_bytes_limited(state.settings.max_body).await {
        Ok(Ok(body)) => body,
        Ok(Err(_)) => {
            let response = ApiError::TooLarge(state.settings.max_body).error_response();
            return answer(request, response);
        }
        Err(e) => {
            let error = ApiError::BadRequest(format!("could not read the body: {e}"));
            return answer(request, error.error_response());
        }
    };
    // The same request: method, path with query, and body bytes.
    let mut digest = Sha256::new();
    digest.update(request.method().as_str().as_bytes());
    digest.update(b" ");
    digest.update(request.uri().to_string().as_bytes());
    digest.update(b"\n");
    digest.update(&body);
    let fingerprint: String = digest
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let consign = &state.consign;
    match consign.begin_idempotent(api_key, &key, &fingerprint).await {
        Ok(IdempotencyBegin::Replay(stored)) => {
            let response =
                HttpResponse::build(StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK))
                    .content_type(stored.content_type)
                    .insert_header(("Idempotent-Replayed", "true"))
                    .body(stored.body);
            answer(request, response)
        }
        Ok(IdempotencyBegin::Mismatch) => {
            answer(request, ApiError::IdempotencyKeyReused.error_response())
        }
        Ok(IdempotencyBegin::InFlight) => {
            answer(request, ApiError::IdempotencyKeyInFlight.error_response())
        }
        Err(error) => answer(request, ApiError::from(error).error_response()),
        Ok(IdempotencyBegin::New) => {
            request
                .extensions_mut()
                .insert(RequestKey(format!("{}:{key}", api_key.0)));
            request.set_payload(Payload::from(body));
            let response = next.call(request).await?.map_into_boxed_body();
            let status = response.status();
            if status != StatusCode::OK && status != StatusCode::BAD_REQUEST {
                if let Err(error) = consign.release_idempotent(api_key, &key).await {
                    tracing::warn!(%error, "could not release an idempotency key");
                }
                return Ok(response);
            }
            let (http_request, http_response) = response.into_parts();
            let content_type = http_response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("application/json")
                .to_owned();
            let bytes = actix_web::body::to_bytes(http_response.into_body())
                .await
                .unwrap_or_default();
            let body = String::from_utf8_lossy(&bytes).into_owned();
            let stored = StoredAnswer {
                status: status.as_u16(),
                content_type: content_type.clone(),
                body: body.clone(),
            };
            if let Err(error) = consign.finish_idempotent(api_key, &key, stored).await {
                // The work is done; only the replay record is missing. Releasing lets a retry
                // find the created shipment by its key instead of failing.
                tracing::warn!(%error, "could not store an idempotent answer");
                let _ = consign.release_idempotent(api_key, &key).await;
            }
            let rebuilt = HttpResponse::build(status)
                .content_type(content_type)
                .body(body);
            Ok(ServiceResponse::new(http_request, rebuilt))
        }
    }
}
