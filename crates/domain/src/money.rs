//! Money in integer minor units with its currency; never a float.

use std::fmt;

/// A value that could not be read as money.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// Not three uppercase ASCII letters.
    #[error("invalid currency {0:?}")]
    InvalidCurrency(String),
    /// Not a plain non-negative decimal.
    #[error("invalid amount {0:?}")]
    InvalidAmount(String),
    /// More fractional digits than the currency is written with.
    #[error("amount {amount:?} has more decimals than {currency} allows")]
    TooManyDecimals {
        /// The amount as written.
        amount: String,
        /// The currency it was read in.
        currency: Currency,
    },
    /// The result does not fit in 64-bit minor units.
    #[error("amount out of range")]
    Overflow,
    /// Two amounts of different currencies were combined.
    #[error("cannot combine {0} and {1}")]
    CurrencyMismatch(Currency, Currency),
}

/// An ISO 4217 currency code with the number of minor digits it is written with.
///
/// ```
/// use consign_domain::Currency;
/// let sek: Currency = "SEK".parse().unwrap();
/// assert_eq!(sek.minor_digits(), 2);
/// assert_eq!("JPY".parse::<Currency>().unwrap().minor_digits(), 0);
/// assert_eq!("KWD".parse::<Currency>().unwrap().minor_digits(), 3);
/// assert!("sek".parse::<Currency>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency {
    code: [u8; 3],
}

/// ISO 4217 currencies written without minor units.
const ZERO_DIGITS: &[&str] = &[
    "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND",
    "VUV", "XAF", "XOF", "XPF",
];
/// ISO 4217 currencies written with three minor digits.
const THREE_DIGITS: &[&str] = &["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"];

impl Currency {
    /// The three-letter code, e.g. `"SEK"`.
    pub fn code(&self) -> &str {
        // The constructor admits only ASCII uppercase letters.
        std::str::from_utf8(&self.code).unwrap_or("XXX")
    }

    /// How many digits follow the decimal point when an amount is written (SEK 2, JPY 0, KWD 3).
    pub fn minor_digits(&self) -> u32 {
        let code = self.code();
        if ZERO_DIGITS.contains(&code) {
            0
        } else if THREE_DIGITS.contains(&code) {
            3
        } else {
            2
        }
    }
}

impl std::str::FromStr for Currency {
    type Err = MoneyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = s.as_bytes();
        if bytes.len() != 3 || !bytes.iter().all(u8::is_ascii_uppercase) {
            return Err(MoneyError::InvalidCurrency(s.chars().take(16).collect()));
        }
        Ok(Currency {
            code: [bytes[0], bytes[1], bytes[2]],
        })
    }
}

impl TryFrom<String> for Currency {
    type Error = MoneyError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<Currency> for String {
    fn from(value: Currency) -> Self {
        value.code().to_owned()
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// An amount of money: integer minor units (öre, cents) of one currency.
///
/// Arithmetic is checked: it answers an error instead of overflowing or mixing currencies.
///
/// ```
/// use consign_domain::{Currency, Money};
/// let sek: Currency = "SEK".parse().unwrap();
/// let price = Money::parse("249.50", sek).unwrap();
/// assert_eq!(price.minor(), 24950);
/// let two = price.times(2).unwrap();
/// assert_eq!(two.to_string(), "499.00");
/// assert!(Money::parse("249.505", sek).is_err()); // more digits than SEK has
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    minor: i64,
    currency: Currency,
}

impl Money {
    /// An amount from minor units.
    pub fn from_minor(minor: i64, currency: Currency) -> Self {
        Money { minor, currency }
    }

    /// Zero in `currency`.
    pub fn zero(currency: Currency) -> Self {
        Money { minor: 0, currency }
    }

    /// The amount in minor units.
    pub fn minor(&self) -> i64 {
        self.minor
    }

    /// The currency.
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// Reads a non-negative decimal such as `"249.50"`, `"249.5"` or `"249"` exactly.
    ///
    /// Refuses signs, exponents, spaces and more fractional digits than the currency has.
    pub fn parse(text: &str, currency: Currency) -> Result<Money, MoneyError> {
        let invalid = || MoneyError::InvalidAmount(text.chars().take(32).collect());
        let (whole, fraction) = match text.split_once('.') {
            Some((w, f)) => (w, f),
            None => (text, ""),
        };
        let digits_only = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !digits_only(whole) || !digits_only(fraction) {
            return Err(invalid());
        }
        if text.contains('.') && fraction.is_empty() {
            return Err(invalid());
        }
        let places = currency.minor_digits();
        if fraction.len() > places as usize {
            return Err(MoneyError::TooManyDecimals {
                amount: text.chars().take(32).collect(),
                currency,
            });
        }
        let scale = 10i64.pow(places);
        let whole: i64 = whole.parse().map_err(|_| invalid())?;
        let mut fraction_minor: i64 = 0;
        for (i, b) in fraction.bytes().enumerate() {
            fraction_minor += i64::from(b - b'0') * 10i64.pow(places - 1 - i as u32);
        }
        let minor = whole
            .checked_mul(scale)
            .and_then(|m| m.checked_add(fraction_minor))
            .ok_or(MoneyError::Overflow)?;
        Ok(Money { minor, currency })
    }

    /// The sum, or an error on overflow or mixed currencies.
    pub fn plus(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        self.minor
            .checked_add(other.minor)
            .map(|minor| Money { minor, ..self })
            .ok_or(MoneyError::Overflow)
    }

    /// The difference, or an error on overflow or mixed currencies.
    pub fn minus(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        self.minor
            .checked_sub(other.minor)
            .map(|minor| Money { minor, ..self })
            .ok_or(MoneyError::Overflow)
    }

    /// This amount times a quantity, or an error on overflow.
    pub fn times(self, quantity: u32) -> Result<Money, MoneyError> {
        self.minor
            .checked_mul(i64::from(quantity))
            .map(|minor| Money { minor, ..self })
            .ok_or(MoneyError::Overflow)
    }

    fn same_currency(self, other: Money) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch(self.currency, other.currency))
        }
    }
}

/// Writes the exact decimal with the currency's minor digits: `249.50`, `1500` (JPY), `-0.05`.
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let places = self.currency.minor_digits();
        let sign = if self.minor < 0 { "-" } else { "" };
        let abs = self.minor.unsigned_abs();
        if places == 0 {
            return write!(f, "{sign}{abs}");
        }
        let scale = 10u64.pow(places);
        write!(
            f,
            "{sign}{}.{:0width$}",
            abs / scale,
            abs % scale,
            width = places as usize
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sek() -> Currency {
        "SEK".parse().unwrap()
    }

    #[test]
    fn parses_and_writes_each_currency_exponent() {
        let jpy: Currency = "JPY".parse().unwrap();
        let kwd: Currency = "KWD".parse().unwrap();
        assert_eq!(Money::parse("1500", jpy).unwrap().to_string(), "1500");
        assert!(Money::parse("1500.5", jpy).is_err());
        assert_eq!(Money::parse("1.5", kwd).unwrap().minor(), 1500);
        assert_eq!(Money::parse("1.005", kwd).unwrap().to_string(), "1.005");
        assert_eq!(Money::parse("0.05", sek()).unwrap().minor(), 5);
    }

    #[test]
    fn refuses_signs_exponents_spaces_and_empty_parts() {
        for bad in [
            "-1", "+1", "1e3", " 1", "1 ", "", ".5", "5.", "1.2.3", "NaN", "1,50",
        ] {
            assert!(
                Money::parse(bad, sek()).is_err(),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn refuses_overflow_instead_of_wrapping() {
        assert_eq!(
            Money::parse("92233720368547758.08", sek()),
            Err(MoneyError::Overflow)
        );
        let big = Money::from_minor(i64::MAX, sek());
        assert_eq!(
            big.plus(Money::from_minor(1, sek())),
            Err(MoneyError::Overflow)
        );
        assert_eq!(big.times(2), Err(MoneyError::Overflow));
    }

    #[test]
    fn refuses_to_mix_currencies() {
        let eur = Money::zero("EUR".parse().unwrap());
        assert!(matches!(
            Money::zero(sek()).plus(eur),
            Err(MoneyError::CurrencyMismatch(_, _))
        ));
    }

    proptest! {
        #[test]
        fn display_then_parse_is_identity(minor in 0i64..=i64::MAX / 1000) {
            for code in ["SEK", "JPY", "KWD"] {
                let money = Money::from_minor(minor, code.parse().unwrap());
                prop_assert_eq!(Money::parse(&money.to_string(), money.currency()), Ok(money));
            }
        }
    }
}
