//! The service layer's errors; the HTTP adapter maps each to a status and a Centra message.

use consign_domain::{OrderError, OrderId, ReturnError, ReturnId, ShipmentError, ShipmentId};
use consign_ports::StoreError;

/// Why a use case did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceError {
    /// The domain refused the request against stored state; nothing changed.
    #[error(transparent)]
    Rejected(#[from] ShipmentError),
    /// The order to import is invalid; nothing changed.
    #[error(transparent)]
    InvalidOrder(#[from] OrderError),
    /// The order's payment names a provider this instance has no gateway enabled for.
    #[error("unknown payment provider {provider:?}; enabled providers: {enabled}")]
    UnknownProvider {
        /// The provider the order names.
        provider: String,
        /// The enabled ones.
        enabled: String,
    },
    /// No such order (Centra's text).
    #[error("order does not exist")]
    OrderNotFound(OrderId),
    /// Import of an order id that exists.
    #[error("order already exists")]
    OrderExists(OrderId),
    /// No such shipment.
    #[error("shipment does not exist")]
    ShipmentNotFound(ShipmentId),
    /// The shipment has no invoice (it is not captured).
    #[error("invoice does not exist")]
    NoInvoice(ShipmentId),
    /// The return has no credit note (it is not refunded, or not of that shipment).
    #[error("credit note does not exist")]
    NoCreditNote(ReturnId),
    /// The provider definitely declined: no shipment was left behind.
    #[error("can not capture order")]
    CaptureDeclined(OrderId),
    /// Complete or capture: the provider declined; nothing else from the request was applied.
    #[error("capture failed")]
    CaptureFailed(ShipmentId),
    /// The capture's outcome is not known yet; the shipment stays pending and recovery settles it.
    #[error("capture outcome unknown, retry later; shipment {0} is pending")]
    CaptureUnknown(ShipmentId),
    /// The domain refused the return or its refund; nothing changed.
    #[error(transparent)]
    ReturnRejected(#[from] ReturnError),
    /// A retry with the client's idempotency key asks for something else than the request that
    /// created with it: another order or other lines, another shipment to return from.
    #[error("idempotency key reused with a different request")]
    IdempotencyKeyReused,
    /// No such return (Centra's message, from its Update return page).
    #[error("Return with id={0} does not exist")]
    ReturnNotFound(ReturnId),
    /// An amount that does not fit the order's currency (too many decimals, say).
    #[error("field {field}: {why}")]
    InvalidAmount {
        /// The request's field.
        field: &'static str,
        /// Why.
        why: String,
    },
    /// The provider declined the refund; the return stays, not completed.
    #[error("refund declined: {message}")]
    RefundDeclined {
        /// The return as it is now.
        view: Box<consign_ports::ReturnView>,
        /// The provider's message.
        message: String,
    },
    /// The refund's outcome is not known yet; it stays pending and recovery settles it.
    #[error("refund outcome unknown, retry later; return {0} is pending")]
    RefundUnknown(ReturnId),
    /// An operator's settlement found the capture or refund already settled (by recovery, or
    /// by another operator at the same time) otherwise than this finding says: another state,
    /// or the same one with another reference. Nothing changed.
    #[error("{what} was settled meanwhile, as {now}; this finding changed nothing")]
    SettledOtherwise {
        /// What was settled: `shipment 72-1`, `return 5's refund`.
        what: String,
        /// How it stands: its state, and its reference when it has one.
        now: String,
    },
    /// No valid API key.
    #[error("unauthorized")]
    Unauthorized,
    /// The database is busy or unreachable; nothing changed.
    #[error("service unavailable, retry later")]
    Unavailable(String),
    /// A fault on our side.
    #[error("internal error")]
    Internal(String),
}

impl From<StoreError> for ServiceError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Rejected(e) => ServiceError::Rejected(e),
            StoreError::InvalidOrder(e) => ServiceError::InvalidOrder(e),
            StoreError::OrderExists(id) => ServiceError::OrderExists(id),
            StoreError::OrderNotFound(id) => ServiceError::OrderNotFound(id),
            StoreError::ShipmentNotFound(id) => ServiceError::ShipmentNotFound(id),
            StoreError::ReturnRejected(e) => ServiceError::ReturnRejected(e),
            StoreError::ReturnNotFound(id) => ServiceError::ReturnNotFound(id),
            StoreError::Unavailable(why) => ServiceError::Unavailable(why),
            StoreError::Internal(why) => ServiceError::Internal(why),
        }
    }
}
