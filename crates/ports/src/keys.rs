//! API keys: stored hashed, checked on every call.

use async_trait::async_trait;

use crate::clock::Timestamp;
use crate::store::StoreError;

/// A stored API key's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ApiKeyId(pub i64);

/// What can be shown of a key: never the key itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyInfo {
    /// Its id.
    pub id: ApiKeyId,
    /// A label given at creation.
    pub label: String,
    /// The first characters of the key, to recognise it.
    pub prefix: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it was revoked, if it was.
    pub revoked_at: Option<Timestamp>,
}

/// Where API keys live. Implementations store only a hash of each key.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// Stores a new key (hashing it) and answers its id.
    async fn add_key(&self, key: &str, label: &str, now: Timestamp)
        -> Result<ApiKeyId, StoreError>;
    /// The id of the active key equal to `key`, if any.
    async fn verify_key(&self, key: &str) -> Result<Option<ApiKeyId>, StoreError>;
    /// Every key, active and revoked.
    async fn list_keys(&self) -> Result<Vec<ApiKeyInfo>, StoreError>;
    /// Revokes a key; answers whether it was active.
    async fn revoke_key(&self, id: ApiKeyId, now: Timestamp) -> Result<bool, StoreError>;
}
