//! Centra's dates: `"YYYY-MM-DD HH:MM:SS"` in UTC, `"0000-00-00 00:00:00"` when unset.

use consign_ports::Timestamp;

/// What an unset date is written as.
pub const UNSET: &str = "0000-00-00 00:00:00";

/// Writes a timestamp as Centra does.
pub fn format(ts: Timestamp) -> String {
    let secs = ts.0.div_euclid(1000);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Writes an optional timestamp, unset as zeros.
pub fn format_opt(ts: Option<Timestamp>) -> String {
    ts.map_or_else(|| UNSET.to_owned(), format)
}

/// Reads `YYYY-MM-DD` or `YYYY-MM-DD HH:MM:SS` (UTC).
pub fn parse(text: &str) -> Option<Timestamp> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_utc_dates() {
        assert_eq!(format(Timestamp(0)), "1970-01-01 00:00:00");
        assert_eq!(format(Timestamp(1_328_368_573_000)), "2012-02-04 15:16:13");
        assert_eq!(
            parse("2012-02-04 15:16:13"),
            Some(Timestamp(1_328_368_573_000))
        );
        assert_eq!(parse("2024-02-29"), Some(Timestamp(1_709_164_800_000)));
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "2024-1-01",
            "2024-01-01 24:00:00",
            "2024-01-01T00:00:00",
            "",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
        assert_eq!(format_opt(None), UNSET);
    }
}
