//! Recently checked API keys, kept by their SHA-256 (never the key itself): a verified key is
//! trusted for a short while so a request costs no key lookup, and a key the store did not know
//! is refused for a short while without asking it again, so a flood of wrong keys costs no
//! database work.

use std::collections::HashMap;
use std::sync::Mutex;

use consign_ports::ApiKeyId;
use sha2::{Digest, Sha256};

/// How long a verified key is trusted without asking the store again; a revoked key is refused
/// everywhere within this time.
pub const KEY_CACHE_MILLIS: i64 = 2_000;

/// How long a key the store did not know is refused without asking again (a key created
/// meanwhile clears this at once on the instance that created it).
pub const UNKNOWN_KEY_CACHE_MILLIS: i64 = 2_000;

/// Most entries kept of each kind; a full map is cleared.
const CAPACITY: usize = 1024;

type KeyHash = [u8; 32];

/// What was last learnt about a key.
#[derive(Default)]
pub struct KeyCache {
    verified: Mutex<HashMap<KeyHash, (ApiKeyId, i64)>>,
    unknown: Mutex<HashMap<KeyHash, i64>>,
}

/// What the cache knows of a key now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Known {
    /// Verified recently: this key.
    Valid(ApiKeyId),
    /// The store did not know it a moment ago.
    Unknown,
    /// Ask the store.
    Unsure,
}

fn hash(key: &str) -> KeyHash {
    Sha256::digest(key.as_bytes()).into()
}

impl KeyCache {
    pub(crate) fn get(&self, key: &str, now: i64) -> Known {
        let key = hash(key);
        let verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((id, _)) = verified
            .get(&key)
            .filter(|(_, at)| now - at < KEY_CACHE_MILLIS)
        {
            return Known::Valid(*id);
        }
        drop(verified);
        let unknown = self.unknown.lock().unwrap_or_else(|p| p.into_inner());
        match unknown.get(&key) {
            Some(at) if now - at < UNKNOWN_KEY_CACHE_MILLIS => Known::Unknown,
            _ => Known::Unsure,
        }
    }

    pub(crate) fn put_valid(&self, key: &str, id: ApiKeyId, now: i64) {
        let mut verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if verified.len() >= CAPACITY {
            verified.clear();
        }
        verified.insert(hash(key), (id, now));
    }

    pub(crate) fn put_unknown(&self, key: &str, now: i64) {
        let mut unknown = self.unknown.lock().unwrap_or_else(|p| p.into_inner());
        if unknown.len() >= CAPACITY {
            unknown.clear();
        }
        unknown.insert(hash(key), now);
    }

    /// Forgets everything (a key was revoked or created).
    pub(crate) fn clear(&self) {
        self.verified
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        self.unknown
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_kept_by_their_hash_and_for_a_short_while() {
        let cache = KeyCache::default();
        cache.put_valid("csk_good", ApiKeyId(3), 1_000);
        cache.put_unknown("csk_bad", 1_000);
        assert_eq!(cache.get("csk_good", 2_999), Known::Valid(ApiKeyId(3)));
        assert_eq!(cache.get("csk_good", 3_000), Known::Unsure);
        assert_eq!(cache.get("csk_bad", 2_999), Known::Unknown);
        assert_eq!(cache.get("csk_bad", 3_000), Known::Unsure);
        assert_eq!(cache.get("csk_other", 1_500), Known::Unsure);
        // Only hashes are held: no stored entry is the key itself.
        let verified = cache.verified.lock().unwrap();
        assert!(verified
            .keys()
            .all(|k| k != &hash("csk_bad") && k.len() == 32));
        assert!(verified.contains_key(&hash("csk_good")));
        drop(verified);
        cache.clear();
        assert_eq!(cache.get("csk_good", 1_500), Known::Unsure);
    }
}
