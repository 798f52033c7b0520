//! The errors of orders and shipments (money's own is in `money.rs`). Each message is the text a
//! client reads in `msg`.

use crate::ids::{LineId, OrderId, ShipmentId};
use crate::money::MoneyError;

/// Why an order could not be built from what was imported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    /// An order needs at least one line.
    #[error("order has no products")]
    NoLines,
    /// A line with a quantity of zero.
    #[error("product {0} has no quantity")]
    ZeroQuantity(String),
    /// The authorised amount is less than the order total.
    #[error("payment amount {authorized} does not cover the order total {total}")]
    AuthorizationTooSmall {
        /// What the payment authorises, as written.
        authorized: String,
        /// The order total, as written.
        total: String,
    },
    /// A money error while totalling the order.
    #[error(transparent)]
    Money(#[from] MoneyError),
}

/// Why a shipment cannot be created, captured or changed. Nothing was changed when it is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShipmentError {
    /// The seed's text for an unknown order.
    #[error("order does not exist")]
    OrderNotFound(OrderId),
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
    /// The capture would take more than the authorisation still covers.
    #[error("capture exceeds the authorised amount")]
    ExceedsAuthorization,
    /// An edit would leave a shipment without lines.
    #[error("a shipment needs at least one line; delete it instead")]
    EmptyShipment,
    /// No such shipment (or not on the order named).
    #[error("shipment does not exist")]
    ShipmentNotFound(ShipmentId),
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
    /// A money error (overflow) while computing the amount.
    #[error(transparent)]
    Money(#[from] MoneyError),
}
