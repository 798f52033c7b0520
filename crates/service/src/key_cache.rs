//! Recently checked API keys, kept by their SHA-256 (never the key itself): a verified key is
//! trusted for a short while so a request costs no key lookup, and a key the store did not know
//! is refused for a short while without asking it again, so a flood of wrong keys costs no
//! database work.
//!
//! A key in use is checked again before its entry runs out, by one request only: every client
//! of a busy key used to miss the cache at the same moment when the entry expired, and each
//! then read the key.

use std::collections::HashMap;
use std::sync::Mutex;

use consign_ports::ApiKeyId;
use sha2::{Digest, Sha256};

/// How long a verified key is trusted without asking the store again; a revoked key is refused
/// everywhere within this time.
pub const KEY_CACHE_MILLIS: i64 = 2_000;

/// Past this age a verified key is checked again by the next request that uses it, while the
/// others go on trusting it until [`KEY_CACHE_MILLIS`].
pub const KEY_REFRESH_MILLIS: i64 = KEY_CACHE_MILLIS * 3 / 4;

/// How long a key the store did not know is refused without asking again (a key created
/// meanwhile clears this at once on the instance that created it).
pub const UNKNOWN_KEY_CACHE_MILLIS: i64 = 2_000;

/// How long a key the store verified is vouched for: a client address whose failed
/// authentications are limited still has it looked up (a load balancer's address carries every
/// client's requests, so one client's wrong keys would otherwise shut out the others). A key
/// nobody can name without knowing it; the lookup still decides whether it is valid.
pub const VOUCHED_MILLIS: i64 = 3_600_000;

/// Most entries kept of each kind; a full map is cleared.
const CAPACITY: usize = 1024;

type KeyHash = [u8; 32];

/// What was last learnt about a key.
#[derive(Default)]
pub struct KeyCache {
    verified: Mutex<HashMap<KeyHash, Verified>>,
    unknown: Mutex<HashMap<KeyHash, i64>>,
    /// When each key was last verified; kept through [`KeyCache::clear`], which is about
    /// whether a key is valid, not whether it was.
    vouched: Mutex<HashMap<KeyHash, i64>>,
}

/// A verified key's entry.
#[derive(Clone, Copy)]
struct Verified {
    id: ApiKeyId,
    /// When the store last answered it.
    at: i64,
    /// A request is checking it again.
    refreshing: bool,
}

/// What the cache knows of a key now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Known {
    /// Verified recently: this key.
    Valid(ApiKeyId),
    /// Still this key, but due to be checked again and nobody is: see [`KeyCache::claim_refresh`].
    Refresh(ApiKeyId),
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
        if let Some(entry) = verified
            .get(&key)
            .filter(|entry| now - entry.at < KEY_CACHE_MILLIS)
        {
            return if now - entry.at < KEY_REFRESH_MILLIS || entry.refreshing {
                Known::Valid(entry.id)
            } else {
                Known::Refresh(entry.id)
            };
        }
        drop(verified);
        let unknown = self.unknown.lock().unwrap_or_else(|p| p.into_inner());
        match unknown.get(&key) {
            Some(at) if now - at < UNKNOWN_KEY_CACHE_MILLIS => Known::Unknown,
            _ => Known::Unsure,
        }
    }

    /// Whether the store verified `key` within [`VOUCHED_MILLIS`].
    pub(crate) fn vouched(&self, key: &str, now: i64) -> bool {
        self.vouched
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&hash(key))
            .is_some_and(|at| now - at < VOUCHED_MILLIS)
    }

    pub(crate) fn put_valid(&self, key: &str, id: ApiKeyId, now: i64) {
        let key_hash = hash(key);
        {
            let mut vouched = self.vouched.lock().unwrap_or_else(|p| p.into_inner());
            if vouched.len() >= CAPACITY {
                vouched.retain(|_, at| now - *at < VOUCHED_MILLIS);
                if vouched.len() >= CAPACITY {
                    vouched.clear();
                }
            }
            vouched.insert(key_hash, now);
        }
        let mut verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if verified.len() >= CAPACITY {
            verified.clear();
        }
        verified.insert(
            key_hash,
            Verified {
                id,
                at: now,
                refreshing: false,
            },
        );
    }

    /// Takes the check of a key due for one; `false` when another request took it first (or
    /// the entry is gone). The taker ends it with [`KeyCache::put_valid`],
    /// [`KeyCache::put_revoked`] or [`KeyCache::release_refresh`].
    pub(crate) fn claim_refresh(&self, key: &str) -> bool {
        let mut verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        match verified.get_mut(&hash(key)) {
            Some(entry) if !entry.refreshing => {
                entry.refreshing = true;
                true
            }
            _ => false,
        }
    }

    /// Gives up a check taken with [`KeyCache::claim_refresh`] (the store could not answer):
    /// the next request takes it.
    pub(crate) fn release_refresh(&self, key: &str) {
        let mut verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(entry) = verified.get_mut(&hash(key)) {
            entry.refreshing = false;
        }
    }

    /// The store no longer knows a key it had verified: refused from now on.
    pub(crate) fn put_revoked(&self, key: &str, now: i64) {
        self.verified
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&hash(key));
        self.put_unknown(key, now);
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
        assert_eq!(cache.get("csk_good", 2_499), Known::Valid(ApiKeyId(3)));
        assert_eq!(cache.get("csk_good", 2_999), Known::Refresh(ApiKeyId(3)));
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

    #[test]
    fn a_verified_key_is_vouched_for_an_hour_whatever_is_cleared() {
        let cache = KeyCache::default();
        cache.put_valid("csk_good", ApiKeyId(3), 0);
        cache.put_unknown("csk_bad", 0);
        cache.clear();
        assert_eq!(cache.get("csk_good", 10), Known::Unsure, "looked up again");
        assert!(cache.vouched("csk_good", VOUCHED_MILLIS - 1));
        assert!(!cache.vouched("csk_good", VOUCHED_MILLIS));
        assert!(
            !cache.vouched("csk_bad", 10),
            "only keys the store verified"
        );
    }

    #[test]
    fn one_caller_takes_a_due_check_and_the_others_trust_the_key_meanwhile() {
        let cache = KeyCache::default();
        cache.put_valid("csk_good", ApiKeyId(3), 0);
        assert_eq!(cache.get("csk_good", 1_600), Known::Refresh(ApiKeyId(3)));
        assert!(cache.claim_refresh("csk_good"));
        assert!(!cache.claim_refresh("csk_good"), "taken once");
        assert_eq!(cache.get("csk_good", 1_600), Known::Valid(ApiKeyId(3)));
        assert_eq!(
            cache.get("csk_good", 2_000),
            Known::Unsure,
            "not past the entry's end"
        );
        // Given up: the next caller takes it.
        cache.release_refresh("csk_good");
        assert_eq!(cache.get("csk_good", 1_700), Known::Refresh(ApiKeyId(3)));
        // Renewed by the check.
        assert!(cache.claim_refresh("csk_good"));
        cache.put_valid("csk_good", ApiKeyId(3), 1_700);
        assert_eq!(cache.get("csk_good", 3_000), Known::Valid(ApiKeyId(3)));
        // Found revoked by the check.
        cache.put_revoked("csk_good", 3_500);
        assert_eq!(cache.get("csk_good", 3_500), Known::Unknown);
        assert!(!cache.claim_refresh("csk_good"));
    }
}
