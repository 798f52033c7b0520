//! The order store port, shaped for the create-shipment saga: reserve, then settle, each step
//! one short transaction inside the adapter, and no transaction open while the gateway is called.

use async_trait::async_trait;
use consign_domain::{OrderError, OrderId, Providers, ShipmentError, ShipmentId, ShipmentRequest};

use crate::clock::Timestamp;
use crate::records::{
    CaptureAttempt, CaptureTally, FinalCaptureStanding, ImportedOrder, OrderImport, OrderQuery,
    OrderView, ShipmentChanges, ShipmentDetails, ShipmentListing, ShipmentQuery, ShipmentView,
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
    /// No such order.
    #[error("order does not exist")]
    OrderNotFound(OrderId),
    /// No such shipment.
    #[error("shipment does not exist")]
    ShipmentNotFound(ShipmentId),
    /// The domain refused the return or refund; nothing was written.
    #[error(transparent)]
    ReturnRejected(#[from] consign_domain::ReturnError),
    /// No such return.
    #[error("Return with id={0} does not exist")]
    ReturnNotFound(consign_domain::ReturnId),
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

/// What an operator watches: the capture attempts still open, the review queue, the outbox, the
/// connection pool. Each figure counts work in flight, never the history, so reading them costs
/// the same however long the service has run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Capture attempts neither succeeded nor failed, by state (`pending`, `unknown`,
    /// `needs_review`); a state with none is left out.
    pub open_attempts_by_state: Vec<(String, i64)>,
    /// Shipments whose capture needs an operator's review.
    pub shipments_needing_review: i64,
    /// Refund attempts neither refunded nor declined, by state (`pending`, `settling`: accepted
    /// by the provider and not made yet, `unknown`, `needs_review`); a state with none is left
    /// out.
    pub open_refunds_by_state: Vec<(String, i64)>,
    /// Shipping confirmations not yet sent.
    pub outbox_depth: i64,
    /// Confirmations the mail server refused for good, never sent (they stay until an
    /// operator looks at them: each is a customer who was not told).
    pub outbox_refused: i64,
    /// Pooled connections in use.
    pub pool_in_use: u32,
    /// Requests waiting for a connection.
    pub pool_waiting: u32,
    /// Pool size.
    pub pool_size: u32,
}

/// What starting the capture of an existing shipment found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BeginCapture {
    /// Already captured: nothing to do, never captured twice.
    AlreadyCaptured(ShipmentView),
    /// A capture attempt was written (the shipment is now capture-pending); send it.
    Started(CaptureAttempt),
}

/// Where the capture that a complete or capture request started stands, found by the request's
/// idempotency key ([`OrderStore::capture_by_request_key`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyedCapture {
    /// Not settled yet: to be driven to its outcome with its own provider key.
    Open(CaptureAttempt),
    /// Captured.
    Captured,
    /// Declined: the shipment was left uncaptured.
    Declined,
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

/// What settling a capture attempt answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureSettled {
    /// The shipment as stored after the settle.
    pub shipment: ShipmentView,
    /// Whether this attempt stands captured: by this settle, or by an earlier settle of the same
    /// attempt (a replay, or a concurrent settle that won). `false` when the attempt was settled
    /// as not captured before: the provider's decline, or an operator's finding. The shipment
    /// alone cannot say so: a later attempt may have captured it since.
    pub attempt_captured: bool,
}

/// Orders, shipments and capture attempts.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait OrderStore: Send + Sync {
    /// Imports an order, assigning its id (when absent), line ids and customer id. With a
    /// `request_key` (the client's idempotency key, scoped to its API key) the key is recorded
    /// in the import's transaction, and an import whose key already imported an order answers
    /// that order instead, as it is now: the caller checks it is what was asked.
    async fn import_order(
        &self,
        order: OrderImport,
        request_key: Option<String>,
        now: Timestamp,
    ) -> Result<ImportedOrder, StoreError>;

    /// Reserve step, one transaction: lock the order, let the domain plan the shipment
    /// ([`consign_domain::Order::plan_shipment_with`], where only `providers` may capture),
    /// write the shipment with its units reserved and, when it captures, a pending capture
    /// attempt with a stable idempotency key.
    ///
    /// `request_key` (the client's idempotency key, scoped to its API key) is recorded on the
    /// shipment so a retry of the same request finds it ([`OrderStore::find_by_request_key`]).
    async fn reserve_shipment(
        &self,
        order: OrderId,
        request: ShipmentRequest,
        providers: Providers,
        details: ShipmentDetails,
        request_key: Option<String>,
        now: Timestamp,
    ) -> Result<Reservation, StoreError>;

    /// The shipment a request with this key created, if any.
    async fn find_by_request_key(
        &self,
        request_key: &str,
    ) -> Result<Option<ShipmentView>, StoreError>;

    /// The open (not yet definite) capture attempt of a shipment, if any.
    async fn open_attempt(
        &self,
        shipment: ShipmentId,
    ) -> Result<Option<CaptureAttempt>, StoreError>;

    /// One transaction: starts the capture of an uncaptured shipment (the domain plans the
    /// amount, [`consign_domain::Shipment::begin_capture_with`], where only `providers` may
    /// capture), writing a capture attempt that carries `on_capture`, the changes to apply in the
    /// settle transaction if it is captured, and `request_key`, the idempotency key of the
    /// request that started it (scoped to its API key), for
    /// [`OrderStore::capture_by_request_key`]. A decline leaves the shipment uncaptured.
    /// `order`, when given, must be the shipment's.
    async fn begin_capture(
        &self,
        shipment: ShipmentId,
        order: Option<OrderId>,
        providers: Providers,
        on_capture: ShipmentChanges,
        request_key: Option<String>,
        now: Timestamp,
    ) -> Result<BeginCapture, StoreError>;

    /// The capture of `shipment` a request with this idempotency key started, if any, and
    /// where it stands.
    async fn capture_by_request_key(
        &self,
        shipment: ShipmentId,
        request_key: &str,
    ) -> Result<Option<KeyedCapture>, StoreError>;

    /// Applies complete-shipment changes to a shipment that is not capture-pending.
    async fn apply_changes(
        &self,
        shipment: ShipmentId,
        order: Option<OrderId>,
        changes: ShipmentChanges,
        now: Timestamp,
    ) -> Result<ShipmentView, StoreError>;

    /// Update shipment: new line quantities (uncaptured, unshipped shipments only, checked by
    /// the domain under the order lock) and/or good-to-go. Answers the shipment with its order as
    /// the update left them, read in its transaction: a read after it could find the shipment
    /// deleted or captured meanwhile, and answer that for an update that was made.
    async fn update_shipment(
        &self,
        shipment: ShipmentId,
        order: Option<OrderId>,
        lines: Option<Vec<consign_domain::ShipmentLine>>,
        gtg: Option<bool>,
        now: Timestamp,
    ) -> Result<ShipmentListing, StoreError>;

    /// Deletes an uncaptured shipment, releasing its units; its number is not reused. With the
    /// request's idempotency key (scoped to its API key), the key is recorded with the delete,
    /// for [`OrderStore::deleted_by_key`].
    async fn delete_shipment(
        &self,
        shipment: ShipmentId,
        order: Option<OrderId>,
        request_key: Option<String>,
        now: Timestamp,
    ) -> Result<ShipmentView, StoreError>;

    /// The shipment as the delete made by the request with this key left it, or `None` if no
    /// such request deleted it.
    async fn deleted_by_key(
        &self,
        shipment: ShipmentId,
        request_key: &str,
    ) -> Result<Option<ShipmentView>, StoreError>;

    /// One live shipment with its order.
    async fn find_shipment(
        &self,
        shipment: ShipmentId,
    ) -> Result<Option<ShipmentListing>, StoreError>;

    /// The live ones of `shipments` with their orders, in the order asked, each once: what
    /// [`OrderStore::find_shipment`] answers for each, read together (one round trip where
    /// round trips cost). A missing or dead shipment is left out.
    async fn find_shipments(
        &self,
        shipments: &[ShipmentId],
    ) -> Result<Vec<ShipmentListing>, StoreError>;

    /// The invoice issued for a shipment (issued in the transaction that records its capture,
    /// numbered from one counter, so numbers have no gaps or duplicates).
    async fn find_invoice(
        &self,
        shipment: ShipmentId,
    ) -> Result<Option<crate::Invoice>, StoreError>;

    /// Claims up to `limit` outbox messages that are due, for `lease_millis` (another instance
    /// does not take them meanwhile; a crashed sender's lease runs out and they are sent again).
    async fn claim_outbox(
        &self,
        now: Timestamp,
        lease_millis: i64,
        limit: u32,
    ) -> Result<Vec<crate::OutboxMessage>, StoreError>;

    /// Marks outbox messages sent, all in one write.
    async fn outbox_sent(&self, ids: &[i64], now: Timestamp) -> Result<(), StoreError>;

    /// Records a failed send; the message is due again at `retry_at`.
    async fn outbox_failed(
        &self,
        id: i64,
        error: &str,
        retry_at: Timestamp,
    ) -> Result<(), StoreError>;

    /// Records that a message was refused for good (`MailError::Refused`): it is never
    /// claimed again, and counts among the refused messages the health figures report.
    async fn outbox_refused(&self, id: i64, error: &str, now: Timestamp) -> Result<(), StoreError>;

    /// The messages refused for good, oldest refusal first, at most `limit`.
    async fn refused_messages(&self, limit: u32) -> Result<Vec<crate::RefusedMessage>, StoreError>;

    /// Queues a refused message again, due at `now` (an operator mended what the mail server
    /// refused); `false` when `id` is no refused message.
    async fn resend_refused(&self, id: i64, now: Timestamp) -> Result<bool, StoreError>;

    /// Puts a message off until `due_at` without counting a failed send (it waits for
    /// something else, such as its shipment's capture), `why` kept as its last note.
    async fn outbox_later(&self, id: i64, why: &str, due_at: Timestamp) -> Result<(), StoreError>;

    /// Live shipments matching `query`, oldest first, with their orders.
    async fn list_shipments(
        &self,
        query: ShipmentQuery,
    ) -> Result<Vec<ShipmentListing>, StoreError>;

    /// Settle step, one transaction: records the outcome of the attempt and moves the shipment
    /// to `Captured`, or voids it and releases its units and amount. Settling an attempt that is
    /// already settled changes nothing and answers the shipment as it is, and how that attempt
    /// was settled.
    async fn settle_capture(
        &self,
        attempt: &CaptureAttempt,
        outcome: SettleOutcome,
        now: Timestamp,
    ) -> Result<CaptureSettled, StoreError>;

    /// [`OrderStore::settle_capture`] for an operator's finding (a capture under review, looked
    /// up by hand): the settle and the record that it was settled by hand, with what was found
    /// and the shipment's state after, in one transaction.
    async fn settle_by_hand(
        &self,
        attempt: &CaptureAttempt,
        outcome: SettleOutcome,
        now: Timestamp,
    ) -> Result<CaptureSettled, StoreError>;

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

    /// Records that an attempt waited its turn without being sent (a final capture while
    /// earlier captures on its authorisation have no outcome yet), or met another request with
    /// its key still in flight at the provider: touched now, no pass counted. Recovery replays the least recently touched first, so a waiting final goes
    /// behind the captures it waits for instead of filling every pass ahead of them. An attempt
    /// settled meanwhile is left alone.
    async fn record_waiting(
        &self,
        attempt: &CaptureAttempt,
        now: Timestamp,
    ) -> Result<(), StoreError>;

    /// Where an attempt planned as its order's final capture stands now, read at once: whether
    /// it is still stored as final, and how many other attempts on the order have no definite
    /// outcome yet (on a provider whose final capture closes the authorisation, it waits for
    /// them). The settle that declines a capture on the order stores it as not final
    /// ([`consign_domain::ShipmentChange::takes_units_out_of_capture`]).
    async fn final_capture_standing(
        &self,
        attempt: &CaptureAttempt,
    ) -> Result<FinalCaptureStanding, StoreError>;

    /// The order's other attempts settled as captured, added up, and how many others are still
    /// open: what the provider's total on the authorisation is compared with.
    async fn capture_tally(&self, attempt: &CaptureAttempt) -> Result<CaptureTally, StoreError>;

    /// Capture attempts without a definite outcome (pending, unknown, needing review) last
    /// touched before `before`, at most 500, the least recently touched first (then the
    /// oldest): attempts tried pass after pass without an outcome (needing review) go to the
    /// back, so they cannot keep a newer one from ever being replayed.
    async fn pending_captures(&self, before: Timestamp) -> Result<Vec<CaptureAttempt>, StoreError>;

    /// Whether the database answers and every migration is applied (`Err` says why not).
    async fn readiness(&self) -> Result<(), StoreError>;

    /// Figures for monitoring.
    async fn stats(&self) -> Result<StoreStats, StoreError>;

    /// Statements sent to the database since the store opened, prepares included (on a
    /// networked database, a round trip each). Read on every metrics scrape: no I/O.
    fn statements_sent(&self) -> u64;

    /// Commits made by a store that writes through one serial writer (SQLite's), each holding
    /// one or more writes; 0 for a store whose writes commit on connections of their own. With
    /// the writes made, it tells how many a commit holds. Read on every scrape: no I/O.
    fn writer_commits(&self) -> u64;

    /// Orders matching `query`, oldest first, with their live shipments.
    async fn list_orders(&self, query: OrderQuery) -> Result<Vec<OrderView>, StoreError>;
}
