//! The payment gateway port: capture part of an authorisation, and refund part of what was
//! captured, idempotently.

use async_trait::async_trait;
use consign_domain::{Money, PaymentAuthorization};

/// One capture attempt as sent to the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureRequest {
    /// The authorisation to capture from.
    pub authorization: PaymentAuthorization,
    /// How much to capture.
    pub amount: Money,
    /// The key the provider deduplicates on: the same key always gets the first answer.
    pub idempotency_key: String,
    /// Whether this is the last capture on the authorisation (the one that completes the order).
    pub final_capture: bool,
}

/// What the provider said, reduced to the outcomes the saga acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaptureOutcome {
    /// Money captured; `reference` is the provider's id for it.
    Captured {
        /// Provider reference of the capture.
        reference: String,
    },
    /// Definitely not captured, and it will not be with this request.
    Declined {
        /// Provider's decline code.
        code: String,
        /// Provider's message.
        message: String,
    },
    /// Nobody knows yet (timeout, 5xx after retries): replay with the same key later.
    Unknown {
        /// Why the outcome is unknown.
        reason: String,
    },
    /// The provider is still working on an earlier request with this key (another instance's,
    /// a client's retry, recovery's): its answer will be this attempt's. Replay later, as for
    /// [`CaptureOutcome::Unknown`], but it is no sign that the provider is not answering, so it
    /// does not count towards review.
    InFlight {
        /// What the provider said.
        reason: String,
    },
}

/// One refund attempt as sent to the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRequest {
    /// The authorisation whose captures are refunded.
    pub authorization: PaymentAuthorization,
    /// How much to refund.
    pub amount: Money,
    /// The key the provider deduplicates on: the same key always gets the first answer.
    pub idempotency_key: String,
    /// Names the provider keeps with the refund (order, return), so a refund whose answer was
    /// lost can be found there again.
    pub metadata: Vec<(String, String)>,
}

/// What the provider said to a refund.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundOutcome {
    /// Refunded: the money went back (the provider's status is kept).
    Refunded {
        /// Provider reference of the refund.
        reference: String,
        /// The provider's own status (`succeeded`).
        status: String,
    },
    /// Accepted and still settling (Stripe's `pending`, `requires_action`): no money has moved
    /// yet and the refund may still fail. Its final answer is looked up by its metadata, never
    /// asked again with its key, which would only replay this answer.
    Settling {
        /// Provider reference of the refund.
        reference: String,
        /// The provider's own status (`pending`, `requires_action`).
        status: String,
    },
    /// Definitely not refunded with this request.
    Declined {
        /// Provider's code.
        code: String,
        /// Provider's message.
        message: String,
    },
    /// Nobody knows yet: replay with the same key later.
    Unknown {
        /// Why the outcome is unknown.
        reason: String,
    },
}

/// What the provider knows of one refund attempt, looked up by the metadata Consign sent with it
/// (for an attempt whose key the provider may no longer remember).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundLookup {
    /// The provider has it: refunded, still settling, or declined.
    Found(RefundOutcome),
    /// The provider has no refund for this attempt: none was made.
    NotFound,
    /// The lookup did not answer.
    Unknown {
        /// Why.
        reason: String,
    },
}

/// What the provider has captured on one authorisation in all, for a capture attempt older than
/// the provider keeps idempotency keys: replayed with its key, such an attempt could be captured
/// a second time, so it is looked up instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CapturedTotal {
    /// Everything captured on the authorisation so far.
    Found {
        /// The total captured, in the authorisation's currency.
        captured: Money,
        /// The provider's reference of its latest capture (a charge id), kept as the
        /// reference of an attempt the total shows was made.
        reference: String,
    },
    /// The lookup did not answer, or the provider cannot look captures up.
    Unknown {
        /// Why.
        reason: String,
    },
}

/// A payment provider's capture and refund API.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait PaymentGateway: Send + Sync {
    /// The provider name orders carry in their payment (`sandbox`, `stripe`).
    fn name(&self) -> &str;

    /// Whether the capture that completes an order must wait until every other capture on the
    /// same authorisation has settled (multicapture: a final capture closes the authorisation,
    /// and an earlier capture still in flight would then fail).
    fn final_capture_waits_for_others(&self) -> bool {
        false
    }

    /// Captures `request.amount`. Must be safe to call again with the same key.
    async fn capture(&self, request: CaptureRequest) -> CaptureOutcome;

    /// Refunds `request.amount` of what was captured. Must be safe to call again with the same
    /// key.
    async fn refund(&self, request: RefundRequest) -> RefundOutcome;

    /// What the provider has captured on `authorization` in all, without capturing anything:
    /// for a capture attempt older than the provider keeps idempotency keys.
    async fn captured_total(&self, authorization: &PaymentAuthorization) -> CapturedTotal {
        let _ = authorization;
        CapturedTotal::Unknown {
            reason: format!("provider {:?} cannot look captures up", self.name()),
        }
    }

    /// Looks the refund of `request` up at the provider by the metadata it was sent with,
    /// without making one: for an attempt older than the provider keeps idempotency keys.
    async fn find_refund(&self, request: RefundRequest) -> RefundLookup {
        let _ = request;
        RefundLookup::Unknown {
            reason: format!("provider {:?} cannot look refunds up", self.name()),
        }
    }
}
