//! API keys: create, check, list, revoke.

use consign_ports::{ApiKeyId, ApiKeyInfo};

use crate::consign::Consign;
use crate::error::ServiceError;
use crate::key_cache::Known;

/// Keys are shown with this prefix so a leaked one is easy to recognise in logs and scanners.
const KEY_PREFIX: &str = "csk_";

impl Consign {
    /// Creates a key and answers it; it is shown this once and stored only hashed.
    pub async fn create_api_key(&self, label: &str) -> Result<(ApiKeyId, String), ServiceError> {
        let key = format!("{KEY_PREFIX}{}", self.ids.random_token());
        let id = self.keys.add_key(&key, label, self.clock.now()).await?;
        self.key_cache.clear();
        Ok((id, key))
    }

    /// Adds a key provisioned from outside (a secret store), unless it is stored already.
    pub async fn ensure_api_key(&self, key: &str, label: &str) -> Result<ApiKeyId, ServiceError> {
        if let Some(id) = self.keys.verify_key(key).await? {
            return Ok(id);
        }
        let id = self.keys.add_key(key, label, self.clock.now()).await?;
        self.key_cache.clear();
        Ok(id)
    }

    /// The key's id if it was verified a moment ago (no lookup); `None` when the store must be
    /// asked, or the key is known to be wrong.
    pub fn authenticate_cached(&self, key: &str) -> Option<ApiKeyId> {
        match self.key_cache.get(key, self.clock.now().0) {
            Known::Valid(id) => Some(id),
            Known::Unknown | Known::Unsure => None,
        }
    }

    /// The key's id if `key` is an active key, else [`ServiceError::Unauthorized`]. A key the
    /// store did not know a moment ago is refused without asking it again.
    pub async fn authenticate(&self, key: &str) -> Result<ApiKeyId, ServiceError> {
        if key.is_empty() || key.len() > 256 {
            return Err(ServiceError::Unauthorized);
        }
        let now = self.clock.now().0;
        match self.key_cache.get(key, now) {
            Known::Valid(id) => return Ok(id),
            Known::Unknown => return Err(ServiceError::Unauthorized),
            Known::Unsure => {}
        }
        match self.keys.verify_key(key).await? {
            Some(id) => {
                self.key_cache.put_valid(key, id, now);
                Ok(id)
            }
            None => {
                self.key_cache.put_unknown(key, now);
                Err(ServiceError::Unauthorized)
            }
        }
    }

    /// Every key, without the keys themselves.
    pub async fn list_api_keys(&self) -> Result<Vec<ApiKeyInfo>, ServiceError> {
        Ok(self.keys.list_keys().await?)
    }

    /// Revokes a key; answers whether it was active.
    pub async fn revoke_api_key(&self, id: ApiKeyId) -> Result<bool, ServiceError> {
        let revoked = self.keys.revoke_key(id, self.clock.now()).await?;
        self.key_cache.clear();
        Ok(revoked)
    }
}

#[cfg(test)]
mod tests {
    use consign_ports::*;

    use crate::test_support::*;
    use crate::ServiceError;

    #[tokio::test]
    async fn created_keys_are_prefixed_and_stored_through_the_port() {
        let mut keys = MockKeyStore::new();
        keys.expect_add_key()
            .withf(|key, label, _| key == "csk_t0k3n" && label == "warehouse")
            .times(1)
            .returning(|_, _, _| Ok(ApiKeyId(1)));
        let consign = service_with_keys(MockOrderStore::new(), sandbox_named_mock(), keys);
        assert_eq!(
            consign.create_api_key("warehouse").await.unwrap(),
            (ApiKeyId(1), "csk_t0k3n".to_owned())
        );
    }

    #[tokio::test]
    async fn unknown_empty_and_oversized_keys_are_unauthorized() {
        let mut keys = MockKeyStore::new();
        keys.expect_verify_key().times(1).returning(|_| Ok(None));
        let consign = service_with_keys(MockOrderStore::new(), sandbox_named_mock(), keys);
        for key in ["nope".to_owned(), String::new(), "k".repeat(300)] {
            assert_eq!(
                consign.authenticate(&key).await,
                Err(ServiceError::Unauthorized)
            );
        }
    }

    #[tokio::test]
    async fn a_wrong_key_is_refused_again_without_asking_the_store() {
        let mut keys = MockKeyStore::new();
        let mut seq = mockall::Sequence::new();
        // Once for the 50 tries, once when the key is then provisioned.
        keys.expect_verify_key()
            .times(2)
            .in_sequence(&mut seq)
            .returning(|_| Ok(None));
        keys.expect_add_key()
            .times(1)
            .returning(|_, _, _| Ok(ApiKeyId(9)));
        keys.expect_verify_key()
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_| Ok(Some(ApiKeyId(9))));
        let consign = service_with_keys(MockOrderStore::new(), sandbox_named_mock(), keys);
        for _ in 0..50 {
            assert_eq!(
                consign.authenticate("csk_wrong").await,
                Err(ServiceError::Unauthorized)
            );
        }
        assert_eq!(consign.authenticate_cached("csk_wrong"), None);
        // A key created meanwhile is not refused from the cache.
        consign.ensure_api_key("csk_wrong", "late").await.unwrap();
        assert_eq!(consign.authenticate("csk_wrong").await, Ok(ApiKeyId(9)));
    }

    #[tokio::test]
    async fn a_verified_key_is_trusted_briefly_and_forgotten_on_revoke() {
        let mut keys = MockKeyStore::new();
        keys.expect_verify_key()
            .times(2)
            .returning(|_| Ok(Some(ApiKeyId(7))));
        keys.expect_revoke_key().times(1).returning(|_, _| Ok(true));
        let consign = service_with_keys(MockOrderStore::new(), sandbox_named_mock(), keys);
        assert_eq!(consign.authenticate("csk_k").await, Ok(ApiKeyId(7)));
        assert_eq!(
            consign.authenticate("csk_k").await,
            Ok(ApiKeyId(7)),
            "second check from the cache"
        );
        consign.revoke_api_key(ApiKeyId(7)).await.unwrap();
        assert_eq!(
            consign.authenticate("csk_k").await,
            Ok(ApiKeyId(7)),
            "asked the store again"
        );
    }
}
