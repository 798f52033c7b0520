//! # consign-ports
//!
//! The traits Consign's use cases need from the world, and the plain records that cross them.
//! Adapters implement these; `consign-service` is written against them only. With the `mocks`
//! feature each trait also has a `mockall` mock (`MockOrderStore`, ...), for the service's unit
//! tests; release builds never enable it.
#![deny(missing_docs)]

mod clock;
mod documents;
mod gateway;
mod idempotency;
mod keys;
mod records;
mod returns;
mod store;

pub use clock::{Clock, IdSource, Timestamp};
pub use documents::{
    DocumentData, DocumentError, DocumentKind, DocumentRenderer, Email, Invoice, MailError, Mailer,
    OutboxKind, OutboxMessage, RefusedMessage, Seller,
};
pub use gateway::{
    CaptureOutcome, CaptureRequest, CapturedTotal, PaymentGateway, RefundLookup, RefundOutcome,
    RefundRequest,
};
pub use idempotency::{IdempotencyBegin, IdempotencyStore, StoredAnswer};
pub use keys::{ApiKeyId, ApiKeyInfo, KeyStore};
pub use records::{
    Address, CaptureAttempt, CaptureTally, Customer, FinalCaptureStanding, ImportedOrder,
    LineImport, OrderImport, OrderQuery, OrderView, ShipmentChanges, ShipmentDetails,
    ShipmentListing, ShipmentQuery, ShipmentStatus, ShipmentView, ShippingInfo, ShippingUpdate,
};
pub use returns::{
    BeginRefund, CreditNote, RefundAttempt, RefundSettle, ReturnCreated, ReturnDetails,
    ReturnLineView, ReturnQuery, ReturnStore, ReturnView,
};
pub use store::{
    BeginCapture, CaptureSettled, KeyedCapture, OrderStore, Reservation, SettleOutcome, StoreError,
    StoreStats,
};

#[cfg(feature = "mocks")]
pub use clock::{MockClock, MockIdSource};
#[cfg(feature = "mocks")]
pub use documents::{MockDocumentRenderer, MockMailer};
#[cfg(feature = "mocks")]
pub use gateway::MockPaymentGateway;
#[cfg(feature = "mocks")]
pub use idempotency::MockIdempotencyStore;
#[cfg(feature = "mocks")]
pub use keys::MockKeyStore;
#[cfg(feature = "mocks")]
pub use returns::MockReturnStore;
#[cfg(feature = "mocks")]
pub use store::MockOrderStore;
