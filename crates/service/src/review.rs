//! An operator's settlement of a capture recovery could not settle: after looking the payment up
//! in the provider's dashboard, the operator records what it shows, and the capture is settled
//! through the same store step as an answer from the provider, recorded as settled by hand in
//! the same transaction.

use consign_domain::{Shipment, ShipmentId, ShipmentState};
use consign_ports::{CaptureSettled, SettleOutcome, ShipmentView};

use crate::consign::Consign;
use crate::error::ServiceError;

/// The provider's code stored with a capture an operator found not made.
pub const SETTLED_BY_HAND: &str = "settled_by_operator";

/// What an operator found at the provider for a capture under review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandSettlement {
    /// The money was captured: the provider's reference of the capture (a charge, say).
    Captured {
        /// The provider's reference, kept as a provider's answer would be.
        reference: String,
    },
    /// Nothing was captured for it: settled as declined (the shipment is voided and its units
    /// are free to ship again, or, for a later capture, it is left uncaptured).
    NotCaptured {
        /// Why, in the operator's words; kept as the decline's message.
        note: String,
    },
}

impl Consign {
    /// Settles the capture of `shipment` as the operator found it at the provider. Only a
    /// capture flagged for review may be ([`Shipment::check_settle_by_hand`]); answers the
    /// shipment as it is after. A capture that recovery or another operator settled in the
    /// meantime is left as it was settled; unless that is what the operator found (the same
    /// state, and for a capture the same reference, or the payment's own), the answer is
    /// [`ServiceError::SettledOtherwise`].
    pub async fn settle_by_hand(
        &self,
        shipment: ShipmentId,
        finding: HandSettlement,
    ) -> Result<ShipmentView, ServiceError> {
        // The attempt first, then the check: had that attempt been settled and another capture
        // started between the two reads, the new one is not under review and the check refuses;
        // and the store's settle leaves an attempt settled meanwhile as it is.
        let attempt = self.store.open_attempt(shipment).await?;
        let listing = self
            .store
            .find_shipment(shipment)
            .await?
            .ok_or(ServiceError::ShipmentNotFound(shipment))?;
        let view = &listing.shipment;
        Shipment::check_settle_by_hand(shipment, view.state, view.needs_review)?;
        let attempt = attempt.ok_or(consign_domain::ShipmentError::NotUnderReview(shipment))?;
        let outcome = match finding {
            HandSettlement::Captured { reference } => SettleOutcome::Captured { reference },
            HandSettlement::NotCaptured { note } => SettleOutcome::Declined {
                code: SETTLED_BY_HAND.into(),
                message: note,
            },
        };
        let described = format!("{outcome:?}");
        let answer = self
            .store
            .settle_by_hand(&attempt, outcome.clone(), self.clock.now())
            .await?;
        let settled = &answer.shipment;
        if !shows(&answer, &outcome, &attempt.authorization.reference) {
            let mut now = match &settled.capture_reference {
                Some(reference) => format!("{} with reference {reference}", settled.state.as_str()),
                None => settled.state.as_str().to_owned(),
            };
            if settled.state == ShipmentState::Captured && !answer.attempt_captured {
                now.push_str(" by another capture, this one not captured");
            }
            tracing::warn!(%shipment, finding = %described, %now, "capture settled meanwhile otherwise than an operator found");
            return Err(ServiceError::SettledOtherwise {
                what: format!("shipment {shipment}"),
                now,
            });
        }
        tracing::warn!(%shipment, finding = %described, state = settled.state.as_str(), "capture settled by an operator");
        Ok(answer.shipment)
    }
}

/// Whether the settle shows the operator's finding: this attempt captured and its shipment
/// captured with the reference, or settled without a capture (voided, or left uncaptured; a
/// shipment captured since by another attempt is reported, not taken as found). A capture
/// quoted by the payment it was made on (`authorization`, a PaymentIntent id) shows too,
/// whichever reference was kept: the dashboard shows both, and on Stripe the capture's own
/// reference (the PaymentIntent's charge) is the same for every capture on it, so neither tells
/// one capture from another; which is also why this attempt's own standing is asked.
fn shows(answer: &CaptureSettled, outcome: &SettleOutcome, authorization: &str) -> bool {
    let settled = &answer.shipment;
    match outcome {
        SettleOutcome::Captured { reference } => {
            answer.attempt_captured
                && settled.state == ShipmentState::Captured
                && (settled.capture_reference.as_deref() == Some(reference.as_str())
                    || reference == authorization)
        }
        SettleOutcome::Declined { .. } => !matches!(
            settled.state,
            ShipmentState::Captured | ShipmentState::CapturePending
        ),
    }
}

#[cfg(test)]
mod tests {
    use consign_domain::*;
    use consign_ports::*;

    use super::HandSettlement;
    use crate::test_support::*;

    fn under(state: ShipmentState, needs_review: bool) -> ShipmentListing {
        let mut shipment = view(state);
        shipment.needs_review = needs_review;
        listing_of(shipment, 1)
    }

    /// A store whose shipment's capture waits for review, with its open attempt.
    fn store_under_review() -> MockOrderStore {
        let mut store = MockOrderStore::new();
        store
            .expect_find_shipment()
            .returning(|_| Ok(Some(under(ShipmentState::CapturePending, true))));
        store
            .expect_open_attempt()
            .returning(|_| Ok(Some(attempt(29850))));
        store
    }

    #[tokio::test]
    async fn a_capture_under_review_is_settled_as_the_operator_found_it() {
        let mut store = store_under_review();
        store
            .expect_settle_by_hand()
            .times(1)
            .withf(|a, o, _| {
                a.idempotency_key == "key-83651-1-1"
                    && *o
                        == SettleOutcome::Captured {
                            reference: "ch_dash".into(),
                        }
            })
            .returning(|_, _, _| {
                Ok(CaptureSettled {
                    shipment: captured_with("ch_dash"),
                    attempt_captured: true,
                })
            });
        let settled = service(store, sandbox_named_mock())
            .settle_by_hand(
                shipment_id(),
                HandSettlement::Captured {
                    reference: "ch_dash".into(),
                },
            )
            .await
            .unwrap();
        assert_eq!(settled.state, ShipmentState::Captured);
    }

    fn captured_with(reference: &str) -> ShipmentView {
        let mut settled = view(ShipmentState::Captured);
        settled.capture_reference = Some(reference.into());
        settled
    }

    /// The store found the attempt settled meanwhile (by recovery, or another operator) and
    /// answered the shipment as it stands: unless that is what this operator found, reference
    /// included (or the payment's own), the answer says how it stands instead of the shipment.
    #[tokio::test]
    async fn a_capture_settled_meanwhile_otherwise_than_found_is_reported_not_answered() {
        let captured = || HandSettlement::Captured {
            reference: "ch_mine".into(),
        };
        let not_captured = || HandSettlement::NotCaptured {
            note: "not in the dashboard".into(),
        };
        let by_payment = || HandSettlement::Captured {
            reference: attempt(29850).authorization.reference,
        };
        // The attempt standing as its shipment does (captured with it, or not captured).
        let as_shipment = |shipment: ShipmentView| CaptureSettled {
            attempt_captured: shipment.state == ShipmentState::Captured,
            shipment,
        };
        let by_another = |shipment: ShipmentView| CaptureSettled {
            attempt_captured: false,
            shipment,
        };
        let cases = [
            (
                captured(),
                as_shipment(captured_with("ch_theirs")),
                Some("captured with reference ch_theirs"),
            ),
            (
                captured(),
                as_shipment(view(ShipmentState::Voided)),
                Some("voided"),
            ),
            (
                captured(),
                as_shipment(view(ShipmentState::Uncaptured)),
                Some("uncaptured"),
            ),
            (
                not_captured(),
                as_shipment(captured_with("ch_theirs")),
                Some("captured with reference ch_theirs"),
            ),
            (captured(), as_shipment(captured_with("ch_mine")), None),
            // This attempt was settled not captured; another captured the shipment since, with
            // the same reference (on Stripe, the PaymentIntent's one charge).
            (
                captured(),
                by_another(captured_with("ch_mine")),
                Some("captured with reference ch_mine by another capture, this one not captured"),
            ),
            (
                not_captured(),
                by_another(captured_with("ch_mine")),
                Some("captured with reference ch_mine by another capture, this one not captured"),
            ),
            // Quoted by the payment it was made on, kept by its charge: the same capture.
            (by_payment(), as_shipment(captured_with("ch_theirs")), None),
            (
                by_payment(),
                as_shipment(view(ShipmentState::Voided)),
                Some("voided"),
            ),
            (
                not_captured(),
                as_shipment(view(ShipmentState::Voided)),
                None,
            ),
            (
                not_captured(),
                as_shipment(view(ShipmentState::Uncaptured)),
                None,
            ),
        ];
        for (finding, stands, reported) in cases {
            let mut store = store_under_review();
            let answer = stands.clone();
            store
                .expect_settle_by_hand()
                .times(1)
                .returning(move |_, _, _| Ok(answer.clone()));
            let stands = stands.shipment;
            let settled = service(store, sandbox_named_mock())
                .settle_by_hand(shipment_id(), finding.clone())
                .await;
            match reported {
                Some(now) => assert_eq!(
                    settled,
                    Err(crate::ServiceError::SettledOtherwise {
                        what: "shipment 83651-1".into(),
                        now: now.into(),
                    }),
                    "{finding:?}"
                ),
                None => assert_eq!(settled, Ok(stands), "{finding:?}"),
            }
        }
    }

    #[tokio::test]
    async fn a_capture_not_under_review_is_refused_and_nothing_is_settled() {
        for (state, needs_review) in [
            (ShipmentState::CapturePending, false),
            (ShipmentState::Captured, false),
            (ShipmentState::Uncaptured, false),
            (ShipmentState::Captured, true),
        ] {
            let mut store = MockOrderStore::new();
            store
                .expect_find_shipment()
                .returning(move |_| Ok(Some(under(state, needs_review))));
            store
                .expect_open_attempt()
                .returning(|_| Ok(Some(attempt(29850))));
            store.expect_settle_by_hand().never();
            let refused = service(store, sandbox_named_mock())
                .settle_by_hand(
                    shipment_id(),
                    HandSettlement::NotCaptured {
                        note: "not in the dashboard".into(),
                    },
                )
                .await;
            assert!(
                matches!(
                    refused,
                    Err(crate::ServiceError::Rejected(
                        ShipmentError::NotUnderReview(_)
                    ))
                ),
                "{state:?}: {refused:?}"
            );
        }
    }
}
