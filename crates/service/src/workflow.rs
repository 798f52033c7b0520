//! The calls after create: complete, capture, update, delete, get and list shipments.

use consign_domain::{OrderId, ShipmentId, ShipmentLine};
use consign_ports::{BeginCapture, ShipmentChanges, ShipmentListing, ShipmentQuery, ShipmentView};

use crate::consign::Consign;
use crate::error::ServiceError;

impl Consign {
    /// Complete shipment: capture it when asked (and not yet captured), then apply the changes.
    ///
    /// The changes wait for the capture: they are written in the transaction that records it as
    /// captured, dropped on a decline ([`ServiceError::CaptureFailed`]), and applied by recovery
    /// if the outcome was unknown ([`ServiceError::CaptureUnknown`]) and turns out captured.
    pub async fn complete_shipment(
        &self,
        shipment: ShipmentId,
        order: Option<OrderId>,
        capture: bool,
        mut changes: ShipmentChanges,
    ) -> Result<ShipmentView, ServiceError> {
        if changes.shipped && changes.send_email.is_none() {
            changes.send_email = Some(self.settings.send_shipping_confirmation);
        }
        let now = self.clock.now();
        if capture {
            match self
                .store
                .begin_capture(
                    shipment,
                    order,
                    self.gateways.providers(),
                    changes.clone(),
                    now,
                )
                .await?
            {
                BeginCapture::Started(attempt) => return self.capture_started(&attempt).await,
                BeginCapture::AlreadyCaptured(_) => {} // capture is ignored once captured
            }
        }
        Ok(self
            .store
            .apply_changes(shipment, order, changes, now)
            .await?)
    }

    /// Capture shipment: captures an uncaptured shipment; an already captured one is answered
    /// as it is, never captured twice.
    pub async fn capture_shipment(
        &self,
        shipment: ShipmentId,
        order: Option<OrderId>,
    ) -> Result<ShipmentView, ServiceError> {
        let begun = self
            .store
            .begin_capture(
                shipment,
                order,
                self.gateways.providers(),
                ShipmentChanges::default(),
                self.clock.now(),
            )
            .await?;
        match begun {
            BeginCapture::AlreadyCaptured(view) => Ok(view),
            BeginCapture::Started(attempt) => self.capture_started(&attempt).await,
        }
    }

    async fn capture_started(
        &self,
        attempt: &consign_ports::CaptureAttempt,
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
    ) -> Result<ShipmentView, ServiceError> {
        Ok(self
            .store
            .update_shipment(shipment, order, lines, gtg, self.clock.now())
            .await?)
    }

    /// Delete shipment: an uncaptured shipment is removed and its units released.
    pub async fn delete_shipment(
        &self,
        shipment: ShipmentId,
        order: Option<OrderId>,
    ) -> Result<ShipmentView, ServiceError> {
        Ok(self
            .store
            .delete_shipment(shipment, order, self.clock.now())
            .await?)
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
