//! How long a provider remembers an idempotency key, and what Consign does past it: a capture or
//! a refund attempt older than the window is looked up at the provider, never sent again, since
//! the same key could then move the money a second time.

/// Providers keep idempotency keys for at least 24 hours (Stripe); an attempt older than half
/// that is looked up, never sent again.
pub const KEY_WINDOW_MILLIS: i64 = 12 * 3_600_000;

/// How long past the key window a capture or refund the provider does not have is still
/// treated as unknown: longer than any replay started inside the window can take (a request's timeout
/// times its retries is minutes).
pub const REPLAY_MARGIN_MILLIS: i64 = 3_600_000;
