//! The calls after create: complete, capture, update, delete, get and list shipments.

use consign_domain::{OrderId, ShipmentError, ShipmentId, ShipmentLine};
use consign_ports::{
    BeginCapture, CaptureAttempt, KeyedCapture, ShipmentChanges, ShipmentListing, ShipmentQuery,
    ShipmentView, StoreError, Timestamp,
};

use crate::consign::Consign;
use crate::error::ServiceError;

impl Consign {
    /// Complete shipment: capture it when asked (and not yet captured), then apply the changes.
    ///
    /// The changes wait for the capture: they are written in the transaction that records it as
    /// captured, dropped on a decline ([`ServiceError::CaptureFailed`]), and applied by recovery
    /// if the outcome was unknown ([`ServiceError::CaptureUnknown`]) and turns out captured.
    ///
    /// `request_key`: the request's idempotency key (scoped to its API key), recorded with the
    /// capture it starts. A retry of a request answered 503 (its capture's outcome unknown)
    /// finds that capture by it: still open, it is driven to its outcome, the same attempt with
    /// the same provider key; declined meanwhile, the retry is answered "capture failed", never
    /// with a second capture; captured, as any captured shipment. A keyed request also drives a
    /// capture in flight it meets; without a key that is refused (409), as any change of a
    /// shipment whose capture is in flight.
    pub async fn complete_shipment(
        &self,
        shipment: ShipmentId,
        order: Option<OrderId>,
        capture: bool,
        mut changes: ShipmentChanges,
        request_key: Option<String>,
    ) -> Result<ShipmentView, ServiceError> {
        if changes.shipped && changes.send_email.is_none() {
            changes.send_email = Some(self.settings.send_shipping_confirmation);
        }
        let now = self.clock.now();
        if capture {
            match self
                .start_capture(shipment, order, changes.clone(), request_key, now)
                .await?
            {
                // Begun by this request, or by its first run (its own attempt, found by its key,
                // carries the same changes).
                (BeginCapture::Started(attempt), Driven::No) => {
                    return self.capture_started(&attempt).await
                }
                // The capture in flight carries the changes of the request that began it; this
                // request's are applied once it is captured (the same ones again, for a retry).
                (BeginCapture::Started(attempt), Driven::InFlight) => {
                    self.capture_started(&attempt).await?;
                }
                (BeginCapture::AlreadyCaptured(_), _) => {} // capture is ignored once captured
            }
        }
        Ok(self
            .store
            .apply_changes(shipment, order, changes, now)
            .await?)
    }

    /// Capture shipment: captures an uncaptured shipment; an already captured one is answered
    /// as it is, never captured twice. `request_key` as for [`Consign::complete_shipment`].
    pub async fn capture_shipment(
        &self,
        shipment: ShipmentId,
        order: Option<OrderId>,
        request_key: Option<String>,
    ) -> Result<ShipmentView, ServiceError> {
        let now = self.clock.now();
        match self
            .start_capture(
                shipment,
                order,
                ShipmentChanges::default(),
                request_key,
                now,
            )
            .await?
            .0
        {
            BeginCapture::AlreadyCaptured(view) => Ok(view),
            BeginCapture::Started(attempt) => self.capture_started(&attempt).await,
        }
    }

    /// A capture's start for complete or capture: this request's own attempt when an earlier
    /// run of it started one (still open), else a new one carrying `on_capture`, or, for a keyed
    /// request, the capture it meets in flight.
    async fn start_capture(
        &self,
        shipment: ShipmentId,
        order: Option<OrderId>,
        on_capture: ShipmentChanges,
        request_key: Option<String>,
        now: Timestamp,
    ) -> Result<(BeginCapture, Driven), ServiceError> {
        let drive_in_flight = request_key.is_some();
        let begun = match self
            .own_capture(shipment, order, request_key.as_deref())
            .await?
        {
            Some(attempt) => Ok(BeginCapture::Started(attempt)),
            None => {
                self.store
                    .begin_capture(
                        shipment,
                        order,
                        self.gateways.providers(),
                        on_capture,
                        request_key,
                        now,
                    )
                    .await
            }
        };
        self.in_flight_driven(begun, shipment, drive_in_flight)
            .await
    }

    /// The capture an earlier run of this request (the same idempotency key) started on
    /// `shipment`, when it is still open: to be driven, not begun again. Declined meanwhile, the
    /// request's answer is that decline ([`ServiceError::CaptureFailed`]); captured, or never
    /// started, the request goes on as a first one would.
    async fn own_capture(
        &self,
        shipment: ShipmentId,
        order: Option<OrderId>,
        request_key: Option<&str>,
    ) -> Result<Option<CaptureAttempt>, ServiceError> {
        let Some(key) = request_key else {
            return Ok(None);
        };
        // Another order named: the store's own check answers it.
        if order.is_some_and(|o| o != shipment.order) {
            return Ok(None);
        }
        match self.store.capture_by_request_key(shipment, key).await? {
            Some(KeyedCapture::Open(attempt)) => Ok(Some(attempt)),
            Some(KeyedCapture::Declined) => Err(ServiceError::CaptureFailed(shipment)),
            Some(KeyedCapture::Captured) | None => Ok(None),
        }
    }

    /// A capture refused because one is in flight becomes that capture's open attempt, to be
    /// driven, when `drive_in_flight`; anything else is passed on.
    async fn in_flight_driven(
        &self,
        begun: Result<BeginCapture, StoreError>,
        shipment: ShipmentId,
        drive_in_flight: bool,
    ) -> Result<(BeginCapture, Driven), ServiceError> {
        match begun {
            Err(StoreError::Rejected(ShipmentError::CaptureInProgress(_))) if drive_in_flight => {
                match self.store.open_attempt(shipment).await? {
                    Some(attempt) => Ok((BeginCapture::Started(attempt), Driven::InFlight)),
                    // Settled in between: the shipment is as the settle left it.
                    None => Err(ServiceError::CaptureUnknown(shipment)),
                }
            }
            other => Ok((other?, Driven::No)),
        }
    }

    async fn capture_started(
        &self,
        attempt: &CaptureAttempt,
    ) -> Result<ShipmentView, ServiceError> {
        match self.capture_and_settle(attempt).await {
            Err(ServiceError::CaptureDeclined(_)) => {
                Err(ServiceError::CaptureFailed(attempt.shipment))
            }
            other => other,
        }
    }

    /// Update shipment: set line quantities (0 removes a line) and/or mark it good to go.
    pub async fn update_shipment(
        &self,
        shipment: ShipmentId,
        order: Option<OrderId>,
        lines: Option<Vec<ShipmentLine>>,
        gtg: Option<bool>,
    ) -> Result<ShipmentListing, ServiceError> {
        Ok(self
            .store
            .update_shipment(shipment, order, lines, gtg, self.clock.now())
            .await?)
    }

    /// Delete shipment: an uncaptured shipment is removed and its units released.
    ///
    /// With a `request_key` (the client's idempotency key, scoped to its API key), a retry of a
    /// request that already deleted the shipment (its process died after the commit, before the
    /// answer was stored) is answered as that delete was, not "shipment does not exist".
    pub async fn delete_shipment(
        &self,
        shipment: ShipmentId,
        order: Option<OrderId>,
        request_key: Option<String>,
    ) -> Result<ShipmentView, ServiceError> {
        if let Some(key) = &request_key {
            let same_order = order.is_none_or(|o| o == shipment.order);
            if let Some(deleted) = self.store.deleted_by_key(shipment, key).await? {
                if same_order {
                    return Ok(deleted);
                }
            }
        }
        let deleted = self
            .store
            .delete_shipment(shipment, order, request_key, self.clock.now())
            .await?;
        crate::failpoints::reached("after-delete").await;
        Ok(deleted)
    }

    /// One live shipment with its order; `order`, when given, must be its order.
    pub async fn get_shipment(
        &self,
        shipment: ShipmentId,
        order: Option<OrderId>,
    ) -> Result<ShipmentListing, ServiceError> {
        let not_found = ServiceError::ShipmentNotFound(shipment);
        if order.is_some_and(|o| o != shipment.order) {
            return Err(not_found);
        }
        self.store.find_shipment(shipment).await?.ok_or(not_found)
    }

    /// Live shipments matching Centra's `GET shipments` filters, oldest first.
    pub async fn list_shipments(
        &self,
        query: ShipmentQuery,
    ) -> Result<Vec<ShipmentListing>, ServiceError> {
        Ok(self.store.list_shipments(query).await?)
    }
}

/// Whether a capture to drive was begun by this request or was already in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Driven {
    No,
    InFlight,
}

#[cfg(test)]
mod tests {
    use crate::error::ServiceError;
    use crate::test_support::*;
    use consign_domain::*;
    use consign_ports::*;

    #[tokio::test]
    async fn a_delete_retried_with_the_key_that_deleted_is_answered_without_deleting_again() {
        let mut store = MockOrderStore::new();
        store
            .expect_deleted_by_key()
            .withf(|id, key| *id == shipment_id() && key == "1:k")
            .times(1)
            .returning(|_, _| Ok(Some(view(ShipmentState::Deleted))));
        store.expect_delete_shipment().times(0);
        let deleted = service(store, sandbox_named_mock())
            .delete_shipment(shipment_id(), None, Some("1:k".into()))
            .await
            .unwrap();
        assert_eq!(deleted, view(ShipmentState::Deleted));
    }

    #[tokio::test]
    async fn a_delete_without_its_key_or_for_another_order_is_not_answered_from_a_key() {
        let not_found = || Err(StoreError::ShipmentNotFound(shipment_id()));
        // Without a key, nothing is looked up; for another order, what the key found is not
        // that request's: both go to the store's delete, which answers as it finds.
        for (order, key) in [(None, None), (Some(OrderId(1)), Some("1:k"))] {
            let mut store = MockOrderStore::new();
            store
                .expect_deleted_by_key()
                .times(usize::from(key.is_some()))
                .returning(|_, _| Ok(Some(view(ShipmentState::Deleted))));
            store
                .expect_delete_shipment()
                .times(1)
                .returning(move |_, _, _, _| not_found());
            let error = service(store, sandbox_named_mock())
                .delete_shipment(shipment_id(), order, key.map(str::to_owned))
                .await
                .unwrap_err();
            assert_eq!(error, ServiceError::ShipmentNotFound(shipment_id()));
        }
    }
}
