//! # consign-service
//!
//! Consign's use cases, written only against `consign-domain` and `consign-ports`: import an
//! order, create a shipment through the reserve -> capture -> settle saga, recover captures
//! whose outcome was unknown, list orders, and manage API keys. Adapters are handed in as trait
//! objects by the server crate.
#![deny(missing_docs)]

mod capture_lookup;
mod consign;
mod create_shipment;
mod documents;
mod error;
mod failpoints;
mod gateways;
mod idempotency;
mod import_order;
mod key_cache;
mod key_window;
mod keys;
#[cfg(any(test, feature = "test-support"))]
pub mod log_capture;
mod order_parts;
mod recovery;
mod refund_review;
mod returns;
mod review;
#[cfg(test)]
mod test_support;
mod workflow;

pub use consign::{Consign, Ports, StoreSettings};
pub use create_shipment::REVIEW_AFTER_PASSES;
pub use documents::OutboxReport;
pub use error::ServiceError;
pub use failpoints::install_fail_points_from_env;
pub use gateways::Gateways;
pub use idempotency::{KEEP_ANSWERS_MILLIS, TAKEOVER_AFTER_MILLIS};
pub use key_window::{KEY_WINDOW_MILLIS, REPLAY_MARGIN_MILLIS};
pub use order_parts::{OrderParts, FIRST_PART, ORDERS_PER_PART, SHIPMENTS_PER_PART};
pub use recovery::RecoveryReport;
pub use refund_review::RefundFinding;
pub use returns::{
    CostAsk, RefundRecoveryReport, RefundResult, ReturnAsk, ReturnOutcome, SETTLING_REST_MAX_MILLIS,
};
pub use review::{HandSettlement, SETTLED_BY_HAND};
