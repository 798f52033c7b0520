//! The HTTP edge's one error type: every failure becomes a status and a Centra-style answer here.

use actix_web::http::StatusCode;
use consign_domain::ShipmentError;
use consign_service::ServiceError;
use serde_json::{Map, Value};

use crate::answer::Answer;

/// Why a request was not answered `status: ok`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Decidable from the request alone (400), naming the field.
    #[error("{0}")]
    BadRequest(String),
    /// No valid API key (401).
    #[error("unauthorized")]
    Unauthorized,
    /// Unknown route (404).
    #[error("not found")]
    NotFound,
    /// Known route, other method (405).
    #[error("method not allowed")]
    MethodNotAllowed(&'static str),
    /// Body over the limit (413).
    #[error("request body is larger than {0} bytes")]
    TooLarge(usize),
    /// The API key used up its requests for now (429); seconds to wait.
    #[error("rate limit exceeded; retry later")]
    RateLimited(u64),
    /// A body that is not JSON by its Content-Type (415).
    #[error("Content-Type must be application/json")]
    UnsupportedMediaType,
    /// What the service said.
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl ApiError {
    /// The answer for this error; `order` (as sent) is echoed where Centra echoes it.
    pub fn into_answer(self, xml: bool, order: Option<Value>) -> Answer {
        let status = self.status();
        let mut fields = Map::new();
        fields.insert("status".into(), "no".into());
        fields.insert("msg".into(), self.to_string().into());
        if let Some(order) = order {
            fields.insert("order".into(), order);
        }
        let mut answer = Answer::new(status, fields).xml(xml);
        if let ApiError::RateLimited(wait) = &self {
            answer = answer.retry_after(*wait);
        }
        match self {
            ApiError::MethodNotAllowed(allow) => answer = answer.header("Allow", allow),
            ApiError::Service(ServiceError::CaptureUnknown(shipment)) => {
                answer
                    .fields
                    .insert("shipment".into(), shipment.to_string().into());
                answer = answer.header("Retry-After", "5");
            }
            ApiError::Service(ServiceError::Rejected(ShipmentError::CaptureInProgress(_))) => {
                answer = answer.header("Retry-After", "2");
            }
            ApiError::Service(ServiceError::Unavailable(why)) => {
                tracing::warn!(%why, "answered 503");
                answer = answer.header("Retry-After", "1");
            }
            ApiError::Service(ServiceError::Internal(why)) => {
                tracing::error!(%why, "internal error");
            }
            _ => {}
        }
        answer
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Service(error) => match error {
                ServiceError::Rejected(
                    ShipmentError::NoProducts
                    | ShipmentError::ZeroQuantity(_)
                    | ShipmentError::DuplicateLine(_),
                )
                | ServiceError::InvalidOrder(_)
                | ServiceError::UnknownProvider(_) => StatusCode::BAD_REQUEST,
                // Centra answers state-dependent refusals with 200: its clients throw on any
                // other status and would lose `msg`.
                // A change while the shipment's capture is in flight: retry once it settled.
                // A change the state machine or the order's counters do not allow now.
                ServiceError::Rejected(
                    ShipmentError::CaptureInProgress(_)
                    | ShipmentError::Illegal(_)
                    | ShipmentError::DoesNotFit(_),
                ) => StatusCode::CONFLICT,
                ServiceError::Rejected(_)
                | ServiceError::OrderNotFound(_)
                | ServiceError::OrderExists(_)
                | ServiceError::ShipmentNotFound(_)
                | ServiceError::CaptureDeclined(_)
                | ServiceError::CaptureFailed(_) => StatusCode::OK,
                ServiceError::NoInvoice(_) => StatusCode::NOT_FOUND,
                ServiceError::Unauthorized => StatusCode::UNAUTHORIZED,
                ServiceError::CaptureUnknown(_) | ServiceError::Unavailable(_) => {
                    StatusCode::SERVICE_UNAVAILABLE
                }
                ServiceError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            },
        }
    }
}
