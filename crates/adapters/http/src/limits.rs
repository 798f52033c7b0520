//! Header limits, checked before anything else: at most 64 headers and 16 KiB of them.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use serde_json::Map;

use crate::answer::Answer;

/// Most headers one request may carry.
pub const MAX_HEADERS: usize = 64;
/// Most bytes of header names and values one request may carry.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Refuses requests whose headers are too many or too large with 431.
pub async fn header_limits(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let headers = request.headers();
    let bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if headers.len() > MAX_HEADERS || bytes > MAX_HEADER_BYTES {
        let mut fields = Map::new();
        fields.insert("status".into(), "no".into());
        fields.insert(
            "msg".into(),
            format!("request headers exceed {MAX_HEADERS} headers or {MAX_HEADER_BYTES} bytes")
                .into(),
        );
        let response =
            Answer::new(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, fields).into_response();
        return Ok(request.into_response(response).map_into_right_body());
    }
    next.call(request)
        .await
        .map(ServiceResponse::map_into_left_body)
}
