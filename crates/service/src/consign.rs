//! The service object every adapter drives.

use std::sync::Arc;

use consign_ports::{
    Clock, DocumentRenderer, IdSource, IdempotencyStore, KeyStore, Mailer, OrderQuery, OrderStore,
    OrderView, ReturnStore, Seller,
};

use crate::error::ServiceError;
use crate::gateways::Gateways;

/// The adapters a [`Consign`] works through.
#[derive(Clone)]
pub struct Ports {
    /// Orders, shipments, capture attempts, invoices, outbox.
    pub store: Arc<dyn OrderStore>,
    /// Returns, refund attempts, credit notes.
    pub returns: Arc<dyn ReturnStore>,
    /// API keys.
    pub keys: Arc<dyn KeyStore>,
    /// Client idempotency records.
    pub idempotency: Arc<dyn IdempotencyStore>,
    /// PDF documents.
    pub renderer: Arc<dyn DocumentRenderer>,
    /// Outgoing mail.
    pub mailer: Arc<dyn Mailer>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Randomness.
    pub ids: Arc<dyn IdSource>,
}

/// Store settings: what documents and mails say, and the shipping-confirmation default.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    /// The seller on documents.
    pub seller: Seller,
    /// Centra's "Send Shipping Confirmation": used when a request does not say `sendEmail`.
    pub send_shipping_confirmation: bool,
    /// Sender of shipping confirmations.
    pub mail_from: String,
    /// First wait before a failed mail is sent again; doubled per failure, capped at an hour.
    pub mail_retry_base_millis: i64,
    /// How long one sender holds an outbox message before another may take it (a sender that
    /// crashed mid-send loses it after this long).
    pub mail_lease_millis: i64,
    /// A client idempotency key whose request died with its process is taken over by a retry
    /// after this long (the API promises 60 s).
    pub idempotency_takeover_millis: i64,
    /// `returnToStock` of a return that does not say (`CONSIGN_RETURN_TO_STOCK`).
    pub return_to_stock: bool,
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            seller: Seller::default(),
            send_shipping_confirmation: true,
            mail_from: "shipping@localhost".into(),
            mail_retry_base_millis: 5_000,
            mail_lease_millis: 60_000,
            idempotency_takeover_millis: crate::TAKEOVER_AFTER_MILLIS,
            return_to_stock: true,
        }
    }
}

/// Consign's use cases over the ports they need. Cheap to clone: every part is shared.
#[derive(Clone)]
pub struct Consign {
    pub(crate) store: Arc<dyn OrderStore>,
    pub(crate) returns: Arc<dyn ReturnStore>,
    pub(crate) keys: Arc<dyn KeyStore>,
    pub(crate) idempotency: Arc<dyn IdempotencyStore>,
    pub(crate) renderer: Arc<dyn DocumentRenderer>,
    pub(crate) mailer: Arc<dyn Mailer>,
    pub(crate) gateways: Gateways,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) ids: Arc<dyn IdSource>,
    pub(crate) settings: Arc<StoreSettings>,
    /// Keys checked in the last moments: most requests skip the database for authentication.
    pub(crate) key_cache: Arc<crate::key_cache::KeyCache>,
    /// Documents being laid out at once, at most one a core: each takes a blocking-pool thread
    /// and its document's memory, and the pool also runs the database's longer reads.
    pub(crate) renders: Arc<tokio::sync::Semaphore>,
}

impl Consign {
    /// Builds the service from its ports, gateways and store settings.
    pub fn new(ports: Ports, gateways: Gateways, settings: StoreSettings) -> Self {
        Consign {
            store: ports.store,
            returns: ports.returns,
            keys: ports.keys,
            idempotency: ports.idempotency,
            renderer: ports.renderer,
            mailer: ports.mailer,
            gateways,
            clock: ports.clock,
            ids: ports.ids,
            settings: Arc::new(settings),
            key_cache: Arc::default(),
            renders: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get),
            )),
        }
    }

    /// Whether the service can serve: the database answers and its migrations are applied.
    pub async fn readiness(&self) -> Result<(), ServiceError> {
        Ok(self.store.readiness().await?)
    }

    /// The service clock's time, in Unix milliseconds.
    pub fn now_millis(&self) -> i64 {
        self.clock.now().0
    }

    /// Figures for monitoring: captures by state, needs review, outbox depth, pool.
    pub async fn stats(&self) -> Result<consign_ports::StoreStats, ServiceError> {
        Ok(self.store.stats().await?)
    }

    /// Statements the store has sent to the database since it opened (a live counter).
    pub fn statements_sent(&self) -> u64 {
        self.store.statements_sent()
    }

    /// The store's commits through its serial writer (0 without one), for metrics.
    pub fn writer_commits(&self) -> u64 {
        self.store.writer_commits()
    }

    /// Orders matching Centra's `GET orders` filters, oldest first, with their live shipments.
    pub async fn list_orders(&self, query: OrderQuery) -> Result<Vec<OrderView>, ServiceError> {
        // For tests of a listing whose later part (one that starts after an order) fails.
        if query.after.is_some() {
            fail::fail_point!("later-order-part", |_| Err(ServiceError::Unavailable(
                "fault point later-order-part".into()
            )));
        }
        Ok(self.store.list_orders(query).await?)
    }
}
