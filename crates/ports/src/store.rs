//! The order store port, shaped for the create-shipment saga: reserve, then settle, each step
//! one short transaction inside the adapter, and no transaction open while the gateway is called.

use async_trait::async_trait;
use consign_domain::{OrderError, OrderId, ShipmentError, ShipmentId, ShipmentRequest};

use crate::clock::Timestamp;
use crate::records::{
    CaptureAttempt, ImportedOrder, OrderImport, OrderQuery, OrderView, ShipmentDetails,
    ShipmentView,
};

/// Why a store call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The domain refused the request; nothing was written.
    #[error(transparent)]
    Rejected(#[from] ShipmentError),
    /// The order to import is invalid; nothing was written.
    #[error(transparent)]
    InvalidOrder(#[from] OrderError),
    /// An order with this id exists already.
    #[error("order already exists")]
    OrderExists(OrderId),
    /// No such shipment.
    #[error("shipment does not exist")]
    ShipmentNotFound(ShipmentId),
    /// The database is busy or unreachable: nothing was written; try again.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Anything else the database reported.
    #[error("storage error: {0}")]
    Internal(String),
}

/// What the reserve step wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// The shipment, in `CapturePending` (or `Uncaptured` without capture).
    pub shipment: ShipmentView,
    /// The capture attempt to send, when capture is on.
    pub attempt: Option<CaptureAttempt>,
}

/// The settled outcome of a capture attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettleOutcome {
    /// Captured: the shipment becomes `Captured`.
    Captured {
        /// Provider reference.
        reference: String,
    },
    /// Declined: the shipment is voided and its units and amount released.
    Declined {
        /// Provider code.
        code: String,
        /// Provider message.
        message: String,
    },
}

/// Orders, shipments and capture attempts.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait OrderStore: Send + Sync {
    /// Imports an order, assigning its id (when absent), line ids and customer id.
    async fn import_order(
        &self,
        order: OrderImport,
        now: Timestamp,
    ) -> Result<ImportedOrder, StoreError>;

    /// Reserve step, one transaction: lock the order, let the domain plan the shipment
    /// ([`consign_domain::Order::plan_shipment`]), write the shipment with its units reserved
    /// and, when it captures, a pending capture attempt with a stable idempotency key.
    async fn reserve_shipment(
        &self,
        order: OrderId,
        request: ShipmentRequest,
        details: ShipmentDetails,
        now: Timestamp,
    ) -> Result<Reservation, StoreError>;

    /// Settle step, one transaction: records the outcome of the attempt and moves the shipment
    /// to `Captured`, or voids it and releases its units and amount. Settling an attempt that is
    /// already settled changes nothing and answers the shipment as it is.
    async fn settle_capture(
        &self,
        attempt: &CaptureAttempt,
        outcome: SettleOutcome,
        now: Timestamp,
    ) -> Result<ShipmentView, StoreError>;

    /// Records that an attempt's outcome is still unknown (one more pass); after
    /// `review_after_passes` it and its shipment are flagged for review. Answers whether it
    /// needs review now. An attempt settled meanwhile is left alone.
    async fn record_unknown(
        &self,
        attempt: &CaptureAttempt,
        reason: &str,
        now: Timestamp,
        review_after_passes: u32,
    ) -> Result<bool, StoreError>;

    /// How many other attempts on the same order have no definite outcome yet.
    async fn other_open_captures(&self, attempt: &CaptureAttempt) -> Result<usize, StoreError>;

    /// Capture attempts without a definite outcome (pending, unknown, needing review) last
    /// touched before `before`, oldest first.
    async fn pending_captures(&self, before: Timestamp) -> Result<Vec<CaptureAttempt>, StoreError>;

    /// Orders matching `query`, oldest first, with their live shipments.
    async fn list_orders(&self, query: OrderQuery) -> Result<Vec<OrderView>, StoreError>;
}
