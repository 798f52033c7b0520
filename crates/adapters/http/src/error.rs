//! The HTTP edge's one error type. Every answer that is not `status: ok` is built here, in
//! [`ApiError`]'s `ResponseError` implementation: handlers, extractors and middleware only say
//! which error it is (and, for a request that named them, in which format and with what echo).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use consign_domain::{RefundState, ReturnError, ShipmentError};
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
    /// A document, or the shipment it belongs to, that does not exist (404).
    #[error("{0}")]
    NoDocument(&'static str),
    /// Known route, other method (405).
    #[error("method not allowed")]
    MethodNotAllowed(&'static str),
    /// Body over the limit (413).
    #[error("request body is larger than {0} bytes")]
    TooLarge(usize),
    /// Too many or too large headers (431).
    #[error("request headers exceed {0} headers or {1} bytes")]
    HeadersTooLarge(usize, usize),
    /// The API key used up its requests for now (429); seconds to wait.
    #[error("rate limit exceeded; retry later")]
    RateLimited(u64),
    /// A body that is not JSON by its Content-Type (415).
    #[error("Content-Type must be application/json")]
    UnsupportedMediaType,
    /// An idempotency key reused with another request (422).
    #[error("idempotency key reused with a different request")]
    IdempotencyKeyReused,
    /// The first request with this idempotency key is still running (409).
    #[error("a request with this idempotency key is still in progress; retry shortly")]
    IdempotencyKeyInFlight,
    /// The database does not answer or lacks migrations (503); why is logged, not answered.
    #[error("not ready: the database does not answer, or its migrations are not applied")]
    NotReady,
    /// What the service said.
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// An error answered in the request's format, echoing what the request named.
    #[error("{error}")]
    Answered {
        /// The error.
        error: Box<ApiError>,
        /// Answer in XML.
        xml: bool,
        /// Fields echoed after `msg` (`order`, `shipment`).
        echo: Map<String, Value>,
    },
}

impl ApiError {
    /// This error answered as XML when `xml`, echoing `echo` (Centra echoes the `order` and
    /// `shipment` a request named).
    pub fn answered(self, xml: bool, echo: Map<String, Value>) -> ApiError {
        match self {
            ApiError::Answered {
                error,
                echo: mut first,
                ..
            } => {
                for (name, value) in echo {
                    first.entry(name).or_insert(value);
                }
                ApiError::Answered {
                    error,
                    xml,
                    echo: first,
                }
            }
            error => ApiError::Answered {
                error: Box::new(error),
                xml,
                echo,
            },
        }
    }

    /// The error itself, without the answer's format.
    fn kind(&self) -> &ApiError {
        match self {
            ApiError::Answered { error, .. } => error.kind(),
            error => error,
        }
    }

    /// The answer: the status, `{"status":"no","msg":...}` plus any echo, and the headers a
    /// client needs to retry.
    fn answer(&self) -> Answer {
        let (xml, echo) = match self {
            ApiError::Answered { xml, echo, .. } => (*xml, Some(echo)),
            _ => (false, None),
        };
        let error = self.kind();
        let mut fields = Map::new();
        fields.insert("status".into(), "no".into());
        fields.insert("msg".into(), error.to_string().into());
        for (name, value) in echo.into_iter().flatten() {
            fields.insert(name.clone(), value.clone());
        }
        let mut answer = Answer::new(error.status(), fields).xml(xml);
        match error {
            ApiError::RateLimited(wait) => answer = answer.retry_after(*wait),
            ApiError::MethodNotAllowed(allow) => answer = answer.header("Allow", allow),
            ApiError::IdempotencyKeyInFlight => answer = answer.retry_after(1),
            ApiError::Service(ServiceError::CaptureUnknown(shipment)) => {
                answer
                    .fields
                    .insert("shipment".into(), shipment.to_string().into());
                answer = answer.retry_after(5);
            }
            // Centra's capture and complete answer a failed capture with its order and shipment,
            // whichever of them the request named.
            ApiError::Service(ServiceError::CaptureFailed(shipment)) => {
                let fields = &mut answer.fields;
                fields
                    .entry("order")
                    .or_insert_with(|| shipment.order.0.into());
                fields
                    .entry("shipment")
                    .or_insert_with(|| shipment.to_string().into());
            }
            ApiError::Service(ServiceError::RefundUnknown(id)) => {
                answer.fields.insert("return".into(), id.0.into());
                answer = answer.retry_after(5);
            }
            ApiError::Service(ServiceError::RefundDeclined { view, .. }) => {
                answer
                    .fields
                    .insert("return".into(), crate::render::return_object(view, None));
            }
            ApiError::Service(ServiceError::ReturnRejected(ReturnError::NothingReturnable(
                left_out,
            ))) => {
                let left_out: Vec<Value> = left_out
                    .iter()
                    .map(|n| serde_json::json!({"lineId": n.line_id.to_string(), "msg": n.msg}))
                    .collect();
                answer
                    .fields
                    .insert("notReturned".into(), Value::Array(left_out));
            }
            ApiError::Service(ServiceError::Rejected(ShipmentError::CaptureInProgress(_))) => {
                answer = answer.retry_after(2);
            }
            // A refund in flight settles within seconds (recovery replays it); one that needs
            // review waits for a person, so no retry time is promised.
            ApiError::Service(ServiceError::ReturnRejected(ReturnError::RefundNotDue(state)))
                if *state == RefundState::Pending.as_str() =>
            {
                answer = answer.retry_after(2);
            }
            ApiError::Service(ServiceError::Unavailable(why)) => {
                tracing::warn!(%why, "answered 503");
                answer = answer.retry_after(1);
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
            ApiError::NotFound | ApiError::NoDocument(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::HeadersTooLarge(..) => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::IdempotencyKeyInFlight => StatusCode::CONFLICT,
            ApiError::NotReady => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Answered { error, .. } => error.status(),
            ApiError::Service(error) => match error {
                ServiceError::Rejected(
                    ShipmentError::NoProducts
                    | ShipmentError::ZeroQuantity(_)
                    | ShipmentError::DuplicateLine(_),
                )
                | ServiceError::ReturnRejected(ReturnError::DuplicateLine(_))
                | ServiceError::InvalidOrder(_)
                | ServiceError::UnknownProvider { .. } => StatusCode::BAD_REQUEST,
                // A change the state machine or the order's counters do not allow now, such as
                // one while the shipment's capture is in flight: retry once it settled.
                ServiceError::Rejected(
                    ShipmentError::CaptureInProgress(_)
                    | ShipmentError::Illegal(_)
                    | ShipmentError::DoesNotFit(_),
                ) => StatusCode::CONFLICT,
                // A refund still in flight (retry once it settled); an operator's finding on
                // something settled meanwhile (no route answers it yet).
                ServiceError::ReturnRejected(
                    ReturnError::RefundNotDue(_) | ReturnError::DoesNotFit(_),
                )
                | ServiceError::SettledOtherwise { .. } => StatusCode::CONFLICT,
                // Centra answers state-dependent refusals with 200: its clients throw on any
                // other status and would lose `msg`.
                ServiceError::Rejected(_)
                | ServiceError::OrderNotFound(_)
                | ServiceError::OrderExists(_)
                | ServiceError::ShipmentNotFound(_)
                | ServiceError::CaptureDeclined(_)
                | ServiceError::CaptureFailed(_)
                | ServiceError::ReturnRejected(_)
                | ServiceError::ReturnNotFound(_)
                | ServiceError::InvalidAmount { .. }
                | ServiceError::RefundDeclined { .. } => StatusCode::OK,
                ServiceError::NoInvoice(_) | ServiceError::NoCreditNote(_) => StatusCode::NOT_FOUND,
                ServiceError::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
                ServiceError::Unauthorized => StatusCode::UNAUTHORIZED,
                ServiceError::CaptureUnknown(_)
                | ServiceError::RefundUnknown(_)
                | ServiceError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                ServiceError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            },
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status()
    }

    fn error_response(&self) -> HttpResponse {
        self.answer().into_response()
    }
}
