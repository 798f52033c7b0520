//! The return store port over the queries in `returns`.

use async_trait::async_trait;
use consign_domain::{Providers, ReturnId, ReturnRequest, ShipmentId};
use consign_ports::{
    BeginRefund, RefundAttempt, RefundSettle, ReturnCreated, ReturnDetails, ReturnQuery,
    ReturnStore, ReturnView, StoreError, Timestamp,
};

use crate::database::Database;
use crate::returns;

#[async_trait]
impl ReturnStore for Database {
    async fn create_return(
        &self,
        shipment: ShipmentId,
        request: ReturnRequest,
        refund: bool,
        providers: Providers,
        details: ReturnDetails,
        request_key: Option<String>,
        now: Timestamp,
    ) -> Result<ReturnCreated, StoreError> {
        let installation = self.installation().to_owned();
        let written = self
            .run_write(move |conn| {
                returns::create_return(
                    conn,
                    &installation,
                    shipment,
                    &request,
                    refund,
                    &providers,
                    &details,
                    request_key.as_deref(),
                    now,
                )
            })
            .await;
        self.outdated(shipment.order);
        Ok(written?)
    }

    async fn begin_refund(
        &self,
        id: ReturnId,
        providers: Providers,
        send_email: Option<bool>,
        now: Timestamp,
    ) -> Result<BeginRefund, StoreError> {
        let installation = self.installation().to_owned();
        Ok(self
            .run_write(move |conn| {
                returns::begin_refund(conn, &installation, id, &providers, send_email, now)
            })
            .await?)
    }

    async fn settle_refund(
        &self,
        attempt: &RefundAttempt,
        outcome: RefundSettle,
        now: Timestamp,
    ) -> Result<ReturnView, StoreError> {
        let attempt = attempt.clone();
        Ok(self
            .run_write(move |conn| returns::settle_refund(conn, &attempt, &outcome, now))
            .await?)
    }

    async fn settle_refund_by_hand(
        &self,
        attempt: &RefundAttempt,
        outcome: RefundSettle,
        now: Timestamp,
    ) -> Result<ReturnView, StoreError> {
        let attempt = attempt.clone();
        Ok(self
            .run_write(move |conn| {
                crate::hand_settlements::settle_refund_by_hand(conn, &attempt, &outcome, now)
            })
            .await?)
    }

    async fn record_refund_accepted(
        &self,
        attempt: &RefundAttempt,
        reference: &str,
        status: &str,
        rest_millis: i64,
        now: Timestamp,
    ) -> Result<ReturnView, StoreError> {
        let (attempt, reference, status) =
            (attempt.clone(), reference.to_owned(), status.to_owned());
        Ok(self
            .run_write(move |conn| {
                returns::record_refund_accepted(
                    conn,
                    &attempt,
                    &reference,
                    &status,
                    rest_millis,
                    now,
                )
            })
            .await?)
    }

    async fn record_refund_unknown(
        &self,
        attempt: &RefundAttempt,
        reason: &str,
        now: Timestamp,
        review_after_passes: u32,
    ) -> Result<bool, StoreError> {
        let (attempt, reason) = (attempt.clone(), reason.to_owned());
        Ok(self
            .run_write(move |conn| {
                returns::record_refund_unknown(conn, &attempt, &reason, now, review_after_passes)
            })
            .await?)
    }

    async fn pending_refunds(&self, before: Timestamp) -> Result<Vec<RefundAttempt>, StoreError> {
        Ok(self
            .run(move |conn| returns::pending_refunds(conn, before))
            .await?)
    }

    async fn set_return_completed(
        &self,
        id: ReturnId,
        completed: bool,
        now: Timestamp,
    ) -> Result<ReturnView, StoreError> {
        Ok(self
            .run_write(move |conn| returns::set_completed(conn, id, completed, now))
            .await?)
    }

    async fn find_by_request_key(&self, key: &str) -> Result<Option<ReturnView>, StoreError> {
        let key = key.to_owned();
        Ok(self
            .run_short_read(move |conn| returns::find_by_request_key(conn, &key))
            .await?)
    }

    async fn open_refund(&self, id: ReturnId) -> Result<Option<RefundAttempt>, StoreError> {
        Ok(self
            .run_short_read(move |conn| returns::open_refund(conn, id))
            .await?)
    }

    async fn find_return(&self, id: ReturnId) -> Result<Option<ReturnView>, StoreError> {
        Ok(self
            .run_short_read(move |conn| returns::find(conn, id))
            .await?)
    }

    async fn list_returns(&self, query: ReturnQuery) -> Result<Vec<ReturnView>, StoreError> {
        Ok(self.run(move |conn| returns::list(conn, &query)).await?)
    }
}
