//! What a provider's captured total says of one capture whose idempotency key it may have
//! forgotten. Replaying such a capture with its key could capture it twice, so it is looked up
//! instead: what the authorisation holds at the provider, against what Consign has settled on it.

use crate::Money;

/// What an authorisation's captured total at the provider says of one capture attempt.
///
/// ```
/// use consign_domain::{CaptureFinding, Currency, Money};
/// let sek: Currency = "SEK".parse().unwrap();
/// let money = |minor| Money::from_minor(minor, sek);
/// // 300.00 settled before; this attempt is 199.00; no other capture is in flight.
/// let find = |provider| CaptureFinding::of(money(provider), money(30_000), money(19_900), false);
/// assert_eq!(find(49_900), CaptureFinding::Made);
/// assert_eq!(find(30_000), CaptureFinding::NotMade);
/// // Anything else (a capture made outside Consign, say) is for a person to look at.
/// assert_eq!(find(40_000), CaptureFinding::Undecidable);
/// // With another capture in flight, a total of the settled plus this one could be the other's.
/// assert_eq!(CaptureFinding::of(money(49_900), money(30_000), money(19_900), true), CaptureFinding::Undecidable);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureFinding {
    /// The provider holds the settled captures and this one: it was made.
    Made,
    /// The provider holds exactly the settled captures: it was not made.
    NotMade,
    /// The totals do not tell (another capture in flight, money captured outside Consign, mixed
    /// currencies): it stays open for a person to look at.
    Undecidable,
}

impl CaptureFinding {
    /// Compares `provider_total` (everything the provider has captured on the authorisation)
    /// with `settled` (the captures Consign settled as made on it) and `attempt` (this
    /// capture's amount, above zero). `others_open` says whether another capture on the same
    /// authorisation has no outcome yet: then only "not made" can be told, since every capture
    /// adds a positive amount.
    pub fn of(provider_total: Money, settled: Money, attempt: Money, others_open: bool) -> Self {
        if attempt.minor() <= 0 {
            return CaptureFinding::Undecidable;
        }
        if provider_total
            .minus(settled)
            .is_ok_and(|rest| rest.minor() == 0)
        {
            return CaptureFinding::NotMade;
        }
        match settled.plus(attempt) {
            Ok(with_attempt) if !others_open && with_attempt == provider_total => {
                CaptureFinding::Made
            }
            _ => CaptureFinding::Undecidable,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Currency;

    fn sek(minor: i64) -> Money {
        Money::from_minor(minor, "SEK".parse::<Currency>().unwrap())
    }

    #[test]
    fn another_capture_in_flight_still_lets_nothing_made_be_told() {
        assert_eq!(
            CaptureFinding::of(sek(100), sek(100), sek(50), true),
            CaptureFinding::NotMade
        );
    }

    #[test]
    fn a_total_in_another_currency_is_undecidable() {
        let eur = Money::from_minor(150, "EUR".parse().unwrap());
        assert_eq!(
            CaptureFinding::of(eur, sek(100), sek(50), false),
            CaptureFinding::Undecidable
        );
        assert_eq!(
            CaptureFinding::of(
                Money::from_minor(100, "EUR".parse().unwrap()),
                sek(100),
                sek(50),
                false
            ),
            CaptureFinding::Undecidable
        );
    }

    #[test]
    fn a_provider_total_below_what_was_settled_is_undecidable() {
        assert_eq!(
            CaptureFinding::of(sek(40), sek(100), sek(50), false),
            CaptureFinding::Undecidable
        );
    }

    #[test]
    fn a_zero_attempt_never_reached_the_provider_and_is_not_looked_up() {
        assert_eq!(
            CaptureFinding::of(sek(100), sek(100), sek(0), false),
            CaptureFinding::Undecidable
        );
    }
}
