//! The return store port: returns of captured shipments and their refunds, shaped like the
//! capture saga (reserve, call the provider with no transaction open, settle, recover).

use async_trait::async_trait;
use consign_domain::{
    LineId, Money, NotReturned, OrderId, PaymentAuthorization, Providers, RefundState, ReturnId,
    ReturnRequest, ShipmentId, TaxRate,
};

use crate::clock::Timestamp;
use crate::store::StoreError;

/// What a create-return request records beside the money.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReturnDetails {
    /// Returned items go back to stock (recorded and echoed; Consign keeps no stock).
    pub return_to_stock: bool,
    /// A note.
    pub comment: String,
    /// Send the refund confirmation once refunded.
    pub send_email: bool,
}

/// One returned line as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnLineView {
    /// Centra's `returnLineId`.
    pub id: i64,
    /// Centra's `shipmentLineId`.
    pub shipment_line_id: i64,
    /// The order line.
    pub line_id: LineId,
    /// Stock keeping unit.
    pub sku: String,
    /// Product name.
    pub name: String,
    /// Units returned.
    pub quantity: u32,
    /// The unit price they were captured at.
    pub unit_price: Money,
    /// Its tax rate.
    pub tax_rate: TaxRate,
}

/// A credit note: issued in the transaction that records a refund.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreditNote {
    /// Its number in the credit-note series, without gaps (`CN-<n>`).
    pub number: i64,
    /// When it was issued.
    pub issued_at: Timestamp,
}

/// A return as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnView {
    /// Its id.
    pub id: ReturnId,
    /// The shipment it returns from.
    pub shipment: ShipmentId,
    /// Centra's integer `shipmentId`.
    pub shipment_row_id: i64,
    /// The order's customer.
    pub customer_id: i64,
    /// Completed.
    pub completed: bool,
    /// Items go back to stock.
    pub return_to_stock: bool,
    /// A note.
    pub comment: String,
    /// Returned lines.
    pub lines: Vec<ReturnLineView>,
    /// Shipping refunded.
    pub shipping: Money,
    /// Handling refunded.
    pub handling: Money,
    /// Vouchers deducted.
    pub voucher: Money,
    /// Return cost deducted.
    pub return_cost: Money,
    /// Tax included in the returned units.
    pub tax: Money,
    /// What it refunds.
    pub refund: Money,
    /// Where its refund stands.
    pub refund_state: RefundState,
    /// The provider's refund reference once refunded.
    pub refund_reference: Option<String>,
    /// The provider's code and message of the last decline.
    pub decline: Option<(String, String)>,
    /// Its credit note once refunded.
    pub credit_note: Option<CreditNote>,
    /// Created.
    pub created_at: Timestamp,
}

/// What the create-return reserve step wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnCreated {
    /// The return.
    pub view: ReturnView,
    /// Lines asked for and left out, with why.
    pub not_returned: Vec<NotReturned>,
    /// The refund attempt to send, when a refund was asked for.
    pub attempt: Option<RefundAttempt>,
}

/// A refund attempt written before the provider is called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundAttempt {
    /// The return it refunds.
    pub return_id: ReturnId,
    /// Its order.
    pub order: OrderId,
    /// The authorisation whose captures are refunded.
    pub authorization: PaymentAuthorization,
    /// The amount.
    pub amount: Money,
    /// The provider idempotency key: stable for this attempt.
    pub idempotency_key: String,
    /// When the attempt was written.
    pub created_at: Timestamp,
    /// The provider's reference once it accepted the refund and is still settling it
    /// ([`crate::RefundOutcome::Settling`]): such an attempt is looked up, not sent again.
    pub accepted: Option<String>,
}

/// What asking for a return's refund found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BeginRefund {
    /// Refunded already: nothing to send.
    AlreadyRefunded(ReturnView),
    /// A refund attempt was written (the refund is now pending); send it.
    Started(RefundAttempt),
}

/// The settled outcome of a refund attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundSettle {
    /// Refunded (the provider's reference and status are kept).
    Refunded {
        /// Provider reference.
        reference: String,
        /// Provider status (`succeeded`).
        status: String,
    },
    /// Declined: the held amount is released, the return stays, not completed.
    Declined {
        /// Provider code.
        code: String,
        /// Provider message.
        message: String,
    },
}

/// Which returns to list, newest first: Centra's `GET returns` filters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReturnQuery {
    /// One return.
    pub id: Option<ReturnId>,
    /// One shipment's returns.
    pub shipment: Option<ShipmentId>,
    /// One order's returns.
    pub order: Option<OrderId>,
    /// One customer's returns.
    pub customer_id: Option<i64>,
    /// Created at or after.
    pub newer_than: Option<Timestamp>,
    /// Created before.
    pub older_than: Option<Timestamp>,
    /// At most this many.
    pub limit: u32,
    /// Skip this many.
    pub offset: u32,
}

/// Returns, refund attempts and credit notes. Every write locks the order row first (as the
/// shipment calls do) and lets the domain decide.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait ReturnStore: Send + Sync {
    /// Reserve step, one transaction: lock the order, let the domain plan the return
    /// ([`consign_domain::Order::plan_return`]) and, with `refund`, start its refund
    /// ([`consign_domain::Return::request_refund`], only through `providers`), write the return,
    /// its lines and the returned units, and a pending refund attempt with a stable key.
    ///
    /// `request_key` (the client's idempotency key, scoped to its API key) is recorded on the
    /// return so a retry of the same request finds it ([`ReturnStore::find_by_request_key`]).
    #[allow(clippy::too_many_arguments)]
    async fn create_return(
        &self,
        shipment: ShipmentId,
        request: ReturnRequest,
        refund: bool,
        providers: Providers,
        details: ReturnDetails,
        request_key: Option<String>,
        now: Timestamp,
    ) -> Result<ReturnCreated, StoreError>;

    /// The return a request with this key created, if any.
    async fn find_by_request_key(&self, key: &str) -> Result<Option<ReturnView>, StoreError>;

    /// The open (not yet definite) refund attempt of a return, if any.
    async fn open_refund(&self, id: ReturnId) -> Result<Option<RefundAttempt>, StoreError>;

    /// One transaction: asks for a return's refund (a new attempt, a new key), as the domain
    /// decides; `send_email`, when given, is recorded for the confirmation.
    async fn begin_refund(
        &self,
        id: ReturnId,
        providers: Providers,
        send_email: Option<bool>,
        now: Timestamp,
    ) -> Result<BeginRefund, StoreError>;

    /// Settle step, one transaction: records the outcome; refunded issues the credit note (and
    /// queues the confirmation when asked), declined releases the held amount. Settling an
    /// attempt already settled changes nothing.
    async fn settle_refund(
        &self,
        attempt: &RefundAttempt,
        outcome: RefundSettle,
        now: Timestamp,
    ) -> Result<ReturnView, StoreError>;

    /// [`ReturnStore::settle_refund`] for an operator's finding, in the same transaction as
    /// the record that it was settled by hand (the finding, the reference or note, the refund's
    /// state after). An attempt settled meanwhile is left as it is; the record is still
    /// written, with the state the return's refund is actually in.
    async fn settle_refund_by_hand(
        &self,
        attempt: &RefundAttempt,
        outcome: RefundSettle,
        now: Timestamp,
    ) -> Result<ReturnView, StoreError>;

    /// One transaction: the provider accepted the attempt's refund and is still settling it.
    /// Its reference and status are kept on the attempt, which stays open (its passes start
    /// again; a return that needed review is pending again, as the domain decides) and is
    /// looked up from then on, after resting `rest_millis` since this record (see
    /// [`ReturnStore::pending_refunds`]). An attempt settled meanwhile is left as it is.
    /// Answers the return as it is now.
    async fn record_refund_accepted(
        &self,
        attempt: &RefundAttempt,
        reference: &str,
        status: &str,
        rest_millis: i64,
        now: Timestamp,
    ) -> Result<ReturnView, StoreError>;

    /// One more pass without an outcome; after `review_after_passes` the return needs review.
    /// Answers whether it needs review now.
    async fn record_refund_unknown(
        &self,
        attempt: &RefundAttempt,
        reason: &str,
        now: Timestamp,
        review_after_passes: u32,
    ) -> Result<bool, StoreError>;

    /// Refund attempts without a definite outcome last touched before `before`, at most 500,
    /// the least recently touched first (then the oldest), as
    /// [`crate::OrderStore::pending_captures`]. One the provider accepted and is still settling
    /// is left out until it has also rested the `rest_millis` its last
    /// [`ReturnStore::record_refund_accepted`] gave it.
    async fn pending_refunds(&self, before: Timestamp) -> Result<Vec<RefundAttempt>, StoreError>;

    /// Sets a return completed or pending, as the domain allows.
    async fn set_return_completed(
        &self,
        id: ReturnId,
        completed: bool,
        now: Timestamp,
    ) -> Result<ReturnView, StoreError>;

    /// One return.
    async fn find_return(&self, id: ReturnId) -> Result<Option<ReturnView>, StoreError>;

    /// Returns matching `query`, newest first.
    async fn list_returns(&self, query: ReturnQuery) -> Result<Vec<ReturnView>, StoreError>;
}
