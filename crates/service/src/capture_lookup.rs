//! A capture attempt older than the provider keeps idempotency keys, looked up instead of sent
//! again: what the provider has captured on the authorisation, against what Consign settled on
//! the order, tells whether this attempt was made (`consign_domain::CaptureFinding`).

use consign_domain::CaptureFinding;
use consign_ports::{CaptureAttempt, CaptureOutcome, CapturedTotal};

use crate::consign::Consign;
use crate::key_window::{KEY_WINDOW_MILLIS, REPLAY_MARGIN_MILLIS};

impl Consign {
    /// Made: settled as captured, with the provider's latest charge as reference. Not made: a
    /// decline the client can act on (ask for the capture again), but only once the attempt is
    /// older than the window by a margin, since a replay with the key started just inside the
    /// window may still be on its way; inside the margin it stays unknown. Undecidable, or no
    /// answer: unknown, counted towards review.
    pub(crate) async fn look_up_capture(
        &self,
        attempt: &CaptureAttempt,
        age: i64,
    ) -> CaptureOutcome {
        let Some(gateway) = self.gateways.get(&attempt.authorization.provider) else {
            return CaptureOutcome::Unknown {
                reason: format!(
                    "no gateway configured for provider {:?}",
                    attempt.authorization.provider
                ),
            };
        };
        let tally = match self.store.capture_tally(attempt).await {
            Ok(tally) => tally,
            Err(error) => {
                return CaptureOutcome::Unknown {
                    reason: format!("could not read the order's captures: {error}"),
                }
            }
        };
        let (captured, reference) = match gateway.captured_total(&attempt.authorization).await {
            CapturedTotal::Found {
                captured,
                reference,
            } => (captured, reference),
            CapturedTotal::Unknown { reason } => return CaptureOutcome::Unknown { reason },
        };
        // A final capture written after this attempt has waited for it, so it was never sent:
        // left counted, it would keep this attempt undecided while it waits for this one.
        let others_open = if tally.later_finals_open > 0 && gateway.final_capture_waits_for_others()
        {
            tally.others_open.saturating_sub(tally.later_finals_open)
        } else {
            tally.others_open
        };
        let finding = CaptureFinding::of(captured, tally.settled, attempt.amount, others_open > 0);
        // The provider's total is compared with the order's captures as they were before it was
        // read: another capture made or settled on the order meanwhile (a new shipment of the
        // same amount, say) would be taken for this attempt's. A finding stands only when the
        // order's captures are still as they were once the total is in.
        if finding != CaptureFinding::Undecidable {
            match self.store.capture_tally(attempt).await {
                Ok(after) if after == tally => {}
                Ok(_) => {
                    return CaptureOutcome::Unknown {
                        reason: "the order's captures changed while the provider's total was read; looked up again on the next pass".into(),
                    }
                }
                Err(error) => {
                    return CaptureOutcome::Unknown {
                        reason: format!("could not read the order's captures again: {error}"),
                    }
                }
            }
        }
        tracing::info!(shipment = %attempt.shipment, ?finding, %captured, settled = %tally.settled, others_open, "capture past the key window looked up");
        match finding {
            CaptureFinding::Made => CaptureOutcome::Captured { reference },
            CaptureFinding::NotMade if age > KEY_WINDOW_MILLIS + REPLAY_MARGIN_MILLIS => {
                CaptureOutcome::Declined {
                    code: "not_found_at_provider".into(),
                    message: "the provider made no capture for this attempt; it can be asked for again".into(),
                }
            }
            CaptureFinding::NotMade => CaptureOutcome::Unknown {
                reason: "not captured at the provider yet; a replay may still be on its way".into(),
            },
            CaptureFinding::Undecidable => CaptureOutcome::Unknown {
                reason: format!(
                    "the provider has captured {captured} on the authorisation, Consign settled {} on the order, this attempt is {} and {others_open} other captures may have reached it: a person must look",
                    tally.settled, attempt.amount
                ),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use consign_domain::*;
    use consign_ports::*;

    use crate::key_window::{KEY_WINDOW_MILLIS, REPLAY_MARGIN_MILLIS};
    use crate::test_support::*;
    use crate::RecoveryReport;

    /// A pending attempt of 199.00 written `age` ms before the fixed clock's now.
    fn old_attempt(age: i64) -> CaptureAttempt {
        let mut old = attempt(19_900);
        old.created_at = Timestamp(1_000_000 - age);
        old
    }

    /// A store with that attempt pending, 300.00 settled on the order before it and
    /// `others_open` other attempts open.
    fn store_with(age: i64, others_open: usize) -> MockOrderStore {
        store_with_later_finals(age, others_open, 0)
    }

    /// The same, `later_finals_open` of the open ones final captures written after it.
    fn store_with_later_finals(
        age: i64,
        others_open: usize,
        later_finals_open: usize,
    ) -> MockOrderStore {
        let mut store = MockOrderStore::new();
        store
            .expect_pending_captures()
            .returning(move |_| Ok(vec![old_attempt(age)]));
        // Read before and after the provider's total (the same both times here).
        store
            .expect_capture_tally()
            .times(1..=2)
            .returning(move |_| {
                Ok(CaptureTally {
                    settled: Money::from_minor(30_000, sek()),
                    others_open,
                    later_finals_open,
                })
            });
        store
    }

    /// A gateway that must not be sent the capture again, whose intent holds `total`.
    fn gateway_holding(total: i64) -> MockPaymentGateway {
        let mut gateway = sandbox_named_mock();
        gateway.expect_capture().never();
        gateway
            .expect_captured_total()
            .withf(|authorization| authorization.reference == "auth-83651")
            .times(1)
            .return_const(CapturedTotal::Found {
                captured: Money::from_minor(total, sek()),
                reference: "ch_latest".into(),
            });
        gateway
    }

    /// Expects the attempt left unknown, never settled, for a reason that says `why`.
    fn expect_left_unknown(store: &mut MockOrderStore, why: &'static str) {
        store.expect_settle_capture().never();
        store
            .expect_record_unknown()
            .withf(move |_, reason, _, _| reason.contains(why))
            .times(1)
            .returning(|_, _, _, _| Ok(false));
    }

    /// A recovery pass over `store` against a provider whose intent holds `total`.
    async fn recover_holding(store: MockOrderStore, total: i64) -> RecoveryReport {
        service(store, gateway_holding(total))
            .recover_pending_captures(0)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn an_attempt_past_the_key_window_is_looked_up_and_settled_captured_when_the_total_holds_it(
    ) {
        let mut store = store_with(KEY_WINDOW_MILLIS + 1, 0);
        store
            .expect_settle_capture()
            .withf(|_, outcome, _| {
                *outcome
                    == SettleOutcome::Captured {
                        reference: "ch_latest".into(),
                    }
            })
            .times(1)
            .returning(|_, _, _| Ok(settled(ShipmentState::Captured)));
        let report = service(store, gateway_holding(49_900))
            .recover_pending_captures(0)
            .await
            .unwrap();
        assert_eq!(report.captured, 1);
    }

    #[tokio::test]
    async fn an_attempt_the_provider_never_made_is_declined_once_past_the_replay_margin() {
        let mut store = store_with(KEY_WINDOW_MILLIS + REPLAY_MARGIN_MILLIS + 1, 0);
        store
            .expect_settle_capture()
            .withf(|_, outcome, _| {
                matches!(outcome, SettleOutcome::Declined { code, .. } if code == "not_found_at_provider")
            })
            .times(1)
            .returning(|_, _, _| Ok(settled(ShipmentState::Voided)));
        let report = service(store, gateway_holding(30_000))
            .recover_pending_captures(0)
            .await
            .unwrap();
        assert_eq!(report.declined, 1);
    }

    #[tokio::test]
    async fn an_attempt_not_made_just_past_the_window_stays_unknown_a_replay_may_be_on_its_way() {
        let mut store = store_with(KEY_WINDOW_MILLIS + 1, 0);
        store.expect_settle_capture().never();
        store
            .expect_record_unknown()
            .times(1)
            .returning(|_, _, _, _| Ok(false));
        let report = service(store, gateway_holding(30_000))
            .recover_pending_captures(0)
            .await
            .unwrap();
        assert_eq!(report.unresolved, 1);
    }

    #[tokio::test]
    async fn a_total_that_could_be_another_open_capture_stays_unknown_for_review() {
        let mut store = store_with(KEY_WINDOW_MILLIS + REPLAY_MARGIN_MILLIS + 1, 1);
        expect_left_unknown(&mut store, "a person must look");
        assert_eq!(recover_holding(store, 49_900).await.unresolved, 1);
    }

    /// A capture settled on the order while the provider's total was read (here one of the
    /// same amount, which the total then holds): the total would look like this attempt's, so
    /// it is left unknown for the next pass, not settled captured.
    #[tokio::test]
    async fn a_capture_settled_on_the_order_while_the_total_is_read_leaves_the_attempt_unknown() {
        let mut store = MockOrderStore::new();
        store
            .expect_pending_captures()
            .returning(|_| Ok(vec![old_attempt(KEY_WINDOW_MILLIS + 1)]));
        let reads = std::sync::atomic::AtomicU32::new(0);
        store.expect_capture_tally().times(2).returning(move |_| {
            // 300.00 settled before the total was read, 499.00 after.
            let before = reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0;
            Ok(CaptureTally {
                settled: Money::from_minor(if before { 30_000 } else { 49_900 }, sek()),
                others_open: 0,
                later_finals_open: 0,
            })
        });
        expect_left_unknown(&mut store, "changed while");
        assert_eq!(recover_holding(store, 49_900).await.unresolved, 1);
    }

    /// A final capture written later has waited for this one (it closes the authorisation), so
    /// it cannot be in the provider's total: counting it would leave both open for ever.
    #[tokio::test]
    async fn a_final_capture_waiting_for_this_one_does_not_keep_it_undecided() {
        let mut store = store_with_later_finals(KEY_WINDOW_MILLIS + 1, 1, 1);
        store
            .expect_settle_capture()
            .withf(|_, outcome, _| matches!(outcome, SettleOutcome::Captured { .. }))
            .times(1)
            .returning(|_, _, _| Ok(settled(ShipmentState::Captured)));
        let report = recover_holding_a_later_final(store, true).await;
        assert_eq!(report.captured, 1);
    }

    /// Where a final capture does not wait (one capture per authorisation), a later one may
    /// have been sent: the total stays undecided.
    #[tokio::test]
    async fn a_later_final_capture_that_need_not_wait_still_counts_as_open() {
        let mut store = store_with_later_finals(KEY_WINDOW_MILLIS + 1, 1, 1);
        expect_left_unknown(&mut store, "a person must look");
        let report = recover_holding_a_later_final(store, false).await;
        assert_eq!(report.unresolved, 1);
    }

    /// A recovery pass over `store` (the attempt and one later final capture open) against a
    /// provider holding the settled captures and this one, whose final captures wait or not.
    async fn recover_holding_a_later_final(
        store: MockOrderStore,
        finals_wait: bool,
    ) -> RecoveryReport {
        let mut gateway = gateway_holding(49_900);
        gateway
            .expect_final_capture_waits_for_others()
            .return_const(finals_wait);
        service(store, gateway)
            .recover_pending_captures(0)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_provider_that_cannot_look_captures_up_leaves_the_attempt_unknown_never_sent_again() {
        let mut store = MockOrderStore::new();
        store.expect_pending_captures().returning(|_| {
            Ok(vec![old_attempt(
                KEY_WINDOW_MILLIS + REPLAY_MARGIN_MILLIS + 1,
            )])
        });
        store.expect_capture_tally().returning(|_| {
            Ok(CaptureTally {
                settled: Money::zero(sek()),
                others_open: 0,
                later_finals_open: 0,
            })
        });
        store.expect_settle_capture().never();
        store
            .expect_record_unknown()
            .times(1)
            .returning(|_, _, _, _| Ok(false));
        let mut gateway = sandbox_named_mock();
        gateway.expect_capture().never();
        gateway
            .expect_captured_total()
            .times(1)
            .return_const(CapturedTotal::Unknown {
                reason: "cannot look captures up".into(),
            });
        let report = service(store, gateway)
            .recover_pending_captures(0)
            .await
            .unwrap();
        assert_eq!(report.unresolved, 1);
    }
}
