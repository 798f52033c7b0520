//! The order store port over the queries in `orders` and `shipments`.

use async_trait::async_trait;
use consign_domain::{OrderId, ShipmentRequest};
use consign_ports::{
    CaptureAttempt, ImportedOrder, OrderImport, OrderQuery, OrderStore, OrderView, Reservation,
    SettleOutcome, ShipmentDetails, ShipmentView, StoreError, Timestamp,
};

use crate::database::Database;
use crate::{orders, shipments};

#[async_trait]
impl OrderStore for Database {
    async fn import_order(
        &self,
        order: OrderImport,
        now: Timestamp,
    ) -> Result<ImportedOrder, StoreError> {
        Ok(self
            .run(move |conn| orders::import_order(conn, &order, now))
            .await?)
    }

    async fn reserve_shipment(
        &self,
        order: OrderId,
        request: ShipmentRequest,
        details: ShipmentDetails,
        now: Timestamp,
    ) -> Result<Reservation, StoreError> {
        let installation = self.installation().to_owned();
        Ok(self
            .run(move |conn| {
                shipments::reserve_shipment(conn, &installation, order, &request, &details, now)
            })
            .await?)
    }

    async fn settle_capture(
        &self,
        attempt: &CaptureAttempt,
        outcome: SettleOutcome,
        now: Timestamp,
    ) -> Result<ShipmentView, StoreError> {
        let attempt = attempt.clone();
        Ok(self
            .run(move |conn| shipments::settle_capture(conn, &attempt, &outcome, now))
            .await?)
    }

    async fn record_unknown(
        &self,
        attempt: &CaptureAttempt,
        reason: &str,
        now: Timestamp,
        review_after_passes: u32,
    ) -> Result<bool, StoreError> {
        let (attempt, reason) = (attempt.clone(), reason.to_owned());
        Ok(self
            .run(move |conn| {
                shipments::record_unknown(conn, &attempt, &reason, now, review_after_passes)
            })
            .await?)
    }

    async fn other_open_captures(&self, attempt: &CaptureAttempt) -> Result<usize, StoreError> {
        let attempt = attempt.clone();
        Ok(self
            .run(move |conn| shipments::other_open_captures(conn, &attempt))
            .await?)
    }

    async fn pending_captures(&self, before: Timestamp) -> Result<Vec<CaptureAttempt>, StoreError> {
        Ok(self
            .run(move |conn| shipments::pending_captures(conn, before))
            .await?)
    }

    async fn list_orders(&self, query: OrderQuery) -> Result<Vec<OrderView>, StoreError> {
        Ok(self
            .run(move |conn| orders::list_orders(conn, &query))
            .await?)
    }
}
