//! Running a transaction again when it failed for a reason that passes.

use std::time::Duration;

use crate::connection::AnyConnection;
use crate::error::DbError;

/// How often a transaction that hit a busy lock, a serialization failure or a deadlock is run
/// again before the error reaches the caller (as "unavailable", never as a 500).
const TRANSIENT_RETRIES: u32 = 8;

/// Runs `work`, again after a short backoff while it fails transiently.
pub(crate) fn with_retries<T, F>(work: &F, conn: &mut AnyConnection) -> Result<T, DbError>
where
    F: Fn(&mut AnyConnection) -> Result<T, DbError>,
{
    let mut attempt = 0;
    loop {
        match work(conn) {
            Err(e) if e.is_transient() && attempt < TRANSIENT_RETRIES => {
                attempt += 1;
                std::thread::sleep(backoff(attempt));
            }
            result => return result,
        }
    }
}

/// 2, 4, 8 ... ms with jitter from the clock, capped at 200 ms.
fn backoff(attempt: u32) -> Duration {
    let base = 2u64.saturating_pow(attempt).min(200);
    let jitter = u64::from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0),
    ) % (base + 1);
    Duration::from_millis(base / 2 + jitter / 2)
}
