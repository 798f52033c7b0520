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
            // Due to be checked again: `authenticate` decides who does.
            Known::Refresh(_) | Known::Unknown | Known::Unsure => None,
        }
    }

    /// Whether the store verified `key` within the last hour: an address whose failed
    /// authentications are limited still has such a key looked up (behind a load balancer
    /// every client shares one address).
    pub fn recently_verified(&self, key: &str) -> bool {
        self.key_cache.vouched(key, self.clock.now().0)
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
            Known::Refresh(id) => return self.refresh_key(key, id, now).await,
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

    /// A verified key due to be checked again: one request asks the store, the others trust
    /// the entry until it runs out. If the store cannot answer, the key is trusted as the entry
    /// still allows, and the next request asks.
    async fn refresh_key(
        &self,
        key: &str,
        id: ApiKeyId,
        now: i64,
    ) -> Result<ApiKeyId, ServiceError> {
        if !self.key_cache.claim_refresh(key) {
            return Ok(id);
        }
        match self.keys.verify_key(key).await {
            Ok(Some(id)) => {
                self.key_cache.put_valid(key, id, now);
                Ok(id)
            }
            Ok(None) => {
                self.key_cache.put_revoked(key, now);
                Err(ServiceError::Unauthorized)
            }
            Err(error) => {
                tracing::warn!(%error, "could not check an API key again; trusting it until its entry runs out");
                self.key_cache.release_refresh(key);
                Ok(id)
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

    /// A key store that counts its reads and answers each after a turn of the runtime, so
    /// requests in flight together see the cache as it was before any answer.
    struct CountingKeys {
        reads: std::sync::atomic::AtomicUsize,
        active: std::sync::atomic::AtomicBool,
    }

    #[async_trait::async_trait]
    impl KeyStore for CountingKeys {
        async fn add_key(&self, _: &str, _: &str, _: Timestamp) -> Result<ApiKeyId, StoreError> {
            unreachable!("not used")
        }
        async fn verify_key(&self, _: &str) -> Result<Option<ApiKeyId>, StoreError> {
            use std::sync::atomic::Ordering;
            self.reads.fetch_add(1, Ordering::SeqCst);
            tokio::task::yield_now().await;
            Ok(self.active.load(Ordering::SeqCst).then_some(ApiKeyId(7)))
        }
        async fn list_keys(&self) -> Result<Vec<ApiKeyInfo>, StoreError> {
            unreachable!("not used")
        }
        async fn revoke_key(&self, _: ApiKeyId, _: Timestamp) -> Result<bool, StoreError> {
            unreachable!("not used")
        }
    }

    /// Fifty requests at `at` ms, all in flight together; their answers.
    async fn burst(
        consign: &std::sync::Arc<crate::Consign>,
        clock: &std::sync::atomic::AtomicI64,
        at: i64,
    ) -> Vec<Result<ApiKeyId, ServiceError>> {
        clock.store(at, std::sync::atomic::Ordering::SeqCst);
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let consign = consign.clone();
                tokio::spawn(async move { consign.authenticate("csk_busy").await })
            })
            .collect();
        let mut answers = Vec::new();
        for task in tasks {
            answers.push(task.await.unwrap());
        }
        answers
    }

    /// A busy key is checked again by one request before its entry runs out, while the others
    /// go on: one read per refresh, never one per client when the entry expires. A key revoked
    /// meanwhile is refused from that check on.
    #[tokio::test(flavor = "current_thread")]
    async fn a_busy_key_is_checked_again_by_one_request_before_it_runs_out() {
        use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
        use std::sync::Arc;
        let keys = Arc::new(CountingKeys {
            reads: AtomicUsize::new(0),
            active: AtomicBool::new(true),
        });
        let now = Arc::new(AtomicI64::new(0));
        let mut clock = MockClock::new();
        let read_clock = now.clone();
        clock
            .expect_now()
            .returning(move || Timestamp(read_clock.load(Ordering::SeqCst)));
        let mut ports = crate::test_support::ports_with_clock(clock);
        ports.keys = keys.clone();
        let consign = Arc::new(crate::Consign::new(
            ports,
            crate::Gateways::new(),
            crate::StoreSettings::default(),
        ));
        let reads = || keys.reads.load(Ordering::SeqCst);

        assert_eq!(consign.authenticate("csk_busy").await, Ok(ApiKeyId(7)));
        assert_eq!(reads(), 1);
        // Fresh: no read, and the edge's synchronous check answers too.
        assert!(burst(&consign, &now, 1_000)
            .await
            .iter()
            .all(|a| *a == Ok(ApiKeyId(7))));
        assert_eq!(consign.authenticate_cached("csk_busy"), Some(ApiKeyId(7)));
        assert_eq!(reads(), 1);
        // Due for a check: one request reads, the others are answered from the entry.
        now.store(1_600, Ordering::SeqCst);
        assert_eq!(
            consign.authenticate_cached("csk_busy"),
            None,
            "left to authenticate"
        );
        assert!(burst(&consign, &now, 1_600)
            .await
            .iter()
            .all(|a| *a == Ok(ApiKeyId(7))));
        assert_eq!(reads(), 2, "one check for fifty requests");
        // Past the first entry's end: the check renewed it, no request reads.
        assert!(burst(&consign, &now, 2_100)
            .await
            .iter()
            .all(|a| *a == Ok(ApiKeyId(7))));
        assert_eq!(reads(), 2);
        // Revoked elsewhere: the next check finds it gone, and every request is refused from then.
        keys.active.store(false, Ordering::SeqCst);
        let answers = burst(&consign, &now, 3_200).await;
        assert_eq!(reads(), 3);
        assert_eq!(
            answers.iter().filter(|a| a.is_err()).count(),
            1,
            "only the check itself learnt it in this burst"
        );
        assert!(burst(&consign, &now, 3_201)
            .await
            .iter()
            .all(|a| *a == Err(ServiceError::Unauthorized)));
        assert_eq!(reads(), 3, "refused from the cache, no read");
    }
}
