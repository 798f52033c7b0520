//! The real clock and the operating system's randomness, behind the ports.

use consign_ports::{Clock, IdSource, Timestamp};

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        Timestamp(millis)
    }
}

/// Tokens from the operating system's CSPRNG.
pub struct OsRandom;

impl IdSource for OsRandom {
    fn random_token(&self) -> String {
        let mut bytes = [0u8; 24];
        // Without entropy no key can be made safely: stopping is the only right answer.
        getrandom::getrandom(&mut bytes).expect("the operating system has no randomness");
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        bytes
            .iter()
            .map(|b| ALPHABET[usize::from(b & 63)] as char)
            .collect()
    }
}
