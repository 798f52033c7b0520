//! The service object every adapter drives.

use std::sync::Arc;

use consign_ports::{
    Clock, IdSource, IdempotencyStore, KeyStore, OrderQuery, OrderStore, OrderView,
};

use crate::error::ServiceError;
use crate::gateways::Gateways;

/// Consign's use cases over the ports they need. Cheap to clone: every part is shared.
#[derive(Clone)]
pub struct Consign {
    pub(crate) store: Arc<dyn OrderStore>,
    pub(crate) keys: Arc<dyn KeyStore>,
    pub(crate) idempotency: Arc<dyn IdempotencyStore>,
    pub(crate) gateways: Gateways,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) ids: Arc<dyn IdSource>,
}

impl Consign {
    /// Builds the service from its ports.
    pub fn new(
        store: Arc<dyn OrderStore>,
        keys: Arc<dyn KeyStore>,
        idempotency: Arc<dyn IdempotencyStore>,
        gateways: Gateways,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdSource>,
    ) -> Self {
        Consign {
            store,
            keys,
            idempotency,
            gateways,
            clock,
            ids,
        }
    }

    /// Orders matching Centra's `GET orders` filters, oldest first, with their live shipments.
    pub async fn list_orders(&self, query: OrderQuery) -> Result<Vec<OrderView>, ServiceError> {
        Ok(self.store.list_orders(query).await?)
    }
}
