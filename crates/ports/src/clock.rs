//! Time and randomness, so use cases never read the system clock or entropy directly.

/// Milliseconds since the Unix epoch, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// This instant moved back by `millis`.
    pub fn minus_millis(self, millis: i64) -> Timestamp {
        Timestamp(self.0.saturating_sub(millis))
    }
}

/// The current time.
#[cfg_attr(feature = "mocks", mockall::automock)]
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> Timestamp;
}

/// Unpredictable tokens (API keys).
#[cfg_attr(feature = "mocks", mockall::automock)]
pub trait IdSource: Send + Sync {
    /// A fresh random token of URL-safe characters, at least 128 bits of entropy.
    fn random_token(&self) -> String;
}
