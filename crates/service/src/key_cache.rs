//! Recently verified API keys, trusted for a short while so a request costs no key lookup.

use consign_ports::ApiKeyId;

/// How long a verified key is trusted without asking the store again; a revoked key is refused
/// everywhere within this time.
pub const KEY_CACHE_MILLIS: i64 = 2_000;

/// Recently verified keys (bounded; cleared when full).
#[derive(Default)]
pub struct VerifiedKeys {
    keys: std::sync::Mutex<std::collections::HashMap<String, (ApiKeyId, i64)>>,
}

impl VerifiedKeys {
    pub(crate) fn get(&self, key: &str, now: i64) -> Option<ApiKeyId> {
        let keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        keys.get(key)
            .filter(|(_, at)| now - at < KEY_CACHE_MILLIS)
            .map(|(id, _)| *id)
    }

    pub(crate) fn put(&self, key: &str, id: ApiKeyId, now: i64) {
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        if keys.len() >= 1024 {
            keys.clear();
        }
        keys.insert(key.to_owned(), (id, now));
    }

    pub(crate) fn clear(&self) {
        self.keys.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}
