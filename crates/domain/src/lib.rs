//! # consign-domain
//!
//! The pure model behind Consign's shipment workflow: money in integer minor units, orders and
//! their lines, shipments, the shipment state machine and the capture rule that makes partial
//! captures add up exactly to the order total.
//!
//! No I/O, no async, no framework: stores and gateways live in other crates and call into this
//! one. Every rule here is a plain function that either answers a plan or a [`ShipmentError`]
//! whose message is the text a Centra client reads, and that changes nothing when it refuses.
#![deny(missing_docs)]

mod error;
mod ids;
mod money;
mod order;
mod shipment;

pub use error::{OrderError, ShipmentError};
pub use ids::{InvalidShipmentId, LineId, OrderId, ShipmentId};
pub use money::{Currency, Money, MoneyError};
pub use order::{Order, OrderLine, PaymentAuthorization, TaxRate};
pub use shipment::{
    CapturePlan, IllegalTransition, ShipmentEvent, ShipmentLine, ShipmentPlan, ShipmentRequest,
    ShipmentState,
};
