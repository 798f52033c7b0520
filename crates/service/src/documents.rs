//! Shipment documents, credit notes, and the outbox of shipping and refund confirmations.

use consign_domain::ShipmentId;
use consign_ports::{DocumentData, DocumentKind, Email, OutboxKind, ReturnView, ShipmentListing};

use crate::consign::Consign;
use crate::error::ServiceError;

/// Messages taken per pass.
const OUTBOX_BATCH: u32 = 20;

/// What one outbox pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxReport {
    /// Sent.
    pub sent: usize,
    /// Failed, to be retried later.
    pub failed: usize,
}

impl Consign {
    /// The PDF of one document of a live shipment. No invoice exists before the capture.
    pub async fn document(
        &self,
        shipment: ShipmentId,
        kind: DocumentKind,
    ) -> Result<Vec<u8>, ServiceError> {
        let listing = self
            .store
            .find_shipment(shipment)
            .await?
            .ok_or(ServiceError::ShipmentNotFound(shipment))?;
        let invoice = match kind {
            DocumentKind::Invoice => Some(
                self.store
                    .find_invoice(shipment)
                    .await?
                    .ok_or(ServiceError::NoInvoice(shipment))?,
            ),
            _ => None,
        };
        let data = DocumentData {
            seller: self.settings.seller.clone(),
            order: listing.order,
            shipment: listing.shipment,
            invoice,
            credit_note: None,
        };
        self.renderer
            .render(kind, &data)
            .map_err(|e| ServiceError::Internal(e.to_string()))
    }

    /// The credit note of a refunded return of `shipment`.
    pub async fn credit_note(
        &self,
        shipment: ShipmentId,
        id: consign_domain::ReturnId,
    ) -> Result<Vec<u8>, ServiceError> {
        let ret = self
            .returns
            .find_return(id)
            .await?
            .filter(|r| r.shipment == shipment && r.credit_note.is_some())
            .ok_or(ServiceError::NoCreditNote(id))?;
        let listing = self
            .store
            .find_shipment(shipment)
            .await?
            .ok_or(ServiceError::ShipmentNotFound(shipment))?;
        let data = DocumentData {
            seller: self.settings.seller.clone(),
            order: listing.order,
            shipment: listing.shipment,
            invoice: self.store.find_invoice(shipment).await?,
            credit_note: Some(ret),
        };
        self.renderer
            .render(DocumentKind::CreditNote, &data)
            .map_err(|e| ServiceError::Internal(e.to_string()))
    }

    /// Sends the shipping confirmations that are due; a failure is retried with backoff.
    pub async fn deliver_outbox(&self) -> Result<OutboxReport, ServiceError> {
        let now = self.clock.now();
        let due = self
            .store
            .claim_outbox(now, self.settings.mail_lease_millis, OUTBOX_BATCH)
            .await?;
        let mut report = OutboxReport::default();
        for message in due {
            fail::fail_point!("outbox-before-send");
            let Some(listing) = self.store.find_shipment(message.shipment).await? else {
                // Deleted since: nothing to confirm.
                self.store.outbox_sent(message.id, self.clock.now()).await?;
                continue;
            };
            let email = match message.kind {
                OutboxKind::ShippingConfirmation => self.confirmation(&listing, message.id),
                OutboxKind::RefundConfirmation(id) => match self.returns.find_return(id).await? {
                    Some(ret) => self.refund_confirmation(&listing, &ret, message.id),
                    None => {
                        self.store.outbox_sent(message.id, self.clock.now()).await?;
                        continue;
                    }
                },
            };
            match self.mailer.send(&email).await {
                Ok(()) => {
                    self.store.outbox_sent(message.id, self.clock.now()).await?;
                    report.sent += 1;
                }
                Err(error) => {
                    let wait =
                        backoff_millis(self.settings.mail_retry_base_millis, message.attempts);
                    let retry_at = self.clock.now().minus_millis(-wait);
                    tracing::warn!(shipment = %message.shipment, kind = ?message.kind, %error, attempts = message.attempts + 1, "confirmation not sent; will retry");
                    self.store
                        .outbox_failed(message.id, &error.to_string(), retry_at)
                        .await?;
                    report.failed += 1;
                }
            }
        }
        Ok(report)
    }

    fn greeting(listing: &ShipmentListing) -> String {
        let customer = &listing.order.customer;
        let name = format!("{} {}", customer.first_name, customer.last_name);
        if name.trim().is_empty() {
            "Hello".to_owned()
        } else {
            format!("Hello {}", name.trim())
        }
    }

    fn refund_confirmation(
        &self,
        listing: &ShipmentListing,
        ret: &ReturnView,
        outbox_id: i64,
    ) -> Email {
        let order = listing.order.order.id();
        let greeting = Self::greeting(listing);
        let mut text = format!(
            "{greeting},\n\nwe have refunded {} {} for your return {} of order {order}.\n\nReturned:\n",
            ret.refund,
            ret.refund.currency(),
            ret.id
        );
        let mut html = format!(
            "<html><body><p>{}</p><p>We have refunded {} {} for your return {} of order {order}.</p><p>Returned:</p><ul>",
            escape(&format!("{greeting},")),
            ret.refund,
            ret.refund.currency(),
            ret.id
        );
        for line in &ret.lines {
            text.push_str(&format!(
                "  {} x {} ({})\n",
                line.quantity, line.name, line.sku
            ));
            html.push_str(&format!(
                "<li>{} x {} ({})</li>",
                line.quantity,
                escape(&line.name),
                escape(&line.sku)
            ));
        }
        html.push_str("</ul></body></html>");
        Email {
            from: self.settings.mail_from.clone(),
            to: listing.order.customer.email.clone(),
            subject: format!("Your refund for order {order}"),
            text,
            html,
            message_id: format!("refund-confirmation-{}-{outbox_id}@consign", ret.id),
        }
    }

    fn confirmation(&self, listing: &ShipmentListing, outbox_id: i64) -> Email {
        let (order, shipment) = (&listing.order, &listing.shipment);
        let shipping = &shipment.details.shipping;
        let lines: Vec<(String, String, u32)> = shipment
            .lines
            .iter()
            .map(|l| {
                let line = order.order.line(l.line_id);
                (
                    line.map_or(String::new(), |x| x.sku().to_owned()),
                    line.map_or(String::new(), |x| x.name().to_owned()),
                    l.quantity,
                )
            })
            .collect();
        let name = format!("{} {}", order.customer.first_name, order.customer.last_name);
        let greeting = if name.trim().is_empty() {
            "Hello".to_owned()
        } else {
            format!("Hello {}", name.trim())
        };
        let mut text = format!(
            "{greeting},\n\nyour order {} has shipped (shipment {}).\n\nCarrier: {}\nService: {}\nTracking number: {}\n\nIn this parcel:\n",
            order.order.id(), shipment.id, shipping.carrier, shipping.service, shipping.tracking
        );
        for (sku, name, quantity) in &lines {
            text.push_str(&format!("  {quantity} x {name} ({sku})\n"));
        }
        let mut html = format!(
            "<html><body><p>{}</p><p>Your order {} has shipped (shipment {}).</p><table><tr><th>Carrier</th><td>{}</td></tr><tr><th>Service</th><td>{}</td></tr><tr><th>Tracking number</th><td>{}</td></tr></table><p>In this parcel:</p><ul>",
            escape(&format!("{greeting},")),
            order.order.id(),
            shipment.id,
            escape(&shipping.carrier),
            escape(&shipping.service),
            escape(&shipping.tracking)
        );
        for (sku, name, quantity) in &lines {
            html.push_str(&format!(
                "<li>{quantity} x {} ({})</li>",
                escape(name),
                escape(sku)
            ));
        }
        html.push_str("</ul></body></html>");
        Email {
            from: self.settings.mail_from.clone(),
            to: order.customer.email.clone(),
            subject: format!("Your order {} has shipped", order.order.id()),
            text,
            html,
            message_id: format!("shipping-confirmation-{}-{outbox_id}@consign", shipment.id),
        }
    }
}

/// base, 2 x base, 4 x base ... capped at one hour.
fn backoff_millis(base: i64, attempts: u32) -> i64 {
    base.saturating_mul(1i64 << attempts.min(20)).min(3_600_000)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
