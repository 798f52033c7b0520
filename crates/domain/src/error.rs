//! The errors the domain produces (money's own is in `money.rs`). Each message is the text a
//! client reads in `msg`. Outcomes of lookups (an unknown order or shipment) are the store's and
//! the service's, not the domain's.

use crate::ids::{LineId, OrderId, ShipmentId};
use crate::money::MoneyError;
use crate::state::IllegalTransition;

/// Why an order could not be built, from an import or from what a store kept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    /// An order needs at least one line.
    #[error("order has no products")]
    NoLines,
    /// A line with a quantity of zero.
    #[error("product {0} has no quantity")]
    ZeroQuantity(String),
    /// Two lines with the same id.
    #[error("line {0} appears more than once")]
    DuplicateLine(LineId),
    /// A price, fee or authorised amount below zero.
    #[error("amounts must not be negative")]
    NegativeAmount,
    /// The authorised amount is less than the order total.
    #[error("payment amount {authorized} does not cover the order total {total}")]
    AuthorizationTooSmall {
        /// What the payment authorises, as written.
        authorized: String,
        /// The order total, as written.
        total: String,
    },
    /// Counters that no sequence of shipments can produce (a line's units in capture above its
    /// allocated units, allocated above ordered, a committed amount outside the total, a
    /// shipment number of 0).
    #[error("order counters are inconsistent: {0}")]
    Inconsistent(String),
    /// A money error while totalling the order (overflow, another currency).
    #[error(transparent)]
    Money(#[from] MoneyError),
}

/// Why a shipment cannot be created, captured or changed. Nothing was changed when it is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShipmentError {
    /// A shipment must hold at least one unit.
    #[error("products must name at least one line")]
    NoProducts,
    /// The same line twice in one request.
    #[error("line {0} appears more than once")]
    DuplicateLine(LineId),
    /// A quantity below one.
    #[error("quantity for line {0} must be at least 1")]
    ZeroQuantity(LineId),
    /// A line that is not on this order.
    #[error("line {line} does not exist on order {order}")]
    UnknownLine {
        /// The order asked for.
        order: OrderId,
        /// The line that is not on it.
        line: LineId,
    },
    /// More units than are still shippable on a line.
    #[error("line {line}: requested {requested}, but only {shippable} of {ordered} can still be shipped")]
    NotEnoughShippable {
        /// The line.
        line: LineId,
        /// Units asked for.
        requested: u32,
        /// Units not yet in a live shipment.
        shippable: u32,
        /// Units ordered.
        ordered: u32,
    },
    /// Capture requested on an order that carries no payment authorisation.
    #[error("order has no payment authorisation")]
    NoPaymentAuthorization,
    /// The order's authorisation is held by a provider this instance does not capture with.
    #[error("payment provider {provider:?} is not enabled here; enabled providers: {enabled}")]
    ProviderNotEnabled {
        /// The order's provider.
        provider: String,
        /// The enabled ones.
        enabled: String,
    },
    /// The capture would take more than the authorisation still covers.
    #[error("capture exceeds the authorised amount")]
    ExceedsAuthorization,
    /// An edit would leave a shipment without lines.
    #[error("a shipment needs at least one line; delete it instead")]
    EmptyShipment,
    /// Lines of a captured shipment cannot change (Centra's text).
    #[error("shipment is captured and can not be updated")]
    ShipmentCaptured,
    /// Lines of a sent shipment cannot change (Centra's text).
    #[error("shipment is sent and can not be updated")]
    ShipmentSent,
    /// A captured shipment cannot be deleted (Centra's text).
    #[error("shipment has invoices or creditnotes and could not be deleted.")]
    NotDeletable,
    /// The shipment's capture is in flight: changes wait until it settles.
    #[error("the shipment's capture is in progress; retry shortly")]
    CaptureInProgress(ShipmentId),
    /// A capture settled by hand must be one recovery flagged for review.
    #[error("shipment {0} has no capture waiting for review; only those may be settled by hand")]
    NotUnderReview(ShipmentId),
    /// A change the state machine does not allow (a voided or deleted shipment, say).
    #[error(transparent)]
    Illegal(#[from] IllegalTransition),
    /// A change that does not fit the order it is applied to (it was decided on other counters):
    /// applying it would break `in_capture <= allocated <= quantity` or the committed amount.
    #[error("the change does not fit the order's counters: {0}")]
    DoesNotFit(String),
    /// A money error (overflow) while computing the amount.
    #[error(transparent)]
    Money(#[from] MoneyError),
}
