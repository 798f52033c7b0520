//! Shipment documents, credit notes, and the outbox of shipping and refund confirmations.

use consign_domain::{ShipmentId, ShipmentState};
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
    /// Refused for good by the mail server (or an address that does not parse): not retried.
    pub refused: usize,
    /// Shipping confirmations put off because the shipment's capture is still in flight.
    pub deferred: usize,
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
            order: std::sync::Arc::unwrap_or_clone(listing.order),
            shipment: listing.shipment,
            invoice,
            credit_note: None,
        };
        self.render(kind, data).await
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
            order: std::sync::Arc::unwrap_or_clone(listing.order),
            shipment: listing.shipment,
            invoice: self.store.find_invoice(shipment).await?,
            credit_note: Some(ret),
        };
        self.render(DocumentKind::CreditNote, data).await
    }

    /// Renders on the runtime's blocking pool, not on the calling task's thread: a shipment of
    /// a thousand lines takes milliseconds of CPU to lay out, and on an HTTP worker that time
    /// would hold up every other connection the worker serves. At most one document a core is
    /// laid out at once; the others wait their turn without a thread.
    async fn render(
        &self,
        kind: DocumentKind,
        data: DocumentData,
    ) -> Result<Vec<u8>, ServiceError> {
        // The turn goes with the layout, not with the request: a request dropped while its
        // layout runs (the client hung up) must not free a turn the layout still takes.
        let turn = std::sync::Arc::clone(&self.renders)
            .acquire_owned()
            .await
            .map_err(|e| ServiceError::Internal(format!("rendering a document: {e}")))?;
        let renderer = std::sync::Arc::clone(&self.renderer);
        tokio::task::spawn_blocking(move || {
            let _turn = turn;
            renderer.render(kind, &data)
        })
        .await
        .map_err(|e| ServiceError::Internal(format!("rendering a document: {e}")))?
        .map_err(|e| ServiceError::Internal(e.to_string()))
    }

    /// The confirmations the mail server refused for good, oldest refusal first, at most
    /// `limit`: what an operator looks at when `consign_outbox_refused` rises.
    pub async fn refused_confirmations(
        &self,
        limit: u32,
    ) -> Result<Vec<consign_ports::RefusedMessage>, ServiceError> {
        Ok(self.store.refused_messages(limit).await?)
    }

    /// Sends a refused confirmation again with the next outbox pass (the customer's mailbox was
    /// mended); `false` when `id` is no refused confirmation.
    pub async fn resend_confirmation(&self, id: i64) -> Result<bool, ServiceError> {
        Ok(self.store.resend_refused(id, self.clock.now()).await?)
    }

    /// Sends the shipping confirmations that are due; a failure is retried with backoff.
    ///
    /// A pass reads its messages' shipments together and marks what it sent in one write at the
    /// end (also when the pass stops on an error), instead of two statements a message. A crash
    /// before that write sends the pass's messages again once their lease runs out, as a crash
    /// between a send and its mark always did: delivery is at least once, and each message keeps
    /// its `Message-ID` for the receiver to recognise it. A slow pass (a mail server that takes
    /// long to answer) sends nothing more once half the lease has gone: the rest of its batch
    /// is left to a later pass once the lease ends, so a message is never sent by this pass
    /// after another instance may have taken it, and a send begun has the other half to end.
    pub async fn deliver_outbox(&self) -> Result<OutboxReport, ServiceError> {
        let now = self.clock.now();
        let due = self
            .store
            .claim_outbox(now, self.settings.mail_lease_millis, OUTBOX_BATCH)
            .await?;
        if due.is_empty() {
            return Ok(OutboxReport::default());
        }
        let mut report = OutboxReport::default();
        let mut done = Vec::with_capacity(due.len());
        let stop_by = now.minus_millis(-self.settings.mail_lease_millis / 2);
        let passed = self.send_due(&due, stop_by, &mut report, &mut done).await;
        if !done.is_empty() {
            self.store.outbox_sent(&done, self.clock.now()).await?;
        }
        passed.map(|()| report)
    }

    /// Sends each claimed message until `stop_by`; `done` collects the ids to mark sent (sent,
    /// or nothing left to confirm).
    async fn send_due(
        &self,
        due: &[consign_ports::OutboxMessage],
        stop_by: consign_ports::Timestamp,
        report: &mut OutboxReport,
        done: &mut Vec<i64>,
    ) -> Result<(), ServiceError> {
        let shipments: Vec<ShipmentId> = due.iter().map(|m| m.shipment).collect();
        let listings = self.store.find_shipments(&shipments).await?;
        for message in due {
            if self.clock.now() >= stop_by {
                break;
            }
            crate::failpoints::reached("outbox-before-send").await;
            fail::fail_point!("outbox-before-send");
            let Some(listing) = listings.iter().find(|l| l.shipment.id == message.shipment) else {
                // Deleted since: nothing to confirm.
                done.push(message.id);
                continue;
            };
            if message.kind == OutboxKind::ShippingConfirmation
                && listing.shipment.state == ShipmentState::CapturePending
            {
                // A shipment created shipped is confirmed only once its capture is recorded:
                // a decline voids it, and the customer must not have been told it shipped.
                // Looked at again every six retry bases (30 s by default), not counted as a
                // failed send: a capture recorded after a long outage is confirmed within
                // that, not an hour later, and a failed send after it backs off from the start.
                let wait = self.settings.mail_retry_base_millis.saturating_mul(6);
                let due_at = self.clock.now().minus_millis(-wait);
                self.store
                    .outbox_later(message.id, "waits for the shipment's capture", due_at)
                    .await?;
                report.deferred += 1;
                continue;
            }
            let email = match message.kind {
                OutboxKind::ShippingConfirmation => self.confirmation(listing, message.id),
                OutboxKind::RefundConfirmation(id) => match self.returns.find_return(id).await? {
                    Some(ret) => self.refund_confirmation(listing, &ret, message.id),
                    None => {
                        done.push(message.id);
                        continue;
                    }
                },
            };
            match self.mailer.send(&email).await {
                Ok(()) => {
                    done.push(message.id);
                    report.sent += 1;
                }
                Err(error @ consign_ports::MailError::Refused(_)) => {
                    // Sending it again would be refused the same way, every hour for good.
                    tracing::error!(shipment = %message.shipment, kind = ?message.kind, %error, "confirmation refused; not sent again");
                    self.store
                        .outbox_refused(message.id, &error.to_string(), self.clock.now())
                        .await?;
                    report.refused += 1;
                }
                Err(error @ consign_ports::MailError::NotSent(_)) => {
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
        Ok(())
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

#[cfg(test)]
mod tests {
    use consign_domain::*;
    use consign_ports::*;

    use crate::test_support::*;

    fn id(number: u32) -> ShipmentId {
        ShipmentId {
            order: OrderId(83651),
            number,
        }
    }

    fn message(id_: i64, number: u32, kind: OutboxKind) -> OutboxMessage {
        OutboxMessage {
            id: id_,
            shipment: id(number),
            kind,
            attempts: 0,
        }
    }

    fn listing(number: u32) -> ShipmentListing {
        let mut shipment = view(ShipmentState::Captured);
        shipment.id = id(number);
        shipment.details.shipping.tracking = format!("T{number}");
        listing_of(shipment, 3)
    }

    /// A store whose claim answers `due`, with shipments 1 and 3 live (2 deleted since), read
    /// once for the whole pass.
    fn store_claiming(due: Vec<OutboxMessage>) -> MockOrderStore {
        let mut store = MockOrderStore::new();
        store
            .expect_claim_outbox()
            .times(1)
            .returning(move |_, _, _| Ok(due.clone()));
        store.expect_find_shipments().times(1).returning(|ids| {
            Ok(ids
                .iter()
                .filter(|i| i.number != 2)
                .map(|i| listing(i.number))
                .collect())
        });
        store
    }

    /// One outbox pass of a service on `store`, `mailer` and `clock`.
    async fn one_pass(
        store: MockOrderStore,
        mailer: MockMailer,
        clock: MockClock,
    ) -> crate::OutboxReport {
        service_with_mailer(
            store,
            MockReturnStore::new(),
            sandbox_named_mock(),
            MockKeyStore::new(),
            mailer,
            clock,
        )
        .deliver_outbox()
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn a_pass_reads_its_shipments_once_and_marks_what_it_sent_in_one_write() {
        let mut store = store_claiming(vec![
            message(11, 1, OutboxKind::ShippingConfirmation),
            message(12, 2, OutboxKind::ShippingConfirmation),
            message(13, 3, OutboxKind::ShippingConfirmation),
        ]);
        // 12's shipment is gone: nothing to confirm, marked with the sent one; 13's send fails.
        store
            .expect_outbox_sent()
            .withf(|ids, _| ids == [11, 12])
            .times(1)
            .returning(|_, _| Ok(()));
        store
            .expect_outbox_failed()
            .withf(|id, error, _| *id == 13 && error.contains("mail server down"))
            .times(1)
            .returning(|_, _, _| Ok(()));
        let mut mailer = MockMailer::new();
        mailer
            .expect_send()
            .withf(|email| email.text.contains("T1"))
            .times(1)
            .returning(|_| Ok(()));
        mailer
            .expect_send()
            .withf(|email| email.text.contains("T3"))
            .times(1)
            .returning(|_| Err(MailError::NotSent("mail server down".into())));
        let report = one_pass(store, mailer, fixed_clock()).await;
        assert_eq!(
            report,
            crate::OutboxReport {
                sent: 1,
                failed: 1,
                refused: 0,
                deferred: 0
            }
        );
    }

    /// A refusal for good is recorded as such, not as a failure to retry: sent again, it would
    /// be refused the same way, every hour for good.
    #[tokio::test]
    async fn a_refused_confirmation_is_given_up_not_retried() {
        let mut store = store_claiming(vec![
            message(51, 1, OutboxKind::ShippingConfirmation),
            message(53, 3, OutboxKind::ShippingConfirmation),
        ]);
        store.expect_outbox_failed().never();
        store
            .expect_outbox_refused()
            .withf(|id, error, _| *id == 51 && error.contains("no such mailbox"))
            .times(1)
            .returning(|_, _, _| Ok(()));
        store
            .expect_outbox_sent()
            .withf(|ids, _| ids == [53])
            .times(1)
            .returning(|_, _| Ok(()));
        let mut mailer = MockMailer::new();
        mailer
            .expect_send()
            .withf(|email| email.text.contains("T1"))
            .times(1)
            .returning(|_| Err(MailError::Refused("550 no such mailbox".into())));
        mailer
            .expect_send()
            .withf(|email| email.text.contains("T3"))
            .times(1)
            .returning(|_| Ok(()));
        let report = one_pass(store, mailer, fixed_clock()).await;
        assert_eq!(
            report,
            crate::OutboxReport {
                sent: 1,
                failed: 0,
                refused: 1,
                deferred: 0
            }
        );
    }

    #[tokio::test]
    async fn a_pass_that_stops_on_an_error_still_marks_what_it_sent() {
        let mut store = store_claiming(vec![
            message(21, 1, OutboxKind::ShippingConfirmation),
            message(22, 3, OutboxKind::RefundConfirmation(ReturnId(5))),
        ]);
        store
            .expect_outbox_sent()
            .withf(|ids, _| ids == [21])
            .times(1)
            .returning(|_, _| Ok(()));
        let mut returns = MockReturnStore::new();
        returns
            .expect_find_return()
            .returning(|_| Err(StoreError::Unavailable("database down".into())));
        let mut mailer = MockMailer::new();
        mailer.expect_send().times(1).returning(|_| Ok(()));
        let consign = service_with_mailer(
            store,
            returns,
            sandbox_named_mock(),
            MockKeyStore::new(),
            mailer,
            fixed_clock(),
        );
        assert!(consign.deliver_outbox().await.is_err());
    }

    #[tokio::test]
    async fn a_slow_pass_sends_nothing_more_once_half_the_lease_has_gone() {
        let mut store = store_claiming(vec![
            message(31, 1, OutboxKind::ShippingConfirmation),
            message(32, 1, OutboxKind::ShippingConfirmation),
            message(33, 3, OutboxKind::ShippingConfirmation),
        ]);
        store
            .expect_outbox_sent()
            .withf(|ids, _| ids == [31, 32])
            .times(1)
            .returning(|_, _| Ok(()));
        let mut mailer = MockMailer::new();
        mailer
            .expect_send()
            .withf(|email| !email.message_id.contains("-33@"))
            .times(2)
            .returning(|_| Ok(()));
        // Each look at the clock is 10 s after the one before: the pass starts at 1,000 s and
        // the lease is 60 s, so at 1,030 s the third message is left for a later pass.
        let mut clock = MockClock::new();
        let mut looks = 0;
        clock.expect_now().returning(move || {
            looks += 1;
            Timestamp(1_000_000 + 10_000 * (looks - 1))
        });
        let report = one_pass(store, mailer, clock).await;
        assert_eq!(report.sent, 2);
    }

    /// A confirmation whose shipment's capture is still in flight is put off for a short while,
    /// not counted as a failed send: its backoff would otherwise grow with every look, and the
    /// confirmation go out up to an hour after the capture was recorded.
    #[tokio::test]
    async fn a_confirmation_waiting_for_its_capture_is_put_off_without_counting_a_failure() {
        let mut store = MockOrderStore::new();
        let mut waiting = message(41, 1, OutboxKind::ShippingConfirmation);
        waiting.attempts = 8;
        store
            .expect_claim_outbox()
            .times(1)
            .returning(move |_, _, _| Ok(vec![waiting.clone()]));
        store.expect_find_shipments().times(1).returning(|ids| {
            let mut shipment = view(ShipmentState::CapturePending);
            shipment.id = ids[0];
            Ok(vec![listing_of(shipment, 3)])
        });
        store.expect_outbox_failed().never();
        store.expect_outbox_sent().never();
        store
            .expect_outbox_later()
            .withf(|id, _, due_at| *id == 41 && *due_at == Timestamp(1_000_000 + 6 * 5_000))
            .times(1)
            .returning(|_, _, _| Ok(()));
        let mut mailer = MockMailer::new();
        mailer.expect_send().never();
        let report = one_pass(store, mailer, fixed_clock()).await;
        assert_eq!(report.deferred, 1);
    }

    /// A document is laid out on the blocking pool: on the calling task's thread (an HTTP
    /// worker's), a long shipment's layout would hold up every connection of that worker.
    #[tokio::test]
    async fn a_document_is_rendered_off_the_calling_thread() {
        let caller = std::thread::current().id();
        let mut store = MockOrderStore::new();
        store
            .expect_find_shipment()
            .times(1)
            .returning(|id| Ok(Some(listing(id.number))));
        let mut renderer = MockDocumentRenderer::new();
        renderer
            .expect_render()
            .withf(|kind, data| *kind == DocumentKind::DeliveryNote && data.shipment.id == id(1))
            .times(1)
            .returning(move |_, _| Ok(format!("{:?}", std::thread::current().id()).into_bytes()));
        let mut ports = ports_with_clock(fixed_clock());
        ports.store = std::sync::Arc::new(store);
        ports.renderer = std::sync::Arc::new(renderer);
        let consign = crate::Consign::new(
            ports,
            crate::Gateways::new(),
            crate::StoreSettings::default(),
        );
        let rendered_on = consign
            .document(id(1), DocumentKind::DeliveryNote)
            .await
            .unwrap();
        assert_ne!(
            String::from_utf8(rendered_on).unwrap(),
            format!("{caller:?}")
        );
    }

    /// Counts the layouts running at once (a mock would run them one by one: its
    /// expectations are behind a lock), each taking `millis`.
    #[derive(Default)]
    struct Counting {
        busy: std::sync::atomic::AtomicUsize,
        most: std::sync::atomic::AtomicUsize,
        millis: u64,
    }

    impl DocumentRenderer for Counting {
        fn render(&self, _: DocumentKind, _: &DocumentData) -> Result<Vec<u8>, DocumentError> {
            use std::sync::atomic::Ordering;
            let now = self.busy.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(self.millis));
            self.busy.fetch_sub(1, Ordering::SeqCst);
            Ok(b"%PDF".to_vec())
        }
    }

    /// A service whose store finds shipment 1 and whose renderer is `renderer`.
    fn counted(renderer: std::sync::Arc<Counting>) -> crate::Consign {
        let mut store = MockOrderStore::new();
        store
            .expect_find_shipment()
            .returning(|id| Ok(Some(listing(id.number))));
        let mut ports = ports_with_clock(fixed_clock());
        ports.store = std::sync::Arc::new(store);
        ports.renderer = renderer;
        crate::Consign::new(
            ports,
            crate::Gateways::new(),
            crate::StoreSettings::default(),
        )
    }

    fn cores() -> usize {
        std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
    }

    /// Documents asked for at once are laid out one a core at a time: each holds a thread of
    /// the blocking pool (which grows to hundreds) and its document's memory while it runs.
    #[tokio::test]
    async fn documents_are_laid_out_at_most_one_a_core_at_once() {
        let renderer = std::sync::Arc::new(Counting {
            millis: 20,
            ..Counting::default()
        });
        let consign = counted(renderer.clone());
        let mut asking = tokio::task::JoinSet::new();
        for _ in 0..cores() * 3 {
            let consign = consign.clone();
            asking.spawn(async move { consign.document(id(1), DocumentKind::DeliveryNote).await });
        }
        while let Some(answer) = asking.join_next().await {
            assert_eq!(answer.unwrap().unwrap(), b"%PDF");
        }
        let most = renderer.most.load(std::sync::atomic::Ordering::SeqCst);
        assert!(
            (1..=cores()).contains(&most),
            "{most} at once on {} cores",
            cores()
        );
    }

    /// A request dropped while its document is laid out (the client hung up) keeps its turn
    /// until the layout ends: otherwise asking and hanging up would start layouts without end.
    #[tokio::test]
    async fn a_dropped_request_keeps_its_turn_until_its_layout_ends() {
        use std::sync::atomic::Ordering;
        let renderer = std::sync::Arc::new(Counting {
            millis: 300,
            ..Counting::default()
        });
        let consign = counted(renderer.clone());
        let mut dropped = tokio::task::JoinSet::new();
        for _ in 0..cores() {
            let consign = consign.clone();
            dropped.spawn(async move { consign.document(id(1), DocumentKind::Proforma).await });
        }
        while renderer.busy.load(Ordering::SeqCst) < cores() {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        dropped.abort_all();
        let mut asking = tokio::task::JoinSet::new();
        for _ in 0..cores() {
            let consign = consign.clone();
            asking.spawn(async move { consign.document(id(1), DocumentKind::Proforma).await });
        }
        while let Some(answer) = asking.join_next().await {
            assert_eq!(answer.unwrap().unwrap(), b"%PDF");
        }
        let most = renderer.most.load(Ordering::SeqCst);
        assert_eq!(most, cores(), "{most} at once on {} cores", cores());
    }
}
