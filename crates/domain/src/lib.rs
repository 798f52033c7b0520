#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod error;
mod ids;
mod lookup;
mod money;
mod order;
mod plan;
mod returns;
mod shipment;
mod state;

pub use error::{OrderError, ShipmentError};
pub use ids::{InvalidShipmentId, LineId, OrderId, ReturnId, ShipmentId};
pub use lookup::CaptureFinding;
pub use money::{Currency, Money, MoneyError};
pub use order::{LineMove, Order, OrderLine, OrderProgress, PaymentAuthorization, TaxRate};
pub use plan::{CapturePlan, Providers, ShipmentLine, ShipmentPlan, ShipmentRequest};
pub use returns::{
    Cost, NotReturned, RefundEvent, RefundStart, RefundState, Return, ReturnError, ReturnPlan,
    ReturnRequest, Returned,
};
pub use shipment::{
    CaptureOrigin, CaptureStart, Completion, Settlement, Shipment, ShipmentChange, ShipmentFlags,
};
pub use state::{IllegalTransition, ShipmentEvent, ShipmentState, ALL_EVENTS, ALL_STATES};
