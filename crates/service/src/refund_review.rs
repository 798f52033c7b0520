//! An operator's settlement of a refund recovery could not settle (`refundState:
//! "needsReview"`), as for captures (`review.rs`): after looking the refund up in the
//! provider's dashboard, the operator records what it shows, and the refund is settled through
//! the same store step as an answer from the provider, recorded as settled by hand in the same
//! transaction.

use consign_domain::{RefundState, Return, ReturnId};
use consign_ports::{RefundSettle, ReturnView};

use crate::consign::Consign;
use crate::error::ServiceError;
use crate::review::SETTLED_BY_HAND;

/// What an operator found at the provider for a refund under review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundFinding {
    /// The money went back: the provider's reference of the refund (`re_...`, say). The return
    /// is completed and its credit note issued.
    Refunded {
        /// The provider's reference, kept as a provider's answer would be.
        reference: String,
    },
    /// No refund was made for it: settled as declined (the held amount is released; the
    /// refund can be asked again with `PUT returns/<id>`, a new attempt with a new key).
    NotRefunded {
        /// Why, in the operator's words; kept as the decline's message.
        note: String,
    },
}

impl Consign {
    /// Settles the refund of return `id` as the operator found it at the provider. Only a
    /// refund flagged for review may be ([`Return::check_settle_by_hand`]); answers the return
    /// as it is after. A refund that recovery or another operator settled in the meantime is
    /// left as it was settled; unless that is what the operator found (the same state, and for
    /// a refund the same reference), the answer is [`ServiceError::SettledOtherwise`].
    pub async fn settle_refund_by_hand(
        &self,
        id: ReturnId,
        finding: RefundFinding,
    ) -> Result<ReturnView, ServiceError> {
        // The attempt first, then the check, as for captures: an attempt settled and replaced
        // by a new one between the two reads is refused by the check (the new one is pending).
        let attempt = self.returns.open_refund(id).await?;
        let view = self
            .returns
            .find_return(id)
            .await?
            .ok_or(ServiceError::ReturnNotFound(id))?;
        Return::check_settle_by_hand(view.refund_state)?;
        let attempt = attempt.ok_or(consign_domain::ReturnError::RefundNotUnderReview(
            view.refund_state.as_str(),
        ))?;
        let outcome = match finding {
            RefundFinding::Refunded { reference } => RefundSettle::Refunded {
                reference,
                status: SETTLED_BY_HAND.into(),
            },
            RefundFinding::NotRefunded { note } => RefundSettle::Declined {
                code: SETTLED_BY_HAND.into(),
                message: note,
            },
        };
        let described = format!("{outcome:?}");
        let settled = self
            .returns
            .settle_refund_by_hand(&attempt, outcome.clone(), self.clock.now())
            .await?;
        if !shows(&settled, &outcome) {
            let state = settled.refund_state.as_str();
            let now = match (&settled.refund_reference, settled.refund_state) {
                (Some(reference), RefundState::Refunded) => {
                    format!("{state} with reference {reference}")
                }
                _ => state.to_owned(),
            };
            tracing::warn!(return_id = %id, finding = %described, %now, "refund settled meanwhile otherwise than an operator found");
            return Err(ServiceError::SettledOtherwise {
                what: format!("return {id}'s refund"),
                now,
            });
        }
        tracing::warn!(return_id = %id, finding = %described, state = settled.refund_state.as_str(), "refund settled by an operator");
        Ok(settled)
    }
}

/// Whether the return as settled shows the operator's finding: refunded with its reference, or
/// declined.
fn shows(settled: &ReturnView, outcome: &RefundSettle) -> bool {
    match outcome {
        RefundSettle::Refunded { reference, .. } => {
            settled.refund_state == RefundState::Refunded
                && settled.refund_reference.as_deref() == Some(reference.as_str())
        }
        RefundSettle::Declined { .. } => settled.refund_state == RefundState::Declined,
    }
}

#[cfg(test)]
mod tests {
    use consign_domain::*;
    use consign_ports::*;

    use super::RefundFinding;
    use crate::test_support::*;
    use crate::SETTLED_BY_HAND;

    /// The service over `returns`; nothing else may be called.
    fn over(returns: MockReturnStore) -> crate::Consign {
        service_with(
            MockOrderStore::new(),
            returns,
            sandbox_named_mock(),
            MockKeyStore::new(),
        )
    }

    fn returns_with(state: RefundState) -> MockReturnStore {
        let mut returns = MockReturnStore::new();
        returns
            .expect_open_refund()
            .returning(|_| Ok(Some(refund_attempt())));
        returns
            .expect_find_return()
            .returning(move |_| Ok(Some(return_view(state))));
        returns
    }

    #[tokio::test]
    async fn a_refund_under_review_is_settled_as_the_operator_found_it() {
        for (finding, expected) in [
            (
                RefundFinding::Refunded {
                    reference: "re_dash".into(),
                },
                RefundSettle::Refunded {
                    reference: "re_dash".into(),
                    status: SETTLED_BY_HAND.into(),
                },
            ),
            (
                RefundFinding::NotRefunded {
                    note: "not in the dashboard".into(),
                },
                RefundSettle::Declined {
                    code: SETTLED_BY_HAND.into(),
                    message: "not in the dashboard".into(),
                },
            ),
        ] {
            let mut returns = returns_with(RefundState::NeedsReview);
            let settled_state = match expected {
                RefundSettle::Refunded { .. } => RefundState::Refunded,
                RefundSettle::Declined { .. } => RefundState::Declined,
            };
            let wanted = expected.clone();
            returns
                .expect_settle_refund_by_hand()
                .times(1)
                .withf(move |a, outcome, _| {
                    a.idempotency_key == "refund-key-1" && *outcome == wanted
                })
                .returning(move |_, _, _| {
                    Ok(match settled_state {
                        RefundState::Refunded => refunded_with("re_dash"),
                        state => return_view(state),
                    })
                });
            returns.expect_settle_refund().never();
            let consign = over(returns);
            let settled = consign
                .settle_refund_by_hand(ReturnId(5397), finding)
                .await
                .unwrap();
            assert_eq!(settled.refund_state, settled_state);
        }
    }

    fn refunded_with(reference: &str) -> ReturnView {
        let mut settled = return_view(RefundState::Refunded);
        settled.refund_reference = Some(reference.into());
        settled
    }

    /// As for captures: a refund settled meanwhile otherwise than this operator found (another
    /// state, or refunded with another reference) is reported, not answered as settled.
    #[tokio::test]
    async fn a_refund_settled_meanwhile_otherwise_than_found_is_reported_not_answered() {
        let refunded = || RefundFinding::Refunded {
            reference: "re_mine".into(),
        };
        let not_refunded = || RefundFinding::NotRefunded {
            note: "not in the dashboard".into(),
        };
        let cases = [
            (
                refunded(),
                refunded_with("re_theirs"),
                Some("refunded with reference re_theirs"),
            ),
            (
                refunded(),
                return_view(RefundState::Declined),
                Some("declined"),
            ),
            (
                refunded(),
                return_view(RefundState::Pending),
                Some("pending"),
            ),
            (
                not_refunded(),
                refunded_with("re_theirs"),
                Some("refunded with reference re_theirs"),
            ),
            (
                not_refunded(),
                return_view(RefundState::Pending),
                Some("pending"),
            ),
            (refunded(), refunded_with("re_mine"), None),
            (not_refunded(), return_view(RefundState::Declined), None),
        ];
        for (finding, stands, reported) in cases {
            let mut returns = returns_with(RefundState::NeedsReview);
            let answer = stands.clone();
            returns
                .expect_settle_refund_by_hand()
                .times(1)
                .returning(move |_, _, _| Ok(answer.clone()));
            let settled = over(returns)
                .settle_refund_by_hand(ReturnId(5397), finding.clone())
                .await;
            match reported {
                Some(now) => assert_eq!(
                    settled,
                    Err(crate::ServiceError::SettledOtherwise {
                        what: "return 5397's refund".into(),
                        now: now.into(),
                    }),
                    "{finding:?}"
                ),
                None => assert_eq!(settled, Ok(stands), "{finding:?}"),
            }
        }
    }

    #[tokio::test]
    async fn a_refund_not_under_review_is_refused_and_nothing_is_settled() {
        for state in [
            RefundState::None,
            RefundState::Pending,
            RefundState::Refunded,
            RefundState::Declined,
        ] {
            let mut returns = returns_with(state);
            returns.expect_settle_refund_by_hand().never();
            returns.expect_settle_refund().never();
            let consign = over(returns);
            let refused = consign
                .settle_refund_by_hand(
                    ReturnId(5397),
                    RefundFinding::Refunded {
                        reference: "re_dash".into(),
                    },
                )
                .await;
            assert_eq!(
                refused,
                Err(crate::ServiceError::ReturnRejected(
                    ReturnError::RefundNotUnderReview(state.as_str())
                )),
                "{state:?}"
            );
        }
    }
}
