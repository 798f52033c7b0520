//! Stored answers for client `Idempotency-Key`s, scoped to the API key that sent them.

use async_trait::async_trait;

use crate::clock::Timestamp;
use crate::keys::ApiKeyId;
use crate::store::StoreError;

/// An answer as it was sent, to be replayed byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAnswer {
    /// HTTP status.
    pub status: u16,
    /// Content-Type.
    pub content_type: String,
    /// Body.
    pub body: String,
}

/// What a request with an idempotency key may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyBegin {
    /// First time (or taken over from a request that died): run it.
    New,
    /// Done before: replay this answer.
    Replay(StoredAnswer),
    /// The key was used for a different request.
    Mismatch,
    /// The first request with this key is still running.
    InFlight,
}

/// Where idempotency records live.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Claims `key` for a request with this fingerprint. A running claim older than
    /// `takeover_after_millis` belongs to a request that died and is taken over.
    async fn begin_request(
        &self,
        api_key: ApiKeyId,
        key: &str,
        fingerprint: &str,
        now: Timestamp,
        takeover_after_millis: i64,
    ) -> Result<IdempotencyBegin, StoreError>;

    /// Stores the final answer of a claimed key.
    async fn finish_request(
        &self,
        api_key: ApiKeyId,
        key: &str,
        answer: StoredAnswer,
        now: Timestamp,
    ) -> Result<(), StoreError>;

    /// Drops a claim whose answer is not final (a retry runs again).
    async fn release_request(&self, api_key: ApiKeyId, key: &str) -> Result<(), StoreError>;

    /// Forgets records created before `before`; answers how many.
    async fn purge_requests(&self, before: Timestamp) -> Result<usize, StoreError>;
}
