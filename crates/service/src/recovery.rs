//! Recovery: settle capture attempts left pending by a crash, a timeout or an unknown outcome.

use consign_domain::ShipmentState;

use crate::consign::Consign;
use crate::error::ServiceError;

/// What one recovery pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Attempts found pending.
    pub examined: usize,
    /// Settled as captured.
    pub captured: usize,
    /// Settled as declined (shipment voided, units released).
    pub declined: usize,
    /// Still unknown; left pending for the next pass.
    pub unresolved: usize,
}

impl Consign {
    /// Replays every capture attempt pending for longer than `min_age_millis` with its own
    /// provider key, and settles what the provider answers.
    pub async fn recover_pending_captures(
        &self,
        min_age_millis: i64,
    ) -> Result<RecoveryReport, ServiceError> {
        let before = self.clock.now().minus_millis(min_age_millis);
        let pending = self.store.pending_captures(before).await?;
        let mut report = RecoveryReport {
            examined: pending.len(),
            ..RecoveryReport::default()
        };
        for attempt in pending {
            match self.capture_and_settle(&attempt).await {
                Ok(view) if view.state == ShipmentState::Captured => report.captured += 1,
                Ok(_) | Err(ServiceError::CaptureDeclined(_)) => report.declined += 1,
                Err(ServiceError::CaptureUnknown(_)) => report.unresolved += 1,
                // One attempt's trouble (a busy database, say) must not hold up the others.
                Err(other) => {
                    tracing::warn!(shipment = %attempt.shipment, error = %other, "recovery could not settle this attempt yet");
                    report.unresolved += 1;
                }
            }
        }
        if report.examined > 0 {
            tracing::info!(?report, "recovery pass");
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use consign_domain::*;
    use consign_ports::*;

    use crate::test_support::*;

    #[tokio::test]
    async fn recovery_replays_each_pending_attempt_with_its_own_key_and_settles_it() {
        let mut store = MockOrderStore::new();
        store
            .expect_pending_captures()
            .withf(|before| *before == Timestamp(1_000_000 - 5_000))
            .returning(|_| {
                let mut second = attempt(100);
                second.idempotency_key = "key-83651-2-1".into();
                second.shipment.number = 2;
                Ok(vec![attempt(29850), second])
            });
        store
            .expect_settle_capture()
            .times(1)
            .withf(|a, o, _| {
                a.idempotency_key == "key-83651-1-1" && matches!(o, SettleOutcome::Captured { .. })
            })
            .returning(|_, _, _| Ok(settled(ShipmentState::Captured)));
        store
            .expect_record_unknown()
            .times(1)
            .withf(|a, _, _, _| a.idempotency_key == "key-83651-2-1")
            .returning(|_, _, _, _| Ok(false));
        let mut gateway = sandbox_named_mock();
        gateway.expect_capture().times(2).returning(|r| {
            if r.idempotency_key == "key-83651-1-1" {
                CaptureOutcome::Captured {
                    reference: "ch_1".into(),
                }
            } else {
                CaptureOutcome::Unknown {
                    reason: "still timing out".into(),
                }
            }
        });
        let report = service(store, gateway)
            .recover_pending_captures(5_000)
            .await
            .unwrap();
        assert_eq!(
            report,
            crate::RecoveryReport {
                examined: 2,
                captured: 1,
                declined: 0,
                unresolved: 1
            }
        );
    }

    /// A store with one capture attempt pending.
    fn one_attempt_pending() -> MockOrderStore {
        let mut store = MockOrderStore::new();
        store
            .expect_pending_captures()
            .returning(|_| Ok(vec![attempt(29850)]));
        store
    }

    #[tokio::test]
    async fn recovery_settles_a_decline_as_voided() {
        let mut store = one_attempt_pending();
        store
            .expect_settle_capture()
            .times(1)
            .withf(|_, o, _| matches!(o, SettleOutcome::Declined { .. }))
            .returning(|_, _, _| Ok(settled(ShipmentState::Voided)));
        let mut gateway = sandbox_named_mock();
        gateway
            .expect_capture()
            .returning(|_| CaptureOutcome::Declined {
                code: "expired".into(),
                message: "authorization expired".into(),
            });
        let report = service(store, gateway)
            .recover_pending_captures(0)
            .await
            .unwrap();
        assert_eq!(report.declined, 1);
    }

    /// A replay the provider answers captured, whose attempt was settled as not captured
    /// first, is logged at error level, also when the shipment stands captured by a later
    /// attempt since (the order was charged twice), or when the attempt stands captured and its
    /// shipment does not. Captured by this attempt, by this settle or a concurrent one, nothing
    /// is logged.
    #[tokio::test]
    async fn a_capture_made_after_its_attempt_was_settled_otherwise_is_logged() {
        let cases = [
            (ShipmentState::Uncaptured, false, true),
            (ShipmentState::Voided, false, true),
            (ShipmentState::Captured, false, true),
            (ShipmentState::Voided, true, true),
            (ShipmentState::Captured, true, false),
        ];
        for (state, attempt_captured, logged_as_otherwise) in cases {
            let mut store = one_attempt_pending();
            store
                .expect_settle_capture()
                .times(1)
                .returning(move |_, _, _| {
                    Ok(CaptureSettled {
                        shipment: view(state),
                        attempt_captured,
                    })
                });
            let mut gateway = sandbox_named_mock();
            gateway
                .expect_capture()
                .times(1)
                .returning(|_| CaptureOutcome::Captured {
                    reference: "ch_1".into(),
                });
            let (report, logs) = logged(service(store, gateway).recover_pending_captures(0)).await;
            assert_eq!(report.unwrap().examined, 1);
            assert_eq!(
                logs.contains("ERROR") && logs.contains("settled otherwise first"),
                logged_as_otherwise,
                "{state:?}, attempt captured {attempt_captured}: {logs}"
            );
        }
    }
}
