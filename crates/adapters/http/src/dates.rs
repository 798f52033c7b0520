//! Centra's dates: `"YYYY-MM-DD HH:MM:SS"` in UTC, `"0000-00-00 00:00:00"` when unset.

use consign_ports::Timestamp;

/// What an unset date is written as.
pub const UNSET: &str = "0000-00-00 00:00:00";

/// Writes a timestamp as Centra does.
pub fn format(ts: Timestamp) -> String {
    ts.format_utc()
}

/// Writes an optional timestamp, unset as zeros.
pub fn format_opt(ts: Option<Timestamp>) -> String {
    ts.map_or_else(|| UNSET.to_owned(), format)
}

/// Reads `YYYY-MM-DD` or `YYYY-MM-DD HH:MM:SS` (UTC).
pub fn parse(text: &str) -> Option<Timestamp> {
    Timestamp::parse_utc(text)
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
