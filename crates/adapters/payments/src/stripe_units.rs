//! Consign's amounts (ISO 4217 minor units) in the units Stripe's API takes, and back.
//!
//! Stripe writes most currencies as ISO 4217 does, with exceptions (its "Supported currencies"
//! page): ISK, which ISO writes without minor units, stays two-decimal in Stripe's API in whole
//! krónur (100 is 1 króna); MGA, two-decimal in ISO, is zero-decimal at Stripe; and the
//! three-decimal currencies take only amounts whose last digit is 0. Sending the minor units
//! unchanged would capture a hundredth of an ISK amount, or a hundred times an MGA one.

use consign_domain::{Currency, Money};

/// How a currency's amounts are written in Stripe's API, against its ISO minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scale {
    /// As in ISO 4217.
    Same,
    /// Stripe's unit is this many ISO minor units (MGA: 100; only whole multiples go).
    Coarser(i64),
    /// Stripe's unit is an ISO minor unit divided by this (ISK: 100).
    Finer(i64),
    /// As in ISO 4217, but only multiples of this many minor units go (three-decimal: 10).
    SameInStepsOf(i64),
}

fn scale(currency: Currency) -> Scale {
    match currency.code() {
        "ISK" => Scale::Finer(100),
        "MGA" => Scale::Coarser(100),
        "BHD" | "JOD" | "KWD" | "OMR" | "TND" => Scale::SameInStepsOf(10),
        _ => Scale::Same,
    }
}

/// The amount Stripe's API takes for `amount`, or why it cannot take it.
pub(crate) fn to_stripe(amount: Money) -> Result<i64, String> {
    let minor = amount.minor();
    let too_fine = |step: i64| {
        format!(
            "Stripe takes {} amounts in steps of {}; {amount} is not one",
            amount.currency().code(),
            Money::from_minor(step, amount.currency())
        )
    };
    match scale(amount.currency()) {
        Scale::Same => Ok(minor),
        Scale::Finer(factor) => minor
            .checked_mul(factor)
            .ok_or_else(|| format!("{amount} is beyond what Stripe's API can carry")),
        Scale::Coarser(step) | Scale::SameInStepsOf(step) if minor % step != 0 => {
            Err(too_fine(step))
        }
        Scale::Coarser(step) => Ok(minor / step),
        Scale::SameInStepsOf(_) => Ok(minor),
    }
}

/// The amount a Stripe answer states in `currency`'s units, in Consign's (`None` when it is
/// not a whole number of them, which no capture made through Consign leaves).
pub(crate) fn from_stripe(value: i64, currency: Currency) -> Option<Money> {
    let minor = match scale(currency) {
        Scale::Same | Scale::SameInStepsOf(_) => value,
        Scale::Finer(factor) if value % factor != 0 => return None,
        Scale::Finer(factor) => value / factor,
        Scale::Coarser(step) => value.checked_mul(step)?,
    };
    Some(Money::from_minor(minor, currency))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn money(minor: i64, code: &str) -> Money {
        Money::from_minor(minor, code.parse().unwrap())
    }

    #[test]
    fn most_currencies_go_as_they_are() {
        assert_eq!(to_stripe(money(12_345, "SEK")), Ok(12_345));
        assert_eq!(to_stripe(money(500, "JPY")), Ok(500));
        assert_eq!(
            from_stripe(12_345, "SEK".parse().unwrap()),
            Some(money(12_345, "SEK"))
        );
    }

    #[test]
    fn krona_go_as_hundredths_and_come_back_whole() {
        assert_eq!(to_stripe(money(1_500, "ISK")), Ok(150_000));
        let isk = "ISK".parse().unwrap();
        assert_eq!(from_stripe(150_000, isk), Some(money(1_500, "ISK")));
        assert_eq!(
            from_stripe(150_050, isk),
            None,
            "half a króna is not an ISK amount"
        );
        assert!(to_stripe(money(i64::MAX / 10, "ISK")).is_err());
    }

    #[test]
    fn ariary_go_whole_and_fractions_are_refused() {
        assert_eq!(to_stripe(money(2_500, "MGA")), Ok(25));
        assert!(to_stripe(money(2_550, "MGA"))
            .unwrap_err()
            .contains("steps of 1.00"));
        assert_eq!(
            from_stripe(25, "MGA".parse().unwrap()),
            Some(money(2_500, "MGA"))
        );
    }

    #[test]
    fn three_decimal_amounts_must_end_in_zero() {
        assert_eq!(to_stripe(money(1_010, "KWD")), Ok(1_010));
        let refused = to_stripe(money(1_005, "KWD")).unwrap_err();
        assert!(
            refused.contains("steps of 0.010") && refused.contains("1.005"),
            "{refused}"
        );
    }
}
