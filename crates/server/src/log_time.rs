//! The timestamp of each log line, written as the logging library's default writes it
//! (RFC 3339 in UTC, to the microsecond: `2026-12-03T21:00:00.123456Z`) without its formatting
//! machinery: at the default level every request logs a line, and the default timestamp cost
//! about 2 % of a create-shipment's instructions (callgrind); this writes it into a fixed buffer.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;

/// The clock of log lines.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogTime;

impl FormatTime for LogTime {
    fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(since_epoch) => match stamp(since_epoch) {
                Some(text) => w.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?),
                None => tracing_subscriber::fmt::time::SystemTime.format_time(w),
            },
            // Before 1970: the library's own spelling.
            Err(_) => tracing_subscriber::fmt::time::SystemTime.format_time(w),
        }
    }
}

/// `since_epoch` as `YYYY-MM-DDTHH:MM:SS.uuuuuuZ`, in ASCII; `None` past the year 9999.
pub fn stamp(since_epoch: Duration) -> Option<[u8; 27]> {
    let seconds = since_epoch.as_secs();
    let (year, month, day) = civil_date(seconds / 86_400)?;
    let of_day = seconds % 86_400;
    let mut text = *b"0000-00-00T00:00:00.000000Z";
    put_digits(&mut text[0..4], year);
    put_digits(&mut text[5..7], month);
    put_digits(&mut text[8..10], day);
    put_digits(&mut text[11..13], of_day / 3_600);
    put_digits(&mut text[14..16], of_day % 3_600 / 60);
    put_digits(&mut text[17..19], of_day % 60);
    put_digits(&mut text[20..26], u64::from(since_epoch.subsec_micros()));
    Some(text)
}

/// Year, month and day of the `days`-th day after 1970-01-01 (the proleptic Gregorian
/// calendar, counted in 400-year eras of 146,097 days); `None` past 9999-12-31.
fn civil_date(days: u64) -> Option<(u64, u64, u64)> {
    // Days since 0000-03-01, so that a leap day ends its year.
    let days = days + 719_468;
    let era = days / 146_097;
    let of_era = days % 146_097;
    let year_of_era = (of_era - of_era / 1_460 + of_era / 36_524 - of_era / 146_096) / 365;
    let of_year = of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * of_year + 2) / 153;
    let day = of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year <= 9_999).then_some((year, month, day))
}

/// The lowest `digits.len()` decimal digits of `value`, zero-padded, into `digits`.
fn put_digits(digits: &mut [u8], mut value: u64) {
    for digit in digits.iter_mut().rev() {
        *digit = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_instant_as_rfc_3339_to_the_microsecond() {
        // Expected values from an independent calendar implementation.
        for (seconds, micros, expected) in [
            (0, 0, "1970-01-01T00:00:00.000000Z"),
            (951_782_400, 5, "2000-02-29T00:00:00.000005Z"),
            (951_868_799, 999_999, "2000-02-29T23:59:59.999999Z"),
            (1_709_164_800, 7, "2024-02-29T00:00:00.000007Z"),
            (1_796_331_600, 123_456, "2026-12-03T21:00:00.123456Z"),
            (4_107_542_400, 42, "2100-03-01T00:00:00.000042Z"),
            (253_402_300_799, 999_999, "9999-12-31T23:59:59.999999Z"),
        ] {
            let at = Duration::from_secs(seconds) + Duration::from_micros(micros);
            let text = stamp(at).map(|t| String::from_utf8_lossy(&t).into_owned());
            assert_eq!(text.as_deref(), Some(expected), "{seconds}");
        }
        assert_eq!(stamp(Duration::from_secs(253_402_300_800)), None);
    }

    #[test]
    fn writes_what_the_logging_librarys_default_clock_writes() {
        // The library's clock cannot be given an instant: read both around one and compare
        // all but the fractional second, retrying if a second boundary fell between them.
        for _ in 0..5 {
            let mut theirs = String::new();
            tracing_subscriber::fmt::time::SystemTime
                .format_time(&mut Writer::new(&mut theirs))
                .expect("formats");
            let mut ours = String::new();
            LogTime
                .format_time(&mut Writer::new(&mut ours))
                .expect("formats");
            assert_eq!(ours.len(), theirs.len(), "{ours} / {theirs}");
            if ours[..19] == theirs[..19] {
                assert_eq!(&ours[19..20], ".");
                assert!(ours.ends_with('Z'));
                return;
            }
        }
        panic!("the two clocks never agreed to the second");
    }
}
