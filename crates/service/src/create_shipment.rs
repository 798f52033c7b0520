//! Create shipment: the crash-safe saga.
//!
//! 1. Reserve, one transaction in the store: the domain plans the shipment, its units are
//!    reserved, and a pending capture attempt with a stable provider key is written.
//! 2. Capture, no transaction open: the gateway is called with that key.
//! 3. Settle, one transaction: captured, or voided with its units released.
//!
//! A crash or an unknown outcome between the steps leaves a pending attempt, which recovery
//! replays with the same key: the provider answers the first result, so nothing is captured
//! twice and nothing captured is lost. An attempt older than the provider keeps keys is looked
//! up instead of replayed (`capture_lookup`).

use consign_domain::{LineId, OrderId, ShipmentLine, ShipmentRequest, ShipmentState};
use consign_ports::{
    CaptureAttempt, CaptureOutcome, CaptureRequest, SettleOutcome, ShipmentDetails, ShipmentView,
};

use crate::consign::Consign;
use crate::error::ServiceError;
use crate::key_window::KEY_WINDOW_MILLIS;

/// The reference recorded for a capture of zero, which never reaches the provider.
pub(crate) const ZERO_CAPTURE_REFERENCE: &str = "zero-amount";

/// Passes without an outcome after which a capture is flagged `needsReview` (it is still
/// replayed; an operator should look at the provider).
pub const REVIEW_AFTER_PASSES: u32 = 10;

/// Whether `existing` is what `request` on `order` asks for: the same order and the same units
/// of the same lines, in any order.
fn same_shipment(existing: &ShipmentView, order: OrderId, request: &ShipmentRequest) -> bool {
    let units = |lines: &[ShipmentLine]| {
        let mut units: Vec<(LineId, u32)> = lines.iter().map(|l| (l.line_id, l.quantity)).collect();
        units.sort_unstable();
        units
    };
    existing.id.order == order && units(&existing.lines) == units(&request.lines)
}

impl Consign {
    /// Creates a shipment on `order`; with `request.capture` it is answered only once captured.
    ///
    /// Errors: [`ServiceError::Rejected`] (nothing written), [`ServiceError::CaptureDeclined`]
    /// (the shipment was voided and its units released), [`ServiceError::CaptureUnknown`]
    /// (the shipment stays pending until recovery settles it).
    ///
    /// With a `request_key` (the client's idempotency key, scoped to its API key) a retry of a
    /// request that already created a shipment continues from it instead of creating another:
    /// a capture-pending shipment is driven to its outcome, a settled one is answered as it
    /// settled.
    pub async fn create_shipment(
        &self,
        order: OrderId,
        request: ShipmentRequest,
        mut details: ShipmentDetails,
        request_key: Option<String>,
    ) -> Result<ShipmentView, ServiceError> {
        if details.shipped && details.send_email.is_none() {
            // Centra: without sendEmail the store setting "Send Shipping Confirmation" decides.
            details.send_email = Some(self.settings.send_shipping_confirmation);
        }
        if let Some(key) = &request_key {
            if let Some(existing) = self.store.find_by_request_key(key).await? {
                // The key's stored answer is gone (a 503 is not stored, nor kept for ever): a
                // request for another order or other lines is not this one's retry.
                if !same_shipment(&existing, order, &request) {
                    return Err(ServiceError::IdempotencyKeyReused);
                }
                return self.resume(existing).await;
            }
        }
        let now = self.clock.now();
        let reservation = self
            .store
            .reserve_shipment(
                order,
                request,
                self.gateways.providers(),
                details,
                request_key,
                now,
            )
            .await?;
        match reservation.attempt {
            None => Ok(reservation.shipment),
            Some(attempt) => {
                crate::failpoints::reached("after-reserve").await;
                fail::fail_point!("after-reserve");
                self.capture_and_settle(&attempt).await
            }
        }
    }

    /// Answers a shipment created by an earlier run of the same request.
    async fn resume(&self, shipment: ShipmentView) -> Result<ShipmentView, ServiceError> {
        match shipment.state {
            ShipmentState::CapturePending => match self.store.open_attempt(shipment.id).await? {
                Some(attempt) => self.capture_and_settle(&attempt).await,
                None => Err(ServiceError::CaptureUnknown(shipment.id)),
            },
            ShipmentState::Voided => Err(ServiceError::CaptureDeclined(shipment.id.order)),
            _ => Ok(shipment),
        }
    }

    /// Steps 2 and 3 of the saga for one attempt; also what recovery replays.
    pub(crate) async fn capture_and_settle(
        &self,
        attempt: &CaptureAttempt,
    ) -> Result<ShipmentView, ServiceError> {
        let order = attempt.shipment.order;
        let Some(final_capture) = self.final_flag_to_send(attempt).await? else {
            tracing::info!(shipment = %attempt.shipment, "final capture waits for earlier captures on the authorisation");
            if let Err(error) = self.store.record_waiting(attempt, self.clock.now()).await {
                tracing::warn!(shipment = %attempt.shipment, %error, "a waiting final capture could not be marked as tried");
            }
            return Err(ServiceError::CaptureUnknown(attempt.shipment));
        };
        let outcome = self.capture_outcome(attempt, final_capture).await;
        crate::failpoints::reached("after-capture").await;
        fail::fail_point!("after-capture");
        let settle = match outcome {
            CaptureOutcome::Captured { reference } => SettleOutcome::Captured { reference },
            CaptureOutcome::Declined { code, message } => SettleOutcome::Declined { code, message },
            CaptureOutcome::Unknown { reason } => {
                self.record_unknown(attempt, &reason).await;
                return Err(ServiceError::CaptureUnknown(attempt.shipment));
            }
            // Another request with the key is at the provider (a live one that takes long, say,
            // met by recovery): its answer settles the attempt. Touched, not counted, so a slow
            // capture is not flagged for review while it is still being made.
            CaptureOutcome::InFlight { reason } => {
                tracing::info!(shipment = %attempt.shipment, %reason, "capture still in flight at the provider");
                if let Err(error) = self.store.record_waiting(attempt, self.clock.now()).await {
                    tracing::warn!(shipment = %attempt.shipment, %error, "a capture in flight could not be marked as tried");
                }
                return Err(ServiceError::CaptureUnknown(attempt.shipment));
            }
        };
        let provider_captured = matches!(settle, SettleOutcome::Captured { .. });
        let settled = self
            .store
            .settle_capture(attempt, settle, self.clock.now())
            .await;
        crate::failpoints::reached("after-settle").await;
        fail::fail_point!("after-settle");
        match settled {
            Ok(settled) => {
                let view = settled.shipment;
                let recorded = settled.attempt_captured && view.state == ShipmentState::Captured;
                if provider_captured && !recorded {
                    // Settled otherwise first (an operator's "not captured", say) while the
                    // provider captured: the money is taken and the records say this attempt
                    // did not take it, or the shipment is not captured. The shipment may stand
                    // captured by a later attempt since, and then it was captured twice.
                    tracing::error!(shipment = %attempt.shipment, attempt = %attempt.idempotency_key, state = view.state.as_str(), "the provider captured this attempt, but it was settled otherwise first: reconcile it by hand");
                }
                // The stored state decides: a concurrent settle of the same attempt may have won.
                if view.state == ShipmentState::Captured {
                    Ok(view)
                } else {
                    Err(ServiceError::CaptureDeclined(order))
                }
            }
            Err(error) => {
                // The provider answered but the answer is not recorded: recovery will ask again
                // with the same key and settle it, so to the client the outcome is still unknown.
                tracing::error!(shipment = %attempt.shipment, %error, "could not settle capture");
                Err(ServiceError::CaptureUnknown(attempt.shipment))
            }
        }
    }

    /// Whether the capture goes out as the final one, or `None` while it must wait. On a
    /// gateway whose final capture closes the authorisation, a capture planned as final waits
    /// until every other capture on the order has settled, and goes out as final only if it is
    /// still stored so: a capture declined meanwhile took units out of capture, so it no longer
    /// completes the order (the attempt in hand may have been read before that decline).
    async fn final_flag_to_send(
        &self,
        attempt: &CaptureAttempt,
    ) -> Result<Option<bool>, ServiceError> {
        let closes = attempt.final_capture
            && self
                .gateways
                .get(&attempt.authorization.provider)
                .is_some_and(|g| g.final_capture_waits_for_others());
        if !closes {
            return Ok(Some(attempt.final_capture));
        }
        let standing = self.store.final_capture_standing(attempt).await?;
        if !standing.still_final {
            return Ok(Some(false));
        }
        Ok((standing.others_open == 0).then_some(true))
    }

    /// Counts one more pass without an outcome; past the limit the shipment needs review.
    async fn record_unknown(&self, attempt: &CaptureAttempt, reason: &str) {
        match self
            .store
            .record_unknown(attempt, reason, self.clock.now(), REVIEW_AFTER_PASSES)
            .await
        {
            Ok(true) => {
                tracing::error!(shipment = %attempt.shipment, %reason, "capture still unknown after {REVIEW_AFTER_PASSES} passes: needs review")
            }
            Ok(false) => {
                tracing::warn!(shipment = %attempt.shipment, %reason, "capture outcome unknown; left pending for recovery")
            }
            Err(error) => {
                tracing::error!(shipment = %attempt.shipment, %reason, %error, "capture outcome unknown and not recorded")
            }
        }
    }

    /// The provider's answer for an attempt: sent with its key, or, once the attempt is older
    /// than the provider keeps keys, looked up (the same key could then capture it again).
    async fn capture_outcome(
        &self,
        attempt: &CaptureAttempt,
        final_capture: bool,
    ) -> CaptureOutcome {
        let age = self.clock.now().0 - attempt.created_at.0;
        // A zero capture never reaches the provider: there is nothing to look up.
        if age > KEY_WINDOW_MILLIS && attempt.amount.minor() != 0 {
            self.look_up_capture(attempt, age).await
        } else {
            self.call_gateway(attempt, final_capture).await
        }
    }

    async fn call_gateway(&self, attempt: &CaptureAttempt, final_capture: bool) -> CaptureOutcome {
        if attempt.amount.minor() == 0 {
            return CaptureOutcome::Captured {
                reference: ZERO_CAPTURE_REFERENCE.to_owned(),
            };
        }
        let Some(gateway) = self.gateways.get(&attempt.authorization.provider) else {
            return CaptureOutcome::Unknown {
                reason: format!(
                    "no gateway configured for provider {:?}",
                    attempt.authorization.provider
                ),
            };
        };
        gateway
            .capture(CaptureRequest {
                authorization: attempt.authorization.clone(),
                amount: attempt.amount,
                idempotency_key: attempt.idempotency_key.clone(),
                final_capture,
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use consign_domain::*;
    use consign_ports::*;

    use crate::test_support::*;
    use crate::ServiceError;

    fn request(capture: bool) -> ShipmentRequest {
        ShipmentRequest {
            lines: vec![ShipmentLine {
                line_id: LineId(17),
                quantity: 1,
            }],
            capture,
            deduct_previous_costs: false,
        }
    }

    #[tokio::test]
    async fn captured_shipment_is_settled_and_answered() {
        let mut store = MockOrderStore::new();
        store
            .expect_reserve_shipment()
            .times(1)
            .returning(|_, _, _, _, _, _| Ok(reservation(ShipmentState::CapturePending, 29850)));
        store
            .expect_settle_capture()
            .withf(|attempt, outcome, _| {
                attempt.idempotency_key == "key-83651-1-1"
                    && *outcome
                        == SettleOutcome::Captured {
                            reference: "ch_1".into(),
                        }
            })
            .times(1)
            .returning(|_, _, _| Ok(settled(ShipmentState::Captured)));
        let mut gateway = sandbox_named_mock();
        gateway
            .expect_capture()
            .withf(|r| r.amount.minor() == 29850 && r.idempotency_key == "key-83651-1-1")
            .times(1)
            .returning(|_| CaptureOutcome::Captured {
                reference: "ch_1".into(),
            });
        let consign = service(store, gateway);
        let shipment = consign
            .create_shipment(
                OrderId(83651),
                request(true),
                ShipmentDetails::default(),
                None,
            )
            .await
            .unwrap();
        assert_eq!(shipment.state, ShipmentState::Captured);
    }

    #[tokio::test]
    async fn rejection_by_the_domain_never_reaches_the_gateway() {
        let rejections = [
            StoreError::OrderNotFound(OrderId(1337)),
            StoreError::Rejected(ShipmentError::UnknownLine {
                order: OrderId(83651),
                line: LineId(9),
            }),
            StoreError::Rejected(ShipmentError::NotEnoughShippable {
                line: LineId(17),
                requested: 3,
                shippable: 1,
                ordered: 2,
            }),
            StoreError::Rejected(ShipmentError::NoPaymentAuthorization),
        ];
        for rejection in rejections {
            let mut store = MockOrderStore::new();
            let answer = rejection.clone();
            store
                .expect_reserve_shipment()
                .times(1)
                .returning(move |_, _, _, _, _, _| Err(answer.clone()));
            store.expect_settle_capture().never();
            let mut gateway = sandbox_named_mock();
            gateway.expect_capture().never();
            let consign = service(store, gateway);
            let error = consign
                .create_shipment(
                    OrderId(83651),
                    request(true),
                    ShipmentDetails::default(),
                    None,
                )
                .await
                .unwrap_err();
            assert_eq!(error, ServiceError::from(rejection));
        }
    }

    #[tokio::test]
    async fn decline_voids_the_shipment_and_answers_can_not_capture() {
        let mut store = MockOrderStore::new();
        store
            .expect_reserve_shipment()
            .returning(|_, _, _, _, _, _| Ok(reservation(ShipmentState::CapturePending, 29850)));
        store
            .expect_settle_capture()
            .withf(|_, outcome, _| matches!(outcome, SettleOutcome::Declined { code, .. } if code == "card_declined"))
            .times(1)
            .returning(|_, _, _| Ok(settled(ShipmentState::Voided)));
        let mut gateway = sandbox_named_mock();
        gateway
            .expect_capture()
            .times(1)
            .returning(|_| CaptureOutcome::Declined {
                code: "card_declined".into(),
                message: "declined".into(),
            });
        let error = service(store, gateway)
            .create_shipment(
                OrderId(83651),
                request(true),
                ShipmentDetails::default(),
                None,
            )
            .await
            .unwrap_err();
        assert_eq!(error, ServiceError::CaptureDeclined(OrderId(83651)));
        assert_eq!(error.to_string(), "can not capture order");
    }

    /// A captured shipment created on `store` (reserved capture-pending, never settled) against
    /// a provider answering `outcome`: the error the client gets.
    async fn left_pending_by(mut store: MockOrderStore, outcome: CaptureOutcome) -> ServiceError {
        store
            .expect_reserve_shipment()
            .returning(|_, _, _, _, _, _| Ok(reservation(ShipmentState::CapturePending, 29850)));
        store.expect_settle_capture().never();
        let mut gateway = sandbox_named_mock();
        gateway.expect_capture().times(1).return_const(outcome);
        service(store, gateway)
            .create_shipment(
                OrderId(83651),
                request(true),
                ShipmentDetails::default(),
                None,
            )
            .await
            .unwrap_err()
    }

    /// The provider still working on another request with the key (a slow live capture met by
    /// recovery, say) is no sign that it is not answering: the attempt is touched, no pass is
    /// counted towards review, and the shipment stays pending for that request's answer.
    #[tokio::test]
    async fn a_capture_in_flight_at_the_provider_is_not_counted_towards_review() {
        let mut store = MockOrderStore::new();
        store.expect_record_unknown().never();
        store
            .expect_record_waiting()
            .times(1)
            .returning(|_, _| Ok(()));
        let in_flight = CaptureOutcome::InFlight {
            reason: "409".into(),
        };
        assert_eq!(
            left_pending_by(store, in_flight).await,
            ServiceError::CaptureUnknown(shipment_id())
        );
    }

    #[tokio::test]
    async fn unknown_outcome_leaves_the_shipment_pending() {
        let mut store = MockOrderStore::new();
        store
            .expect_record_unknown()
            .withf(|_, reason, _, after| {
                reason == "timeout" && *after == crate::REVIEW_AFTER_PASSES
            })
            .times(1)
            .returning(|_, _, _, _| Ok(false));
        let unknown = CaptureOutcome::Unknown {
            reason: "timeout".into(),
        };
        assert_eq!(
            left_pending_by(store, unknown).await,
            ServiceError::CaptureUnknown(shipment_id())
        );
    }

    #[tokio::test]
    async fn a_settle_failure_after_capture_is_reported_unknown_not_lost() {
        let mut store = MockOrderStore::new();
        store
            .expect_reserve_shipment()
            .returning(|_, _, _, _, _, _| Ok(reservation(ShipmentState::CapturePending, 29850)));
        store
            .expect_settle_capture()
            .times(1)
            .returning(|_, _, _| Err(StoreError::Unavailable("database is locked".into())));
        let mut gateway = sandbox_named_mock();
        gateway
            .expect_capture()
            .returning(|_| CaptureOutcome::Captured {
                reference: "ch_1".into(),
            });
        let error = service(store, gateway)
            .create_shipment(
                OrderId(83651),
                request(true),
                ShipmentDetails::default(),
                None,
            )
            .await
            .unwrap_err();
        assert_eq!(error, ServiceError::CaptureUnknown(shipment_id()));
    }

    #[tokio::test]
    async fn capture_off_writes_an_uncaptured_shipment_and_calls_no_gateway() {
        let mut store = MockOrderStore::new();
        store
            .expect_reserve_shipment()
            .withf(|_, request, _, _, _, _| !request.capture)
            .times(1)
            .returning(|_, _, _, _, _, _| {
                Ok(Reservation {
                    shipment: view(ShipmentState::Uncaptured),
                    attempt: None,
                })
            });
        store.expect_settle_capture().never();
        let mut gateway = sandbox_named_mock();
        gateway.expect_capture().never();
        let shipment = service(store, gateway)
            .create_shipment(
                OrderId(83651),
                request(false),
                ShipmentDetails::default(),
                None,
            )
            .await
            .unwrap();
        assert_eq!(shipment.state, ShipmentState::Uncaptured);
    }

    #[tokio::test]
    async fn a_zero_amount_is_captured_without_calling_the_provider() {
        let mut store = MockOrderStore::new();
        store
            .expect_reserve_shipment()
            .returning(|_, _, _, _, _, _| Ok(reservation(ShipmentState::CapturePending, 0)));
        store
            .expect_settle_capture()
            .withf(|_, outcome, _| matches!(outcome, SettleOutcome::Captured { reference } if reference == "zero-amount"))
            .times(1)
            .returning(|_, _, _| Ok(settled(ShipmentState::Captured)));
        let mut gateway = sandbox_named_mock();
        gateway.expect_capture().never();
        let shipment = service(store, gateway)
            .create_shipment(
                OrderId(83651),
                request(true),
                ShipmentDetails::default(),
                None,
            )
            .await
            .unwrap();
        assert_eq!(shipment.state, ShipmentState::Captured);
    }

    #[tokio::test]
    async fn store_unavailable_on_reserve_is_reported_as_unavailable() {
        let mut store = MockOrderStore::new();
        store
            .expect_reserve_shipment()
            .returning(|_, _, _, _, _, _| Err(StoreError::Unavailable("pool timeout".into())));
        let mut gateway = sandbox_named_mock();
        gateway.expect_capture().never();
        let consign = service(store, gateway);
        let error = consign
            .create_shipment(
                OrderId(83651),
                request(true),
                ShipmentDetails::default(),
                None,
            )
            .await
            .unwrap_err();
        assert!(matches!(error, ServiceError::Unavailable(_)));
        let _ = Arc::clone(&consign.store);
    }

    /// Ships an order whose capture was planned as final, on a gateway whose final capture
    /// closes the authorisation, with the store answering `standing`; `sent` is the final
    /// flag the capture must go out with (`None`: it must not go out).
    async fn ship_planned_final(
        standing: FinalCaptureStanding,
        sent: Option<bool>,
    ) -> Result<ShipmentView, ServiceError> {
        let mut store = MockOrderStore::new();
        store
            .expect_reserve_shipment()
            .returning(|_, _, _, _, _, _| {
                let mut reservation = reservation(ShipmentState::CapturePending, 44_850);
                reservation.attempt.as_mut().unwrap().final_capture = true;
                Ok(reservation)
            });
        store
            .expect_final_capture_standing()
            .times(1)
            .returning(move |_| Ok(standing));
        store
            .expect_settle_capture()
            .times(usize::from(sent.is_some()))
            .returning(|_, _, _| Ok(settled(ShipmentState::Captured)));
        store.expect_record_unknown().never();
        // Waiting is no pass without an outcome, but it is recorded as tried.
        store
            .expect_record_waiting()
            .times(usize::from(sent.is_none()))
            .returning(|_, _| Ok(()));
        let mut gateway = sandbox_named_mock();
        gateway
            .expect_final_capture_waits_for_others()
            .return_const(true);
        gateway
            .expect_capture()
            .withf(move |r| Some(r.final_capture) == sent)
            .times(usize::from(sent.is_some()))
            .returning(|_| CaptureOutcome::Captured {
                reference: "ch_9".into(),
            });
        service(store, gateway)
            .create_shipment(
                OrderId(83651),
                request(true),
                ShipmentDetails::default(),
                None,
            )
            .await
    }

    #[tokio::test]
    async fn a_final_multicapture_waits_while_other_captures_are_open() {
        let standing = FinalCaptureStanding {
            still_final: true,
            others_open: 1,
        };
        let error = ship_planned_final(standing, None).await.unwrap_err();
        assert_eq!(error, ServiceError::CaptureUnknown(shipment_id()));
    }

    #[tokio::test]
    async fn a_final_capture_goes_ahead_once_the_others_have_settled() {
        let standing = FinalCaptureStanding {
            still_final: true,
            others_open: 0,
        };
        let shipment = ship_planned_final(standing, Some(true)).await.unwrap();
        assert_eq!(shipment.state, ShipmentState::Captured);
    }

    /// A capture declined on the order since this one was planned took units out of capture:
    /// it no longer completes the order, so it neither waits nor closes the authorisation,
    /// even though the attempt in hand still says final.
    #[tokio::test]
    async fn a_capture_planned_final_goes_out_open_once_a_decline_lowered_it() {
        for others_open in [0, 1] {
            let standing = FinalCaptureStanding {
                still_final: false,
                others_open,
            };
            let shipment = ship_planned_final(standing, Some(false)).await.unwrap();
            assert_eq!(shipment.state, ShipmentState::Captured);
        }
    }
}
