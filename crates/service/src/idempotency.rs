//! Client idempotency keys: the answer of an executed request is stored and replayed.

use consign_ports::{ApiKeyId, IdempotencyBegin, StoredAnswer};

use crate::consign::Consign;
use crate::error::ServiceError;

/// A claim older than this belongs to a request that died with its process; a retry takes it
/// over and continues from what the first left.
pub const TAKEOVER_AFTER_MILLIS: i64 = 60_000;

/// Stored answers are kept at least this long (the API promises 24 hours).
pub const KEEP_ANSWERS_MILLIS: i64 = 48 * 3600 * 1000;

impl Consign {
    /// Claims `key` (scoped to `api_key`) for a request with this fingerprint.
    pub async fn begin_idempotent(
        &self,
        api_key: ApiKeyId,
        key: &str,
        fingerprint: &str,
    ) -> Result<IdempotencyBegin, ServiceError> {
        Ok(self
            .idempotency
            .begin_request(
                api_key,
                key,
                fingerprint,
                self.clock.now(),
                self.settings.idempotency_takeover_millis,
            )
            .await?)
    }

    /// Stores the final answer of a claimed key.
    pub async fn finish_idempotent(
        &self,
        api_key: ApiKeyId,
        key: &str,
        answer: StoredAnswer,
    ) -> Result<(), ServiceError> {
        Ok(self
            .idempotency
            .finish_request(api_key, key, answer, self.clock.now())
            .await?)
    }

    /// Drops a claim whose answer is not final, so a retry runs again.
    pub async fn release_idempotent(
        &self,
        api_key: ApiKeyId,
        key: &str,
    ) -> Result<(), ServiceError> {
        Ok(self.idempotency.release_request(api_key, key).await?)
    }

    /// Forgets stored answers older than [`KEEP_ANSWERS_MILLIS`].
    pub async fn purge_idempotency_records(&self) -> Result<usize, ServiceError> {
        let before = self.clock.now().minus_millis(KEEP_ANSWERS_MILLIS);
        Ok(self.idempotency.purge_requests(before).await?)
    }
}
