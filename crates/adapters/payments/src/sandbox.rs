//! The sandbox gateway: deterministic captures that move no money.
//!
//! Behaviour is chosen by the authorisation reference, so a walkthrough can show every outcome:
//! - a reference starting with `decline` is declined (`card_declined`);
//! - a reference starting with `timeout` answers "unknown" to the first call of each attempt
//!   (idempotency key); a replay with the same key captures;
//! - anything else is captured.
//!
//! Refunds: a reference starting with `norefund` has its refunds declined; `refundlater` has
//! the first refund attempt against it declined and later ones refunded (a decline, then a
//! successful retry); `timeout` answers "unknown" to the first call of each refund attempt too;
//! anything else is refunded.
//!
//! Like a real provider it answers a repeated idempotency key with its first answer.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use consign_ports::{
    CaptureOutcome, CaptureRequest, PaymentGateway, RefundLookup, RefundOutcome, RefundRequest,
};

/// Sandbox settings.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Delay before every answer, to imitate a provider's latency.
    pub latency: Duration,
    /// References starting with this are declined.
    pub decline_prefix: String,
    /// References starting with this answer "unknown" once per attempt.
    pub timeout_prefix: String,
    /// References starting with this have their refunds declined.
    pub no_refund_prefix: String,
    /// References starting with this have their first refund attempt declined.
    pub refund_later_prefix: String,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            latency: Duration::ZERO,
            decline_prefix: "decline".into(),
            timeout_prefix: "timeout".into(),
            no_refund_prefix: "norefund".into(),
            refund_later_prefix: "refundlater".into(),
        }
    }
}

/// The in-process sandbox gateway (provider name `sandbox`). Moves no money.
pub struct SandboxGateway {
    config: SandboxConfig,
    /// First definite answer per idempotency key, replayed for repeats.
    answered: Mutex<HashMap<String, CaptureOutcome>>,
    /// The same for refunds.
    refunds: Mutex<HashMap<String, RefundOutcome>>,
}

impl SandboxGateway {
    /// A sandbox with these settings.
    pub fn new(config: SandboxConfig) -> Self {
        SandboxGateway {
            config,
            answered: Mutex::new(HashMap::new()),
            refunds: Mutex::new(HashMap::new()),
        }
    }

    /// Sum of the minor units captured so far, for tests and demos.
    pub fn captured_minor(&self) -> i64 {
        self.captures().iter().map(|(_, minor)| minor).sum()
    }

    /// Sum of the minor units refunded so far, for tests and demos.
    pub fn refunded_minor(&self) -> i64 {
        let refunds = self.refunds.lock().unwrap_or_else(|p| p.into_inner());
        refunds
            .values()
            .filter_map(|outcome| match outcome {
                RefundOutcome::Refunded { reference, .. } => reference
                    .rsplit_once(':')
                    .and_then(|(_, minor)| minor.parse::<i64>().ok()),
                _ => None,
            })
            .sum()
    }

    /// Every capture made so far: (idempotency key, minor units).
    pub fn captures(&self) -> Vec<(String, i64)> {
        let answered = self.answered.lock().unwrap_or_else(|p| p.into_inner());
        answered
            .iter()
            .filter_map(|(key, outcome)| match outcome {
                CaptureOutcome::Captured { reference } => reference
                    .rsplit_once(':')
                    .and_then(|(_, minor)| minor.parse().ok())
                    .map(|minor| (key.clone(), minor)),
                _ => None,
            })
            .collect()
    }
}

#[async_trait]
impl PaymentGateway for SandboxGateway {
    fn name(&self) -> &str {
        "sandbox"
    }

    async fn capture(&self, request: CaptureRequest) -> CaptureOutcome {
        if !self.config.latency.is_zero() {
            tokio::time::sleep(self.config.latency).await;
        }
        let reference = &request.authorization.reference;
        let mut answered = self.answered.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(first) = answered.get(&request.idempotency_key) {
            return first.clone();
        }
        let outcome = if reference.starts_with(&self.config.decline_prefix) {
            CaptureOutcome::Declined {
                code: "card_declined".into(),
                message: "sandbox: authorisation reference starts with 'decline'".into(),
            }
        } else if reference.starts_with(&self.config.timeout_prefix)
            && !answered.contains_key(&format!("seen:{}", request.idempotency_key))
        {
            // Remember that the first call happened, but answer nothing definite yet.
            answered.insert(
                format!("seen:{}", request.idempotency_key),
                CaptureOutcome::Unknown {
                    reason: "seen".into(),
                },
            );
            return CaptureOutcome::Unknown {
                reason: "sandbox: simulated provider timeout".into(),
            };
        } else {
            CaptureOutcome::Captured {
                reference: format!("sbx_{}:{}", request.idempotency_key, request.amount.minor()),
            }
        };
        answered.insert(request.idempotency_key.clone(), outcome.clone());
        outcome
    }

    async fn refund(&self, request: RefundRequest) -> RefundOutcome {
        if !self.config.latency.is_zero() {
            tokio::time::sleep(self.config.latency).await;
        }
        let reference = &request.authorization.reference;
        let mut refunds = self.refunds.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(first) = refunds.get(&request.idempotency_key) {
            return first.clone();
        }
        let seen = format!("seen:{}", request.idempotency_key);
        let declined_once = format!("declined-once:{reference}");
        let outcome = if reference.starts_with(&self.config.no_refund_prefix) {
            RefundOutcome::Declined {
                code: "refund_declined".into(),
                message: "sandbox: authorisation reference starts with 'norefund'".into(),
            }
        } else if reference.starts_with(&self.config.refund_later_prefix)
            && !refunds.contains_key(&declined_once)
        {
            refunds.insert(
                declined_once,
                RefundOutcome::Unknown {
                    reason: "declined once".into(),
                },
            );
            RefundOutcome::Declined {
                code: "insufficient_funds".into(),
                message: "sandbox: the first refund against 'refundlater' is declined".into(),
            }
        } else if reference.starts_with(&self.config.timeout_prefix) && !refunds.contains_key(&seen)
        {
            refunds.insert(
                seen,
                RefundOutcome::Unknown {
                    reason: "seen".into(),
                },
            );
            return RefundOutcome::Unknown {
                reason: "sandbox: simulated provider timeout".into(),
            };
        } else {
            RefundOutcome::Refunded {
                reference: format!(
                    "sbx_re_{}:{}",
                    request.idempotency_key,
                    request.amount.minor()
                ),
                status: "succeeded".into(),
            }
        };
        refunds.insert(request.idempotency_key.clone(), outcome.clone());
        outcome
    }

    async fn find_refund(&self, request: RefundRequest) -> RefundLookup {
        let refunds = self.refunds.lock().unwrap_or_else(|p| p.into_inner());
        match refunds.get(&request.idempotency_key) {
            Some(outcome @ (RefundOutcome::Refunded { .. } | RefundOutcome::Declined { .. })) => {
                RefundLookup::Found(outcome.clone())
            }
            _ => RefundLookup::NotFound,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use consign_domain::{Money, PaymentAuthorization};

    fn request(reference: &str, key: &str) -> CaptureRequest {
        let sek = "SEK".parse().unwrap();
        CaptureRequest {
            authorization: PaymentAuthorization {
                provider: "sandbox".into(),
                reference: reference.into(),
                amount: Money::from_minor(10_000, sek),
            },
            amount: Money::from_minor(2_500, sek),
            idempotency_key: key.into(),
            final_capture: false,
        }
    }

    #[tokio::test]
    async fn captures_once_per_key_and_replays_the_first_answer() {
        let sandbox = SandboxGateway::new(SandboxConfig::default());
        let first = sandbox.capture(request("auth-1", "k1")).await;
        assert!(matches!(first, CaptureOutcome::Captured { .. }));
        assert_eq!(sandbox.capture(request("auth-1", "k1")).await, first);
        assert_eq!(sandbox.captured_minor(), 2_500);
        sandbox.capture(request("auth-1", "k2")).await;
        assert_eq!(sandbox.captured_minor(), 5_000);
    }

    #[tokio::test]
    async fn declines_references_starting_with_decline() {
        let sandbox = SandboxGateway::new(SandboxConfig::default());
        let outcome = sandbox.capture(request("decline-me", "k1")).await;
        assert!(
            matches!(outcome, CaptureOutcome::Declined { ref code, .. } if code == "card_declined")
        );
        assert_eq!(sandbox.captured_minor(), 0);
    }

    fn refund(reference: &str, key: &str) -> RefundRequest {
        let capture = request(reference, key);
        RefundRequest {
            authorization: capture.authorization,
            amount: capture.amount,
            idempotency_key: key.into(),
            metadata: Vec::new(),
        }
    }

    #[tokio::test]
    async fn refunds_once_per_key_and_declines_norefund_references() {
        let sandbox = SandboxGateway::new(SandboxConfig::default());
        let first = sandbox.refund(refund("auth-1", "r1")).await;
        assert!(matches!(first, RefundOutcome::Refunded { .. }), "{first:?}");
        assert_eq!(sandbox.refund(refund("auth-1", "r1")).await, first);
        assert_eq!(sandbox.refunded_minor(), 2_500);
        let declined = sandbox.refund(refund("norefund-1", "r2")).await;
        assert!(matches!(declined, RefundOutcome::Declined { .. }));
        let unknown = sandbox.refund(refund("timeout-1", "r3")).await;
        assert!(matches!(unknown, RefundOutcome::Unknown { .. }));
        assert!(matches!(
            sandbox.refund(refund("timeout-1", "r3")).await,
            RefundOutcome::Refunded { .. }
        ));
        assert_eq!(sandbox.refunded_minor(), 5_000);
    }

    #[tokio::test]
    async fn timeout_references_are_unknown_once_then_captured_on_replay() {
        let sandbox = SandboxGateway::new(SandboxConfig::default());
        let first = sandbox.capture(request("timeout-1", "k1")).await;
        assert!(matches!(first, CaptureOutcome::Unknown { .. }));
        assert_eq!(sandbox.captured_minor(), 0);
        let replay = sandbox.capture(request("timeout-1", "k1")).await;
        assert!(matches!(replay, CaptureOutcome::Captured { .. }));
        assert_eq!(sandbox.captured_minor(), 2_500);
    }
}
