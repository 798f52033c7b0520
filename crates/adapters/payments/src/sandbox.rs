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
//! Like a real provider it answers a repeated idempotency key with its first answer, for the
//! latest [`REMEMBERED_KEYS`] keys at least (a provider keeps its keys for a day).

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use consign_domain::{Money, PaymentAuthorization};
use consign_ports::{
    CaptureOutcome, CaptureRequest, CapturedTotal, PaymentGateway, RefundLookup, RefundOutcome,
    RefundRequest,
};

/// Idempotency keys the sandbox remembers at least, per kind (captures, refunds); it forgets
/// older keys a generation of this many at a time (`Memory`), so its memory stays bounded
/// however long it runs (a real provider forgets its keys after a day). 28,672 keys fill a
/// table of 32,768 slots as far as its hashing allows: a remembered capture takes 25 bytes of
/// a slot, 1.6 MiB for both generations at most, where a first-in, first-out memory of 65,536
/// keys held about 4 MiB, and every capture's key and reference kept as text before that grew
/// the server by about 210 bytes per shipment without end (docs/benchmarks.md).
pub const REMEMBERED_KEYS: usize = 28_672;

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

/// Answers by key, in two generations of at most `generation` keys each: a key is looked up in
/// both, and a new key goes into the newer one. When the newer is full it becomes the older,
/// and the older's keys are forgotten all at once (its table emptied and reused). So the latest
/// `generation` keys at least, and `2 * generation` at most, are remembered, in two tables that
/// grow as keys come up to one generation each, and no further: no key is removed one at a
/// time, which in a table kept full leaves tombstones that make it grow. Keys are kept as
/// 64-bit hashes: a capture's answer is rebuilt from its request, so a remembered capture is a
/// few words, not its key and reference as text.
struct Memory<V> {
    newer: HashMap<u64, V>,
    older: HashMap<u64, V>,
    generation: usize,
}

impl<V: Clone> Memory<V> {
    fn new(generation: usize) -> Self {
        Memory {
            newer: HashMap::new(),
            older: HashMap::new(),
            generation: generation.max(1),
        }
    }

    fn get(&self, key: &str) -> Option<&V> {
        let key = hashed(key);
        self.newer.get(&key).or_else(|| self.older.get(&key))
    }

    /// Remembers `answer` for `key`, in place of what it had (a first call's "unknown" is
    /// replaced by the replay's answer).
    fn insert(&mut self, key: &str, answer: V) {
        let key = hashed(key);
        if let Some(known) = self.older.get_mut(&key) {
            *known = answer;
            return;
        }
        // Looked up only when the newer is full, not on every new key.
        if self.newer.len() >= self.generation && !self.newer.contains_key(&key) {
            std::mem::swap(&mut self.newer, &mut self.older);
            self.newer.clear();
        }
        self.newer.insert(key, answer);
    }

    /// Slots held by both tables, for the test that they do not grow.
    #[cfg(test)]
    fn slots(&self) -> usize {
        self.newer.capacity() + self.older.capacity()
    }
}

fn hashed(key: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    key.hash(&mut hasher);
    hasher.finish()
}

/// A capture key's first definite answer, or that its first call answered "unknown".
#[derive(Debug, Clone, Copy)]
enum CaptureAnswer {
    Captured { minor: i64 },
    Declined,
    Seen,
}

/// What the sandbox remembers, and its running totals.
struct Books<V> {
    memory: Memory<V>,
    /// Minor units captured per authorisation reference, for the lookup of a capture past the
    /// key window; bounded like the keys, and a reference forgotten is unknown, never zero.
    per_authorization: Memory<i64>,
    /// First-time successes so far, and their minor units (forgotten keys included).
    count: u64,
    minor: i64,
}

impl<V: Clone> Books<V> {
    fn new(generation: usize) -> Self {
        Books {
            memory: Memory::new(generation),
            per_authorization: Memory::new(generation),
            count: 0,
            minor: 0,
        }
    }
}

/// The in-process sandbox gateway (provider name `sandbox`). Moves no money.
pub struct SandboxGateway {
    config: SandboxConfig,
    /// First definite answer per idempotency key, replayed for repeats.
    captures: Mutex<Books<CaptureAnswer>>,
    /// The same for refunds.
    refunds: Mutex<Books<RefundOutcome>>,
}

impl SandboxGateway {
    /// A sandbox with these settings.
    pub fn new(config: SandboxConfig) -> Self {
        Self::remembering(config, REMEMBERED_KEYS)
    }

    /// A sandbox that remembers the latest `keys` idempotency keys per kind at least, and twice
    /// as many at most.
    pub fn remembering(config: SandboxConfig, keys: usize) -> Self {
        SandboxGateway {
            config,
            captures: Mutex::new(Books::new(keys)),
            refunds: Mutex::new(Books::new(keys)),
        }
    }

    /// Sum of the minor units captured so far, for tests and demos.
    pub fn captured_minor(&self) -> i64 {
        self.captures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .minor
    }

    /// Captures made so far (a replayed key counts once), for tests and demos.
    pub fn capture_count(&self) -> u64 {
        self.captures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .count
    }

    /// Sum of the minor units refunded so far, for tests and demos.
    pub fn refunded_minor(&self) -> i64 {
        self.refunds.lock().unwrap_or_else(|p| p.into_inner()).minor
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
        let key = &request.idempotency_key;
        let reference = &request.authorization.reference;
        let mut books = self.captures.lock().unwrap_or_else(|p| p.into_inner());
        let first_call = match books.memory.get(key) {
            Some(CaptureAnswer::Captured { minor }) => return captured(key, *minor),
            Some(CaptureAnswer::Declined) => return declined(),
            // A first call answered "unknown": this replay decides.
            Some(CaptureAnswer::Seen) => false,
            None => true,
        };
        let so_far = books.per_authorization.get(reference).copied().unwrap_or(0);
        if reference.starts_with(&self.config.decline_prefix) {
            books.memory.insert(key, CaptureAnswer::Declined);
            return declined();
        }
        if reference.starts_with(&self.config.timeout_prefix) && first_call {
            // Remember that the first call happened, but answer nothing definite yet: nothing
            // was captured, which a lookup of the authorisation must be able to tell.
            books.memory.insert(key, CaptureAnswer::Seen);
            books.per_authorization.insert(reference, so_far);
            return CaptureOutcome::Unknown {
                reason: "sandbox: simulated provider timeout".into(),
            };
        }
        let minor = request.amount.minor();
        books.memory.insert(key, CaptureAnswer::Captured { minor });
        books.per_authorization.insert(reference, so_far + minor);
        books.count += 1;
        books.minor += minor;
        captured(key, minor)
    }

    async fn refund(&self, request: RefundRequest) -> RefundOutcome {
        if !self.config.latency.is_zero() {
            tokio::time::sleep(self.config.latency).await;
        }
        let key = &request.idempotency_key;
        let reference = &request.authorization.reference;
        let mut books = self.refunds.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(first) = books.memory.get(key) {
            return first.clone();
        }
        let seen = format!("seen:{key}");
        let declined_once = format!("declined-once:{reference}");
        let outcome = if reference.starts_with(&self.config.no_refund_prefix) {
            RefundOutcome::Declined {
                code: "refund_declined".into(),
                message: "sandbox: authorisation reference starts with 'norefund'".into(),
            }
        } else if reference.starts_with(&self.config.refund_later_prefix)
            && books.memory.get(&declined_once).is_none()
        {
            books.memory.insert(
                &declined_once,
                RefundOutcome::Unknown {
                    reason: "declined once".into(),
                },
            );
            RefundOutcome::Declined {
                code: "insufficient_funds".into(),
                message: "sandbox: the first refund against 'refundlater' is declined".into(),
            }
        } else if reference.starts_with(&self.config.timeout_prefix)
            && books.memory.get(&seen).is_none()
        {
            books.memory.insert(
                &seen,
                RefundOutcome::Unknown {
                    reason: "seen".into(),
                },
            );
            return RefundOutcome::Unknown {
                reason: "sandbox: simulated provider timeout".into(),
            };
        } else {
            let minor = request.amount.minor();
            books.count += 1;
            books.minor += minor;
            RefundOutcome::Refunded {
                reference: format!("sbx_re_{key}:{minor}"),
                status: "succeeded".into(),
            }
        };
        books.memory.insert(key, outcome.clone());
        outcome
    }

    async fn captured_total(&self, authorization: &PaymentAuthorization) -> CapturedTotal {
        let books = self.captures.lock().unwrap_or_else(|p| p.into_inner());
        match books.per_authorization.get(&authorization.reference) {
            Some(minor) => CapturedTotal::Found {
                captured: Money::from_minor(*minor, authorization.amount.currency()),
                reference: format!("sbx_{}:{minor}", authorization.reference),
            },
            None => CapturedTotal::Unknown {
                reason: "sandbox: no capture on this authorisation remembered".into(),
            },
        }
    }

    async fn find_refund(&self, request: RefundRequest) -> RefundLookup {
        let books = self.refunds.lock().unwrap_or_else(|p| p.into_inner());
        match books.memory.get(&request.idempotency_key) {
            Some(outcome @ (RefundOutcome::Refunded { .. } | RefundOutcome::Declined { .. })) => {
                RefundLookup::Found(outcome.clone())
            }
            _ => RefundLookup::NotFound,
        }
    }
}

/// A capture's answer, the same for every call with its key.
fn captured(key: &str, minor: i64) -> CaptureOutcome {
    CaptureOutcome::Captured {
        reference: format!("sbx_{key}:{minor}"),
    }
}

fn declined() -> CaptureOutcome {
    CaptureOutcome::Declined {
        code: "card_declined".into(),
        message: "sandbox: authorisation reference starts with 'decline'".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(sandbox.capture_count(), 2);
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
    async fn remembers_the_latest_keys_only_and_keeps_counting() {
        // Two generations of two keys: k1 and k2 fill the first; k3 starts the second; k5
        // starts a third, and the first (k1, k2) is forgotten.
        let sandbox = SandboxGateway::remembering(SandboxConfig::default(), 2);
        let first = sandbox.capture(request("auth-1", "k1")).await;
        for key in ["k2", "k3", "k4", "k5"] {
            sandbox.capture(request("auth-1", key)).await;
        }
        // k3, k4 and k5 are remembered: replays answer as before and capture nothing more.
        for key in ["k5", "k4", "k3"] {
            sandbox.capture(request("auth-1", key)).await;
        }
        assert_eq!(
            (sandbox.capture_count(), sandbox.captured_minor()),
            (5, 12_500)
        );
        // k1 was forgotten: like a provider past its key window, it is a new capture.
        assert_eq!(sandbox.capture(request("auth-1", "k1")).await, first);
        assert_eq!(
            (sandbox.capture_count(), sandbox.captured_minor()),
            (6, 15_000)
        );
        let books = sandbox.captures.lock().unwrap();
        assert_eq!((books.memory.newer.len(), books.memory.older.len()), (2, 2));
    }

    /// However many keys come, the two tables keep the size the first generation gave them,
    /// and the latest generation's keys are all remembered.
    #[test]
    fn a_long_run_of_keys_keeps_the_tables_as_first_sized() {
        let mut memory: Memory<i64> = Memory::new(1_000);
        let key = |n: i64| format!("key-{n}");
        for n in 0..2_000 {
            memory.insert(&key(n), n);
        }
        let sized = memory.slots();
        assert!(sized >= 2_000, "both generations sized: {sized}");
        for n in 2_000..50_000 {
            memory.insert(&key(n), n);
            // A replay of a remembered key changes nothing but its answer.
            memory.insert(&key(n - 500), n - 500);
        }
        assert_eq!(memory.slots(), sized, "the tables never grew");
        assert!((49_000..50_000).all(|n| memory.get(&key(n)) == Some(&n)));
        assert_eq!(
            memory.get(&key(47_000)),
            None,
            "forgotten a generation at a time"
        );
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

    fn total(found: CapturedTotal) -> Option<i64> {
        match found {
            CapturedTotal::Found { captured, .. } => Some(captured.minor()),
            CapturedTotal::Unknown { .. } => None,
        }
    }

    #[tokio::test]
    async fn an_authorisations_captured_total_is_what_its_keys_captured_and_unknown_once_forgotten()
    {
        let sandbox = SandboxGateway::remembering(SandboxConfig::default(), 2);
        let auth = |reference: &str| request(reference, "").authorization;
        assert_eq!(total(sandbox.captured_total(&auth("auth-1")).await), None);
        sandbox.capture(request("auth-1", "k1")).await;
        sandbox.capture(request("auth-1", "k1")).await;
        sandbox.capture(request("auth-1", "k2")).await;
        assert_eq!(
            total(sandbox.captured_total(&auth("auth-1")).await),
            Some(5_000)
        );
        // A first call that answered "unknown" captured nothing: the total says so.
        sandbox.capture(request("timeout-1", "k3")).await;
        assert_eq!(
            total(sandbox.captured_total(&auth("timeout-1")).await),
            Some(0)
        );
        // Past its memory the sandbox does not know, which is not the same as nothing captured:
        // two generations of two authorisations later, auth-1 is forgotten.
        for (reference, key) in [("auth-3", "k4"), ("auth-4", "k5"), ("auth-5", "k6")] {
            sandbox.capture(request(reference, key)).await;
        }
        assert_eq!(total(sandbox.captured_total(&auth("auth-1")).await), None);
    }
}
