//! Capture attempts: the names of their states and their provider idempotency keys.

use consign_domain::ShipmentId;

/// Names of a capture attempt's states.
pub(crate) const ATTEMPT_PENDING: &str = "pending";
pub(crate) const ATTEMPT_SUCCEEDED: &str = "succeeded";
pub(crate) const ATTEMPT_FAILED: &str = "failed";
pub(crate) const ATTEMPT_UNKNOWN: &str = "unknown";
pub(crate) const ATTEMPT_NEEDS_REVIEW: &str = "needs_review";
/// Attempts without a definite outcome yet: recovery replays these.
pub(crate) const ATTEMPT_OPEN: [&str; 3] = [ATTEMPT_PENDING, ATTEMPT_UNKNOWN, ATTEMPT_NEEDS_REVIEW];

/// The provider idempotency key of one attempt: stable across retries and restarts, unique
/// across databases.
pub(crate) fn provider_key(installation: &str, shipment: ShipmentId, attempt: u32) -> String {
    format!("consign-{installation}-{shipment}-{attempt}")
}
