//! Returns and refunds: the refund saga beside the capture saga, with the same shape.
//!
//! 1. Reserve, one transaction in the store: the domain plans the return (and starts its
//!    refund), the returned units are recorded and a pending refund attempt with a stable
//!    provider key is written; the refund's amount is held against the shipment.
//! 2. Refund, no transaction open: the gateway is called with that key.
//! 3. Settle, one transaction: refunded (the return is completed, its credit note issued), or
//!    declined (the held amount is released; the return stays, not completed).
//!
//! An unknown outcome or a crash between the steps leaves a pending attempt, which recovery
//! replays with the same key: the provider answers the first result, so nothing is refunded
//! twice and nothing refunded is lost.

use consign_domain::{
    Cost, Money, NotReturned, Return, ReturnId, ReturnRequest, ShipmentId, ShipmentLine,
};
use consign_ports::{
    BeginRefund, RefundAttempt, RefundLookup, RefundOutcome, RefundRequest, RefundSettle,
    ReturnDetails, ReturnQuery, ReturnView,
};

use crate::consign::Consign;
use crate::create_shipment::{REVIEW_AFTER_PASSES, ZERO_CAPTURE_REFERENCE};
use crate::error::ServiceError;
use crate::key_window::{KEY_WINDOW_MILLIS, REPLAY_MARGIN_MILLIS};

/// The longest a refund the provider accepted but has not made rests between two lookups.
pub const SETTLING_REST_MAX_MILLIS: i64 = 3_600_000;

/// How long a refund the provider accepted but has not made (Stripe's `pending`) rests after a
/// lookup before recovery looks it up again: a tenth of its age, at most
/// [`SETTLING_REST_MAX_MILLIS`]. One made within seconds (most card refunds) is looked up at
/// recovery's pace; one that takes days (a bank transfer, say) about once an hour instead of
/// on every pass, a provider call and a write each.
fn settling_rest_millis(age_millis: i64) -> i64 {
    (age_millis / 10).clamp(0, SETTLING_REST_MAX_MILLIS)
}

/// A cost of a return as the request gives it: the amount is still text, read in the order's
/// currency once the store has it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum CostAsk {
    /// None.
    #[default]
    None,
    /// This decimal amount.
    Given(String),
    /// What the shipment carried.
    FromShipment,
}

/// Whether `existing`, the return this request's key created, is what `ask` asks for: the same
/// shipment; each line it holds asked for with its units (a line the request named and that was
/// left out is not in it); each amount the request gives as stored; a return-to-stock given as
/// stored; and a refund, when one is asked, started. A retry after a 503 (whose answer is not
/// stored) or past the stored answers' lifetime sends the same request; anything else with the
/// key is not its retry, and is never answered with this return.
fn same_return(existing: &ReturnView, ask: &ReturnAsk) -> bool {
    use consign_domain::RefundState;
    let currency = existing.refund.currency();
    let as_stored =
        |text: &str, stored: Money| Money::parse(text, currency).is_ok_and(|m| m == stored);
    let cost_as_stored = |asked: &CostAsk, stored: Money| match asked {
        CostAsk::Given(text) => as_stored(text, stored),
        CostAsk::None | CostAsk::FromShipment => true,
    };
    let lines_asked = ask.lines.as_ref().is_none_or(|asked| {
        existing.lines.iter().all(|held| {
            asked
                .iter()
                .any(|l| l.line_id == held.line_id && l.quantity == held.quantity)
        })
    });
    existing.shipment == ask.shipment
        && lines_asked
        && cost_as_stored(&ask.shipping, existing.shipping)
        && cost_as_stored(&ask.handling, existing.handling)
        && cost_as_stored(&ask.voucher, existing.voucher)
        && ask
            .return_cost
            .as_deref()
            .is_none_or(|text| as_stored(text, existing.return_cost))
        && ask
            .return_to_stock
            .is_none_or(|asked| asked == existing.return_to_stock)
        && !(ask.refund && existing.refund_state == RefundState::None)
}

/// What a create-return request asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnAsk {
    /// The captured shipment.
    pub shipment: ShipmentId,
    /// Lines and quantities; `None`: everything still returnable.
    pub lines: Option<Vec<ShipmentLine>>,
    /// Shipping refunded.
    pub shipping: CostAsk,
    /// Handling refunded.
    pub handling: CostAsk,
    /// Vouchers deducted.
    pub voucher: CostAsk,
    /// Return cost deducted (decimal text).
    pub return_cost: Option<String>,
    /// Refund now.
    pub refund: bool,
    /// Send the refund confirmation.
    pub send_email: bool,
    /// Items back to stock (`None`: the store setting).
    pub return_to_stock: Option<bool>,
    /// A note.
    pub comment: String,
}

/// What the provider said to a refund that was asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundResult {
    /// Refunded.
    Refunded,
    /// Declined; the return stays, not completed.
    Declined {
        /// The provider's message.
        message: String,
    },
    /// Accepted by the provider and still settling: the return stays pending, not completed,
    /// until recovery finds the provider's final answer (which may still be a decline).
    Settling,
}

/// A created return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnOutcome {
    /// The return.
    pub view: ReturnView,
    /// Lines asked for and left out, with why.
    pub not_returned: Vec<NotReturned>,
    /// The refund's result, when one was asked for.
    pub refund: Option<RefundResult>,
}

/// What one refund recovery pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RefundRecoveryReport {
    /// Attempts found pending.
    pub examined: usize,
    /// Settled as refunded.
    pub refunded: usize,
    /// Settled as declined.
    pub declined: usize,
    /// Accepted by the provider and still settling; looked up again on the next pass.
    pub settling: usize,
    /// Still unknown; left pending for the next pass.
    pub unresolved: usize,
}

impl Consign {
    /// Creates a return of a captured shipment and, with `ask.refund`, refunds it.
    ///
    /// Errors: [`ServiceError::ReturnRejected`] (nothing written),
    /// [`ServiceError::RefundUnknown`] (the return exists; its refund stays pending until
    /// recovery settles it). A declined refund is not an error: the return exists, not
    /// completed, and the outcome says why.
    ///
    /// With a `request_key` (the client's idempotency key, scoped to its API key) a retry of a
    /// request that already created a return continues from it instead of returning the items
    /// again: a pending refund is driven to its outcome, a settled one is answered as it settled.
    pub async fn create_return(
        &self,
        ask: ReturnAsk,
        request_key: Option<String>,
    ) -> Result<ReturnOutcome, ServiceError> {
        if let Some(key) = &request_key {
            if let Some(existing) = self.returns.find_by_request_key(key).await? {
                if !same_return(&existing, &ask) {
                    return Err(ServiceError::IdempotencyKeyReused);
                }
                return self.resume_return(existing).await;
            }
        }
        let listing = self
            .store
            .find_shipment(ask.shipment)
            .await?
            .ok_or(ServiceError::ShipmentNotFound(ask.shipment))?;
        let currency = listing.order.order.currency();
        let money = |field: &'static str, text: &str| {
            Money::parse(text, currency).map_err(|error| ServiceError::InvalidAmount {
                field,
                why: error.to_string(),
            })
        };
        let cost = |field: &'static str, ask: &CostAsk| -> Result<Cost, ServiceError> {
            Ok(match ask {
                CostAsk::None => Cost::None,
                CostAsk::Given(text) => Cost::Given(money(field, text)?),
                CostAsk::FromShipment => Cost::FromShipment,
            })
        };
        let request = ReturnRequest {
            lines: ask.lines.clone(),
            shipping: cost("shippingCost", &ask.shipping)?,
            handling: cost("handlingCost", &ask.handling)?,
            voucher: cost("voucherValue", &ask.voucher)?,
            return_cost: ask
                .return_cost
                .as_deref()
                .map(|text| money("returnCost", text))
                .transpose()?,
        };
        let details = ReturnDetails {
            return_to_stock: ask.return_to_stock.unwrap_or(self.settings.return_to_stock),
            comment: ask.comment.clone(),
            send_email: ask.send_email,
        };
        let created = self
            .returns
            .create_return(
                ask.shipment,
                request,
                ask.refund,
                self.gateways.providers(),
                details,
                request_key,
                self.clock.now(),
            )
            .await?;
        let Some(attempt) = created.attempt else {
            return Ok(ReturnOutcome {
                view: created.view,
                not_returned: created.not_returned,
                refund: None,
            });
        };
        crate::failpoints::reached("after-refund-reserve").await;
        fail::fail_point!("after-refund-reserve");
        let (view, refund) = self.refund_and_settle(&attempt).await?;
        Ok(ReturnOutcome {
            view,
            not_returned: created.not_returned,
            refund: Some(refund),
        })
    }

    /// Answers a return created by an earlier run of the same request.
    async fn resume_return(&self, view: ReturnView) -> Result<ReturnOutcome, ServiceError> {
        use consign_domain::RefundState;
        let refund = match view.refund_state {
            RefundState::None => None,
            RefundState::Refunded => Some(RefundResult::Refunded),
            RefundState::Declined => Some(RefundResult::Declined {
                message: view.decline.clone().map(|d| d.1).unwrap_or_default(),
            }),
            RefundState::Pending | RefundState::NeedsReview => {
                let attempt = self
                    .returns
                    .open_refund(view.id)
                    .await?
                    .ok_or(ServiceError::RefundUnknown(view.id))?;
                let (view, refund) = self.refund_and_settle(&attempt).await?;
                return Ok(ReturnOutcome {
                    view,
                    not_returned: Vec::new(),
                    refund: Some(refund),
                });
            }
        };
        Ok(ReturnOutcome {
            view,
            not_returned: Vec::new(),
            refund,
        })
    }

    /// Update return: `refund` asks for what the return still owes (a refunded return is
    /// answered as it is, with no provider call), then `completed` sets its status. Both are
    /// checked together first ([`Return::check_update`]): a refund with `completed: false` is
    /// refused with nothing sent (for a return that does not exist: not found).
    ///
    /// A declined refund is [`ServiceError::RefundDeclined`] with the return as it is now.
    pub async fn update_return(
        &self,
        id: ReturnId,
        completed: Option<bool>,
        refund: bool,
        send_email: Option<bool>,
    ) -> Result<ReturnView, ServiceError> {
        if let Err(refused) = Return::check_update(completed, refund) {
            // A request that contradicts itself is refused with nothing sent; for a return that
            // does not exist, that is the answer (one read, on the refusal only).
            return Err(match self.returns.find_return(id).await? {
                None => ServiceError::ReturnNotFound(id),
                Some(_) => refused.into(),
            });
        }
        let mut view = None;
        if refund {
            match self
                .returns
                .begin_refund(id, self.gateways.providers(), send_email, self.clock.now())
                .await?
            {
                BeginRefund::AlreadyRefunded(already) => view = Some(already),
                BeginRefund::Started(attempt) => {
                    crate::failpoints::reached("after-refund-reserve").await;
                    fail::fail_point!("after-refund-reserve");
                    match self.refund_and_settle(&attempt).await? {
                        (settled, RefundResult::Refunded | RefundResult::Settling) => {
                            view = Some(settled)
                        }
                        (settled, RefundResult::Declined { message }) => {
                            return Err(ServiceError::RefundDeclined {
                                view: Box::new(settled),
                                message,
                            })
                        }
                    }
                }
            }
        }
        if let Some(completed) = completed {
            return Ok(self
                .returns
                .set_return_completed(id, completed, self.clock.now())
                .await?);
        }
        match view {
            Some(view) => Ok(view),
            None => self.get_return(id).await,
        }
    }

    /// One return.
    pub async fn get_return(&self, id: ReturnId) -> Result<ReturnView, ServiceError> {
        self.returns
            .find_return(id)
            .await?
            .ok_or(ServiceError::ReturnNotFound(id))
    }

    /// Returns matching Centra's `GET returns` filters, newest first.
    pub async fn list_returns(&self, query: ReturnQuery) -> Result<Vec<ReturnView>, ServiceError> {
        Ok(self.returns.list_returns(query).await?)
    }

    /// Replays every refund attempt pending for longer than `min_age_millis` with its own key,
    /// and settles what the provider answers.
    pub async fn recover_pending_refunds(
        &self,
        min_age_millis: i64,
    ) -> Result<RefundRecoveryReport, ServiceError> {
        let before = self.clock.now().minus_millis(min_age_millis);
        let pending = self.returns.pending_refunds(before).await?;
        let mut report = RefundRecoveryReport {
            examined: pending.len(),
            ..RefundRecoveryReport::default()
        };
        for attempt in pending {
            match self.refund_and_settle(&attempt).await {
                Ok((_, RefundResult::Refunded)) => report.refunded += 1,
                Ok((_, RefundResult::Declined { .. })) => report.declined += 1,
                Ok((_, RefundResult::Settling)) => report.settling += 1,
                Err(ServiceError::RefundUnknown(_)) => report.unresolved += 1,
                Err(other) => {
                    tracing::warn!(return_id = %attempt.return_id, error = %other, "recovery could not settle this refund yet");
                    report.unresolved += 1;
                }
            }
        }
        if report.examined > 0 {
            tracing::info!(?report, "refund recovery pass");
        }
        Ok(report)
    }

    /// Steps 2 and 3 of the refund saga for one attempt; also what recovery replays. An attempt
    /// older than the provider keeps idempotency keys is looked up instead of sent again: the
    /// same key could then make a second refund. So is one the provider accepted and is still
    /// settling: sent again with its key, it would only get the same first answer back.
    async fn refund_and_settle(
        &self,
        attempt: &RefundAttempt,
    ) -> Result<(ReturnView, RefundResult), ServiceError> {
        let age = self.clock.now().0 - attempt.created_at.0;
        // A zero refund never reaches the provider: there is nothing to look up.
        let looked_up = attempt.accepted.is_some() || age > KEY_WINDOW_MILLIS;
        let outcome = if looked_up && attempt.amount.minor() != 0 {
            self.look_up_refund(attempt, age).await
        } else {
            self.call_refund(attempt).await
        };
        crate::failpoints::reached("after-refund").await;
        fail::fail_point!("after-refund");
        let settle = match outcome {
            RefundOutcome::Refunded { reference, status } => {
                RefundSettle::Refunded { reference, status }
            }
            RefundOutcome::Declined { code, message } => RefundSettle::Declined { code, message },
            RefundOutcome::Settling { reference, status } => {
                return self
                    .record_refund_accepted(attempt, &reference, &status)
                    .await;
            }
            RefundOutcome::Unknown { reason } => {
                self.record_refund_unknown(attempt, &reason).await;
                return Err(ServiceError::RefundUnknown(attempt.return_id));
            }
        };
        let provider_refunded = match &settle {
            RefundSettle::Refunded { reference, .. } => Some(reference.clone()),
            RefundSettle::Declined { .. } => None,
        };
        let settled = self
            .returns
            .settle_refund(attempt, settle, self.clock.now())
            .await;
        crate::failpoints::reached("after-refund-settle").await;
        fail::fail_point!("after-refund-settle");
        match settled {
            // The stored state decides: a concurrent settle of the same attempt may have won.
            Ok(view) => {
                if let Some(reference) = provider_refunded {
                    // Settled otherwise first (an operator's "not refunded", say) while the
                    // provider refunded: the money went out and the records say it did not, or
                    // say that another attempt's refund (another reference) is the return's.
                    let recorded = view.refund_reference.as_deref();
                    if view.refund_state != consign_domain::RefundState::Refunded
                        || recorded != Some(reference.as_str())
                    {
                        tracing::error!(return_id = %attempt.return_id, state = view.refund_state.as_str(), %reference, recorded = recorded.unwrap_or("none"), "the provider refunded this attempt, but it was settled otherwise first: reconcile it by hand before the refund is asked again");
                    }
                }
                let result = match view.refund_state {
                    consign_domain::RefundState::Refunded => RefundResult::Refunded,
                    // What the database holds, not this run's answer: another run may have
                    // settled the attempt first.
                    consign_domain::RefundState::Declined => RefundResult::Declined {
                        message: view.decline.clone().map(|d| d.1).unwrap_or_default(),
                    },
                    _ => return Err(ServiceError::RefundUnknown(attempt.return_id)),
                };
                Ok((view, result))
            }
            Err(error) => {
                tracing::error!(return_id = %attempt.return_id, %error, "could not settle refund");
                Err(ServiceError::RefundUnknown(attempt.return_id))
            }
        }
    }

    /// Keeps the provider's acceptance of a refund still settling; the stored state decides
    /// the answer, as for a settle (another run may have settled the attempt first).
    async fn record_refund_accepted(
        &self,
        attempt: &RefundAttempt,
        reference: &str,
        status: &str,
    ) -> Result<(ReturnView, RefundResult), ServiceError> {
        let now = self.clock.now();
        let rest = settling_rest_millis(now.0 - attempt.created_at.0);
        let view = self
            .returns
            .record_refund_accepted(attempt, reference, status, rest, now)
            .await
            .map_err(|error| {
                tracing::error!(return_id = %attempt.return_id, %error, "could not record a refund the provider accepted");
                ServiceError::RefundUnknown(attempt.return_id)
            })?;
        let result = match view.refund_state {
            consign_domain::RefundState::Refunded => RefundResult::Refunded,
            consign_domain::RefundState::Declined => RefundResult::Declined {
                message: view.decline.clone().map(|d| d.1).unwrap_or_default(),
            },
            _ => {
                tracing::info!(return_id = %attempt.return_id, %reference, %status, "refund accepted by the provider and still settling");
                RefundResult::Settling
            }
        };
        Ok((view, result))
    }

    async fn record_refund_unknown(&self, attempt: &RefundAttempt, reason: &str) {
        match self
            .returns
            .record_refund_unknown(attempt, reason, self.clock.now(), REVIEW_AFTER_PASSES)
            .await
        {
            Ok(true) => {
                tracing::error!(return_id = %attempt.return_id, %reason, "refund still unknown after {REVIEW_AFTER_PASSES} passes: needs review")
            }
            Ok(false) => {
                tracing::warn!(return_id = %attempt.return_id, %reason, "refund outcome unknown; left pending for recovery")
            }
            Err(error) => {
                tracing::error!(return_id = %attempt.return_id, %reason, %error, "refund outcome unknown and not recorded")
            }
        }
    }

    /// What the provider says of an attempt past the key window: found, it settles as the
    /// provider has it; no answer, it stays unknown. Not there: no refund was made, so it
    /// settles as declined and can be asked again, but only once the attempt is older than the
    /// window by a margin: a replay with the key, started just inside the window by another
    /// run (a client's retry, say), may still be on its way, and declining under it could let
    /// the refund be made twice. Inside the margin it stays unknown. An attempt the provider
    /// accepted is looked up at any age, and not finding it leaves it unknown.
    async fn look_up_refund(&self, attempt: &RefundAttempt, age: i64) -> RefundOutcome {
        let Some(gateway) = self.gateways.get(&attempt.authorization.provider) else {
            return RefundOutcome::Unknown {
                reason: format!(
                    "no gateway configured for provider {:?}",
                    attempt.authorization.provider
                ),
            };
        };
        match gateway.find_refund(refund_request(attempt)).await {
            RefundLookup::Found(outcome) => outcome,
            // It was there: not finding it now decides nothing.
            RefundLookup::NotFound if attempt.accepted.is_some() => RefundOutcome::Unknown {
                reason: "the provider accepted this refund but does not list it".into(),
            },
            RefundLookup::NotFound if age > KEY_WINDOW_MILLIS + REPLAY_MARGIN_MILLIS => {
                RefundOutcome::Declined {
                    code: "not_found_at_provider".into(),
                    message:
                        "the provider made no refund for this attempt; ask for the refund again"
                            .into(),
                }
            }
            RefundLookup::NotFound => RefundOutcome::Unknown {
                reason: "not found at the provider yet; a replay may still be on its way".into(),
            },
            RefundLookup::Unknown { reason } => RefundOutcome::Unknown { reason },
        }
    }

    async fn call_refund(&self, attempt: &RefundAttempt) -> RefundOutcome {
        if attempt.amount.minor() == 0 {
            return RefundOutcome::Refunded {
                reference: ZERO_CAPTURE_REFERENCE.to_owned(),
                status: "succeeded".to_owned(),
            };
        }
        let Some(gateway) = self.gateways.get(&attempt.authorization.provider) else {
            return RefundOutcome::Unknown {
                reason: format!(
                    "no gateway configured for provider {:?}",
                    attempt.authorization.provider
                ),
            };
        };
        gateway.refund(refund_request(attempt)).await
    }
}

/// The provider request of an attempt, with metadata naming the order, the return and the
/// attempt's key, by which the refund can be found again.
fn refund_request(attempt: &RefundAttempt) -> RefundRequest {
    RefundRequest {
        authorization: attempt.authorization.clone(),
        amount: attempt.amount,
        idempotency_key: attempt.idempotency_key.clone(),
        metadata: vec![
            ("consign_order".to_owned(), attempt.order.to_string()),
            ("consign_return".to_owned(), attempt.return_id.to_string()),
            ("consign_key".to_owned(), attempt.idempotency_key.clone()),
        ],
    }
}

#[cfg(test)]
mod tests {
    use consign_domain::*;
    use consign_ports::*;

    use super::*;
    use crate::test_support::*;

    /// What the store answers a create-return with a refund: the return, its refund pending.
    fn created_with_its_refund_pending() -> ReturnCreated {
        ReturnCreated {
            view: return_view(RefundState::Pending),
            not_returned: vec![],
            attempt: Some(refund_attempt()),
        }
    }

    fn listing() -> ShipmentListing {
        listing_of(view(ShipmentState::Captured), 1)
    }

    fn ask(refund: bool) -> ReturnAsk {
        ReturnAsk {
            shipment: shipment_id(),
            lines: None,
            shipping: CostAsk::None,
            handling: CostAsk::None,
            voucher: CostAsk::None,
            return_cost: Some("20.00".into()),
            refund,
            send_email: false,
            return_to_stock: None,
            comment: String::new(),
        }
    }

    fn store_with_listing() -> MockOrderStore {
        let mut store = MockOrderStore::new();
        store
            .expect_find_shipment()
            .returning(|_| Ok(Some(listing())));
        store
    }

    #[tokio::test]
    async fn a_refund_is_sent_once_with_its_key_and_settled() {
        let mut returns = MockReturnStore::new();
        returns
            .expect_create_return()
            .withf(|_, request, refund, _, details, _, _| {
                *refund
                    && request.return_cost.map(|m| m.minor()) == Some(2_000)
                    && details.return_to_stock
            })
            .times(1)
            .returning(|_, _, _, _, _, _, _| Ok(created_with_its_refund_pending()));
        returns
            .expect_settle_refund()
            .withf(|a, outcome, _| {
                a.idempotency_key == "refund-key-1"
                    && matches!(outcome, RefundSettle::Refunded { reference, .. } if reference == "re_1")
            })
            .times(1)
            .returning(|_, _, _| Ok(return_view(RefundState::Refunded)));
        let mut gateway = sandbox_named_mock();
        gateway
            .expect_refund()
            .withf(|r| {
                r.idempotency_key == "refund-key-1"
                    && r.amount.minor() == 24_950
                    && r.metadata
                        .contains(&("consign_return".into(), "5397".into()))
            })
            .times(1)
            .returning(|_| RefundOutcome::Refunded {
                reference: "re_1".into(),
                status: "succeeded".into(),
            });
        let consign = service_with(store_with_listing(), returns, gateway, MockKeyStore::new());
        let outcome = consign.create_return(ask(true), None).await.unwrap();
        assert_eq!(outcome.refund, Some(RefundResult::Refunded));
        assert!(outcome.view.completed);
    }

    #[tokio::test]
    async fn an_unknown_refund_stays_pending_and_is_not_settled() {
        let mut returns = MockReturnStore::new();
        returns
            .expect_create_return()
            .returning(|_, _, _, _, _, _, _| Ok(created_with_its_refund_pending()));
        returns.expect_settle_refund().never();
        returns
            .expect_record_refund_unknown()
            .withf(|a, reason, _, after| {
                a.idempotency_key == "refund-key-1"
                    && reason == "timeout"
                    && *after == REVIEW_AFTER_PASSES
            })
            .times(1)
            .returning(|_, _, _, _| Ok(false));
        let mut gateway = sandbox_named_mock();
        gateway
            .expect_refund()
            .times(1)
            .returning(|_| RefundOutcome::Unknown {
                reason: "timeout".into(),
            });
        let consign = service_with(store_with_listing(), returns, gateway, MockKeyStore::new());
        assert_eq!(
            consign.create_return(ask(true), None).await.unwrap_err(),
            ServiceError::RefundUnknown(ReturnId(5397))
        );
    }

    #[tokio::test]
    async fn an_amount_the_currency_cannot_hold_is_refused_before_the_store() {
        let mut returns = MockReturnStore::new();
        returns.expect_create_return().never();
        let mut gateway = sandbox_named_mock();
        gateway.expect_refund().never();
        let consign = service_with(store_with_listing(), returns, gateway, MockKeyStore::new());
        let mut too_precise = ask(true);
        too_precise.return_cost = Some("1.005".into());
        assert!(matches!(
            consign.create_return(too_precise, None).await.unwrap_err(),
            ServiceError::InvalidAmount {
                field: "returnCost",
                ..
            }
        ));
    }

    #[tokio::test]
    async fn a_refunded_return_is_never_sent_again() {
        let mut returns = MockReturnStore::new();
        returns
            .expect_begin_refund()
            .times(1)
            .returning(|_, _, _, _| {
                Ok(BeginRefund::AlreadyRefunded(return_view(
                    RefundState::Refunded,
                )))
            });
        let mut gateway = sandbox_named_mock();
        gateway.expect_refund().never();
        let consign = service_with(MockOrderStore::new(), returns, gateway, MockKeyStore::new());
        let view = consign
            .update_return(ReturnId(5397), None, true, None)
            .await
            .unwrap();
        assert_eq!(view.refund_state, RefundState::Refunded);
    }

    #[tokio::test]
    async fn an_attempt_past_the_key_window_is_looked_up_never_sent_again() {
        for (found, expected) in [
            (
                RefundLookup::Found(RefundOutcome::Refunded {
                    reference: "re_9".into(),
                    status: "succeeded".into(),
                }),
                "refunded",
            ),
            (RefundLookup::NotFound, "declined"),
        ] {
            let mut returns = MockReturnStore::new();
            returns.expect_pending_refunds().returning(|_| {
                let mut old = refund_attempt();
                old.created_at =
                    Timestamp(1_000_000 - KEY_WINDOW_MILLIS - REPLAY_MARGIN_MILLIS - 1);
                Ok(vec![old])
            });
            returns
                .expect_settle_refund()
                .withf(move |_, outcome, _| match outcome {
                    RefundSettle::Refunded { reference, .. } => {
                        expected == "refunded" && reference == "re_9"
                    }
                    RefundSettle::Declined { code, .. } => {
                        expected == "declined" && code == "not_found_at_provider"
                    }
                })
                .times(1)
                .returning(move |_, _, _| {
                    Ok(return_view(if expected == "refunded" {
                        RefundState::Refunded
                    } else {
                        RefundState::Declined
                    }))
                });
            let mut gateway = sandbox_named_mock();
            gateway.expect_refund().never();
            gateway
                .expect_find_refund()
                .withf(|r| {
                    r.metadata
                        .contains(&("consign_key".into(), "refund-key-1".into()))
                })
                .times(1)
                .return_const(found);
            let consign =
                service_with(MockOrderStore::new(), returns, gateway, MockKeyStore::new());
            let report = consign.recover_pending_refunds(5_000).await.unwrap();
            assert_eq!(report.examined, 1, "{expected}");
        }
    }

    /// One recovery pass over `attempt`, which the provider does not list: it must stay
    /// unknown, neither settled nor sent again.
    async fn not_found_stays_unknown(attempt: RefundAttempt) {
        let mut returns = MockReturnStore::new();
        returns
            .expect_pending_refunds()
            .returning(move |_| Ok(vec![attempt.clone()]));
        returns.expect_settle_refund().never();
        returns
            .expect_record_refund_unknown()
            .times(1)
            .returning(|_, _, _, _| Ok(false));
        let mut gateway = sandbox_named_mock();
        gateway.expect_refund().never();
        gateway
            .expect_find_refund()
            .times(1)
            .return_const(RefundLookup::NotFound);
        let consign = service_with(MockOrderStore::new(), returns, gateway, MockKeyStore::new());
        let report = consign.recover_pending_refunds(5_000).await.unwrap();
        assert_eq!(report.unresolved, 1);
    }

    #[tokio::test]
    async fn a_refund_not_found_just_past_the_window_stays_unknown_a_replay_may_be_on_its_way() {
        let mut old = refund_attempt();
        old.created_at = Timestamp(1_000_000 - KEY_WINDOW_MILLIS - 1);
        not_found_stays_unknown(old).await;
    }

    #[tokio::test]
    async fn recovery_replays_pending_refunds_with_their_own_keys() {
        let mut returns = MockReturnStore::new();
        returns
            .expect_pending_refunds()
            .withf(|before| *before == Timestamp(1_000_000 - 5_000))
            .returning(|_| Ok(vec![refund_attempt()]));
        returns
            .expect_settle_refund()
            .withf(|_, outcome, _| matches!(outcome, RefundSettle::Declined { .. }))
            .times(1)
            .returning(|_, _, _| Ok(return_view(RefundState::Declined)));
        let mut gateway = sandbox_named_mock();
        gateway
            .expect_refund()
            .withf(|r| r.idempotency_key == "refund-key-1")
            .times(1)
            .returning(|_| RefundOutcome::Declined {
                code: "expired".into(),
                message: "charge expired".into(),
            });
        let consign = service_with(MockOrderStore::new(), returns, gateway, MockKeyStore::new());
        let report = consign.recover_pending_refunds(5_000).await.unwrap();
        assert_eq!(
            report,
            RefundRecoveryReport {
                examined: 1,
                refunded: 0,
                declined: 1,
                settling: 0,
                unresolved: 0
            }
        );
    }

    /// A replay the provider answers refunded, whose attempt was settled otherwise first, is
    /// logged at error level: the return not refunded (an operator's "not refunded"), or
    /// refunded by another attempt since (another reference), in which case the customer got
    /// the money twice. Settled by this refund, or a concurrent settle of it, nothing is logged.
    #[tokio::test]
    async fn a_refund_made_after_its_attempt_was_settled_otherwise_is_logged() {
        let declined = return_view(RefundState::Declined);
        let mut by_another = return_view(RefundState::Refunded);
        by_another.refund_reference = Some("re_new".into());
        let mut by_this = return_view(RefundState::Refunded);
        by_this.refund_reference = Some("re_old".into());
        for (stands, logged_as_otherwise) in
            [(declined, true), (by_another, true), (by_this, false)]
        {
            let mut returns = MockReturnStore::new();
            returns
                .expect_pending_refunds()
                .returning(|_| Ok(vec![refund_attempt()]));
            let answer = stands.clone();
            returns
                .expect_settle_refund()
                .times(1)
                .returning(move |_, _, _| Ok(answer.clone()));
            let mut gateway = sandbox_named_mock();
            gateway
                .expect_refund()
                .times(1)
                .returning(|_| RefundOutcome::Refunded {
                    reference: "re_old".into(),
                    status: "succeeded".into(),
                });
            let consign =
                service_with(MockOrderStore::new(), returns, gateway, MockKeyStore::new());
            let (report, logs) = logged(consign.recover_pending_refunds(5_000)).await;
            assert_eq!(report.unwrap().examined, 1);
            assert_eq!(
                logs.contains("ERROR") && logs.contains("settled otherwise first"),
                logged_as_otherwise,
                "{stands:?}: {logs}"
            );
        }
    }

    /// A refund the provider accepts as still settling is recorded as accepted and answered
    /// settling: not settled, so no credit note and the return not completed.
    #[tokio::test]
    async fn a_refund_the_provider_is_still_settling_is_recorded_accepted_not_refunded() {
        let mut returns = MockReturnStore::new();
        returns
            .expect_create_return()
            .returning(|_, _, _, _, _, _, _| Ok(created_with_its_refund_pending()));
        returns.expect_settle_refund().never();
        returns.expect_record_refund_unknown().never();
        returns
            .expect_record_refund_accepted()
            .withf(|a, reference, status, _, _| {
                a.idempotency_key == "refund-key-1" && reference == "re_7" && status == "pending"
            })
            .times(1)
            .returning(|_, _, _, _, _| Ok(return_view(RefundState::Pending)));
        let mut gateway = sandbox_named_mock();
        gateway
            .expect_refund()
            .times(1)
            .returning(|_| RefundOutcome::Settling {
                reference: "re_7".into(),
                status: "pending".into(),
            });
        let consign = service_with(store_with_listing(), returns, gateway, MockKeyStore::new());
        let outcome = consign.create_return(ask(true), None).await.unwrap();
        assert_eq!(outcome.refund, Some(RefundResult::Settling));
        assert!(!outcome.view.completed);
    }

    /// An accepted attempt, however young, is looked up by its metadata (its key would only
    /// replay "pending"), and settles as the provider now has it.
    #[tokio::test]
    async fn an_accepted_refund_is_looked_up_not_sent_again_and_settles_as_found() {
        for (found, expected) in [
            (
                RefundOutcome::Refunded {
                    reference: "re_7".into(),
                    status: "succeeded".into(),
                },
                "refunded",
            ),
            (
                RefundOutcome::Declined {
                    code: "expired_or_canceled_card".into(),
                    message: "refund re_7 failed".into(),
                },
                "declined",
            ),
            (
                RefundOutcome::Settling {
                    reference: "re_7".into(),
                    status: "pending".into(),
                },
                "settling",
            ),
        ] {
            let mut returns = MockReturnStore::new();
            returns.expect_pending_refunds().returning(|_| {
                let mut accepted = refund_attempt();
                accepted.created_at = Timestamp(1_000_000 - 60_000);
                accepted.accepted = Some("re_7".into());
                Ok(vec![accepted])
            });
            returns
                .expect_settle_refund()
                .withf(move |_, outcome, _| match outcome {
                    RefundSettle::Refunded { reference, .. } => {
                        expected == "refunded" && reference == "re_7"
                    }
                    RefundSettle::Declined { code, .. } => {
                        expected == "declined" && code == "expired_or_canceled_card"
                    }
                })
                .times(usize::from(expected != "settling"))
                .returning(move |_, _, _| {
                    Ok(return_view(if expected == "refunded" {
                        RefundState::Refunded
                    } else {
                        RefundState::Declined
                    }))
                });
            // A minute old: it rests a tenth of that before the next lookup.
            returns
                .expect_record_refund_accepted()
                .withf(|_, _, _, rest, _| *rest == 6_000)
                .times(usize::from(expected == "settling"))
                .returning(|_, _, _, _, _| Ok(return_view(RefundState::Pending)));
            let mut gateway = sandbox_named_mock();
            gateway.expect_refund().never();
            gateway
                .expect_find_refund()
                .times(1)
                .return_const(RefundLookup::Found(found));
            let consign =
                service_with(MockOrderStore::new(), returns, gateway, MockKeyStore::new());
            let report = consign.recover_pending_refunds(5_000).await.unwrap();
            let counts = (report.refunded, report.declined, report.settling);
            let wanted = match expected {
                "refunded" => (1, 0, 0),
                "declined" => (0, 1, 0),
                _ => (0, 0, 1),
            };
            assert_eq!(counts, wanted, "{expected}");
        }
    }

    /// An accepted refund rests a tenth of its age between lookups, at most an hour.
    #[test]
    fn an_accepted_refund_rests_longer_as_it_ages_up_to_an_hour() {
        let rests: Vec<i64> = [0, 30_000, 600_000, 36_000_000, 5 * 86_400_000]
            .into_iter()
            .map(super::settling_rest_millis)
            .collect();
        assert_eq!(
            rests,
            [
                0,
                3_000,
                60_000,
                SETTLING_REST_MAX_MILLIS,
                SETTLING_REST_MAX_MILLIS
            ]
        );
    }

    /// An accepted refund the provider no longer lists is not declined (it was there), even
    /// past the window and its margin: it stays unknown.
    #[tokio::test]
    async fn an_accepted_refund_not_found_stays_unknown() {
        let mut accepted = refund_attempt();
        accepted.created_at = Timestamp(1_000_000 - KEY_WINDOW_MILLIS - REPLAY_MARGIN_MILLIS - 1);
        accepted.accepted = Some("re_7".into());
        not_found_stays_unknown(accepted).await;
    }
}
