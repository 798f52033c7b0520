//! Time and randomness, so use cases never read the system clock or entropy directly.

/// Milliseconds since the Unix epoch, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// This instant moved back by `millis`.
    pub fn minus_millis(self, millis: i64) -> Timestamp {
        Timestamp(self.0.saturating_sub(millis))
    }

    /// `YYYY-MM-DD HH:MM:SS` in UTC, as Centra writes dates.
    ///
    /// ```
    /// use consign_ports::Timestamp;
    /// assert_eq!(Timestamp(1_328_368_573_000).format_utc(), "2012-02-04 15:16:13");
    /// ```
    pub fn format_utc(self) -> String {
        let secs = self.0.div_euclid(1000);
        let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        let (y, m, d) = civil_from_days(days);
        format!(
            "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
            rest / 3600,
            rest % 3600 / 60,
            rest % 60
        )
    }

    /// Reads `YYYY-MM-DD` or `YYYY-MM-DD HH:MM:SS` (UTC); `None` for anything else.
    pub fn parse_utc(text: &str) -> Option<Timestamp> {
        let (date, time) = match text.split_once(' ') {
            Some((d, t)) => (d, Some(t)),
            None => (text, None),
        };
        let field = |s: &str, len: usize| {
            (s.len() == len && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse::<i64>().ok())
                .flatten()
        };
        let mut parts = date.split('-');
        let (y, m, d) = (
            field(parts.next()?, 4)?,
            field(parts.next()?, 2)?,
            field(parts.next()?, 2)?,
        );
        if parts.next().is_some() || !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
            return None;
        }
        let seconds = match time {
            None => 0,
            Some(t) => {
                let mut parts = t.split(':');
                let (h, mi, s) = (
                    field(parts.next()?, 2)?,
                    field(parts.next()?, 2)?,
                    field(parts.next()?, 2)?,
                );
                if parts.next().is_some() || h > 23 || mi > 59 || s > 59 {
                    return None;
                }
                h * 3600 + mi * 60 + s
            }
        };
        Some(Timestamp(
            (days_from_civil(y, m, d) * 86_400 + seconds) * 1000,
        ))
    }
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's algorithms for the proleptic Gregorian calendar.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
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
