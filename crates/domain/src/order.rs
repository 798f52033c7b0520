//! Orders and their lines, as imported, with the counters shipments move.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::OrderError;
use crate::ids::{LineId, OrderId};
use crate::money::MoneyError;
use crate::money::{Currency, Money};

/// A tax rate in hundredths of a percent: `25` percent is `TaxRate(2500)`.
///
/// ```
/// use consign_domain::TaxRate;
/// assert_eq!("12.5".parse::<TaxRate>().unwrap(), TaxRate(1250));
/// assert_eq!(TaxRate(2500).to_string(), "25");
/// assert_eq!(TaxRate(1250).to_string(), "12.5");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TaxRate(pub u32);

impl FromStr for TaxRate {
    type Err = MoneyError;

    /// Reads a percentage with at most two decimals, from 0 to 100.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let percent: Currency = "XTS".parse()?; // any two-digit currency reads hundredths
        let hundredths = Money::parse(s, percent)?.minor();
        if hundredths > 10_000 {
            return Err(MoneyError::InvalidAmount(s.to_owned()));
        }
        Ok(TaxRate(hundredths as u32))
    }
}

impl fmt::Display for TaxRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (whole, frac) = (self.0 / 100, self.0 % 100);
        match frac {
            0 => write!(f, "{whole}"),
            f10 if f10 % 10 == 0 => write!(f, "{whole}.{}", f10 / 10),
            _ => write!(f, "{whole}.{frac:02}"),
        }
    }
}

/// The payment authorisation that shipments capture against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentAuthorization {
    /// Which gateway holds it (`sandbox`, `stripe`).
    pub provider: String,
    /// The provider's reference for the authorisation (a PaymentIntent id, say).
    pub reference: String,
    /// How much it authorises; at least the order total.
    pub amount: Money,
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    /// Centra's `lineId`.
    pub line_id: LineId,
    /// Stock keeping unit.
    pub sku: String,
    /// Product name.
    pub name: String,
    /// Unit price paid: after discounts, tax included.
    pub unit_price: Money,
    /// Tax rate of the unit price.
    pub tax_rate: TaxRate,
    /// Units ordered.
    pub quantity: u32,
    /// Units in live shipments (uncaptured, capture pending or captured).
    pub allocated: u32,
    /// Units in shipments whose capture is pending or done.
    pub in_capture: u32,
}

impl OrderLine {
    /// Units not yet in a live shipment.
    pub fn shippable(&self) -> u32 {
        self.quantity.saturating_sub(self.allocated)
    }
}

/// An order with its lines, its payment and what its shipments have taken so far.
///
/// The counters (`allocated`, `in_capture`, `committed`, `shipping_fee_committed`,
/// `next_shipment_number`) are moved only by [`Order::reserve`], [`Order::begin_capture`] and
/// [`Order::release`], which the stores mirror in their guarded updates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// Centra's `order`.
    pub id: OrderId,
    /// Currency of every amount on the order.
    pub currency: Currency,
    /// The lines, in the order they were imported.
    pub lines: Vec<OrderLine>,
    /// Shipping fee, captured once with the first captured shipment.
    pub shipping_fee: Money,
    /// The authorisation shipments capture against, if any.
    pub payment: Option<PaymentAuthorization>,
    /// Sum of the amounts of captured and capture-pending shipments.
    pub committed: Money,
    /// Whether a captured or capture-pending shipment carries the shipping fee.
    pub shipping_fee_committed: bool,
    /// The number the next shipment of this order gets (numbers are never reused).
    pub next_shipment_number: u32,
}

impl Order {
    /// The order total: every unit at its price plus the shipping fee.
    pub fn total(&self) -> Result<Money, MoneyError> {
        self.lines.iter().try_fold(self.shipping_fee, |sum, line| {
            sum.plus(line.unit_price.times(line.quantity)?)
        })
    }

    /// Checks an order about to be imported: lines present, quantities positive, one currency,
    /// and an authorisation (when there is one) that covers the total.
    pub fn validate_new(&self) -> Result<(), OrderError> {
        if self.lines.is_empty() {
            return Err(OrderError::NoLines);
        }
        if let Some(line) = self.lines.iter().find(|l| l.quantity == 0) {
            return Err(OrderError::ZeroQuantity(line.sku.clone()));
        }
        let total = self.total()?;
        if let Some(payment) = &self.payment {
            let authorized = payment.amount;
            authorized.minus(total)?; // same currency
            if authorized.minor() < total.minor() {
                return Err(OrderError::AuthorizationTooSmall {
                    authorized: authorized.to_string(),
                    total: total.to_string(),
                });
            }
        }
        Ok(())
    }

    /// The line with this id, if it is on the order.
    pub fn line(&self, id: LineId) -> Option<&OrderLine> {
        self.lines.iter().find(|l| l.line_id == id)
    }

    pub(crate) fn line_mut(&mut self, id: LineId) -> Option<&mut OrderLine> {
        self.lines.iter_mut().find(|l| l.line_id == id)
    }

    /// Whether every unit of the order is in a live shipment.
    pub fn fully_allocated(&self) -> bool {
        self.lines.iter().all(|l| l.allocated == l.quantity)
    }

    /// Whether every unit of the order is in a captured or capture-pending shipment.
    pub fn fully_in_capture(&self) -> bool {
        self.lines.iter().all(|l| l.in_capture == l.quantity)
    }
}
