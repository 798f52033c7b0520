//! Orders and their lines, with the counters shipments move. The counters are private: they
//! change only through [`Order::reserve`] and [`Order::apply`], with checked arithmetic, and
//! [`Order::new`] refuses counters that no sequence of shipments can produce.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use crate::error::{OrderError, ShipmentError};
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
        u32::try_from(hundredths)
            .map(TaxRate)
            .map_err(|_| MoneyError::InvalidAmount(s.to_owned()))
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentAuthorization {
    /// Which gateway holds it (`sandbox`, `stripe`).
    pub provider: String,
    /// The provider's reference for the authorisation (a PaymentIntent id, say).
    pub reference: String,
    /// How much it authorises; at least the order total.
    pub amount: Money,
}

/// One line of an order: what was bought, and how many of its units shipments hold.
///
/// ```
/// use consign_domain::{LineId, Money, OrderLine, TaxRate};
/// let sek = "SEK".parse().unwrap();
/// let line = OrderLine::new(LineId(1), "TSHIRT-M", "T-shirt", Money::from_minor(24_950, sek), TaxRate(2500), 2);
/// assert_eq!(line.shippable(), 2);
/// // A store hands back what its shipments hold; `Order::new` checks it is possible.
/// let line = line.with_progress(1, 1);
/// assert_eq!((line.allocated(), line.in_capture(), line.shippable()), (1, 1, 1));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderLine {
    line_id: LineId,
    sku: String,
    name: String,
    unit_price: Money,
    tax_rate: TaxRate,
    quantity: u32,
    allocated: u32,
    in_capture: u32,
}

impl OrderLine {
    /// A line no shipment holds yet.
    pub fn new(
        line_id: LineId,
        sku: impl Into<String>,
        name: impl Into<String>,
        unit_price: Money,
        tax_rate: TaxRate,
        quantity: u32,
    ) -> OrderLine {
        OrderLine {
            line_id,
            sku: sku.into(),
            name: name.into(),
            unit_price,
            tax_rate,
            quantity,
            allocated: 0,
            in_capture: 0,
        }
    }

    /// The same line with `allocated` units in live shipments, `in_capture` of them in
    /// captured or capture-pending ones (as a store kept them). [`Order::new`] refuses the
    /// line unless `in_capture <= allocated <= quantity`.
    pub fn with_progress(self, allocated: u32, in_capture: u32) -> OrderLine {
        OrderLine {
            allocated,
            in_capture,
            ..self
        }
    }

    /// Centra's `lineId`.
    pub fn line_id(&self) -> LineId {
        self.line_id
    }

    /// Stock keeping unit.
    pub fn sku(&self) -> &str {
        &self.sku
    }

    /// Product name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Unit price paid: after discounts, tax included.
    pub fn unit_price(&self) -> Money {
        self.unit_price
    }

    /// Tax rate of the unit price.
    pub fn tax_rate(&self) -> TaxRate {
        self.tax_rate
    }

    /// Units ordered.
    pub fn quantity(&self) -> u32 {
        self.quantity
    }

    /// Units in live shipments (uncaptured, capture pending or captured).
    pub fn allocated(&self) -> u32 {
        self.allocated
    }

    /// Units in shipments whose capture is pending or done.
    pub fn in_capture(&self) -> u32 {
        self.in_capture
    }

    /// Units not yet in a live shipment.
    pub fn shippable(&self) -> u32 {
        self.quantity.saturating_sub(self.allocated)
    }

    fn check(&self) -> Result<(), OrderError> {
        if self.in_capture > self.allocated || self.allocated > self.quantity {
            return Err(OrderError::Inconsistent(format!(
                "line {}: {} in capture, {} allocated, {} ordered",
                self.line_id, self.in_capture, self.allocated, self.quantity
            )));
        }
        Ok(())
    }
}

/// What an order's shipments have taken so far, besides the lines' counters: the amount in
/// captured and capture-pending shipments, whether one of them carries the shipping fee, and
/// the number the next shipment gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderProgress {
    /// Sum of the amounts of captured and capture-pending shipments.
    pub committed: Money,
    /// Whether a captured or capture-pending shipment carries the shipping fee.
    pub shipping_fee_committed: bool,
    /// The number the next shipment of this order gets (numbers are never reused).
    pub next_shipment_number: u32,
}

/// An order with its lines, its payment and what its shipments have taken so far.
///
/// Built with [`Order::new`] (which refuses an inconsistent order) and, for an order a store
/// kept, [`Order::with_progress`]. Its counters move only through [`Order::reserve`] (a new
/// shipment) and [`Order::apply`] (a decided [`crate::ShipmentChange`]).
///
/// ```
/// use consign_domain::*;
/// let sek: Currency = "SEK".parse().unwrap();
/// let money = |text| Money::parse(text, sek).unwrap();
/// let order = Order::new(
///     OrderId(83651),
///     sek,
///     vec![
///         OrderLine::new(LineId(1), "TSHIRT-M", "T-shirt", money("249.50"), TaxRate(2500), 2),
///         OrderLine::new(LineId(2), "CAP", "Cap", money("199.00"), TaxRate(2500), 1),
///     ],
///     money("49.00"),
///     Some(PaymentAuthorization { provider: "sandbox".into(), reference: "auth-1".into(), amount: money("747.00") }),
/// )
/// .unwrap();
/// assert_eq!(order.total().unwrap().to_string(), "747.00");
///
/// // An authorisation below the total, or a line allocated beyond what was ordered, is refused.
/// let short = Some(PaymentAuthorization { provider: "sandbox".into(), reference: "a".into(), amount: money("700.00") });
/// assert!(Order::new(OrderId(1), sek, order.lines().to_vec(), money("49.00"), short).is_err());
/// let over = OrderLine::new(LineId(1), "CAP", "Cap", money("1.00"), TaxRate(0), 1).with_progress(2, 0);
/// assert!(matches!(Order::new(OrderId(2), sek, vec![over], money("0"), None), Err(OrderError::Inconsistent(_))));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    id: OrderId,
    currency: Currency,
    lines: Vec<OrderLine>,
    shipping_fee: Money,
    payment: Option<PaymentAuthorization>,
    committed: Money,
    shipping_fee_committed: bool,
    next_shipment_number: u32,
}

impl Order {
    /// An order no shipment has touched beyond what its lines' counters say: checks that it has
    /// lines, each with a quantity and a distinct id, that every amount is in `currency` and not
    /// negative, that each line's counters are possible, and that the authorisation (when there
    /// is one) covers the total.
    pub fn new(
        id: OrderId,
        currency: Currency,
        lines: Vec<OrderLine>,
        shipping_fee: Money,
        payment: Option<PaymentAuthorization>,
    ) -> Result<Order, OrderError> {
        if lines.is_empty() {
            return Err(OrderError::NoLines);
        }
        let mut ids = HashSet::with_capacity(lines.len());
        for line in &lines {
            if line.quantity == 0 {
                return Err(OrderError::ZeroQuantity(line.sku.clone()));
            }
            if !ids.insert(line.line_id) {
                return Err(OrderError::DuplicateLine(line.line_id));
            }
            in_currency(line.unit_price, currency)?;
            line.check()?;
        }
        in_currency(shipping_fee, currency)?;
        let order = Order {
            id,
            currency,
            lines,
            shipping_fee,
            payment,
            committed: Money::zero(currency),
            shipping_fee_committed: false,
            next_shipment_number: 1,
        };
        let total = order.total()?;
        if let Some(payment) = &order.payment {
            in_currency(payment.amount, currency)?;
            if payment.amount.minor() < total.minor() {
                return Err(OrderError::AuthorizationTooSmall {
                    authorized: payment.amount.to_string(),
                    total: total.to_string(),
                });
            }
        }
        Ok(order)
    }

    /// The same order with the progress a store kept: refused when the committed amount is in
    /// another currency, negative or above the total, or the next shipment number is 0.
    pub fn with_progress(self, progress: OrderProgress) -> Result<Order, OrderError> {
        let committed = progress.committed;
        in_currency(committed, self.currency).map_err(|e| match e {
            OrderError::NegativeAmount => {
                OrderError::Inconsistent(format!("committed {committed} is negative"))
            }
            other => other,
        })?;
        let total = self.total()?;
        if committed.minor() > total.minor() {
            return Err(OrderError::Inconsistent(format!(
                "committed {committed} is above the total {total}"
            )));
        }
        if progress.next_shipment_number == 0 {
            return Err(OrderError::Inconsistent("shipment number 0".into()));
        }
        Ok(Order {
            committed,
            shipping_fee_committed: progress.shipping_fee_committed,
            next_shipment_number: progress.next_shipment_number,
            ..self
        })
    }

    /// Centra's `order`.
    pub fn id(&self) -> OrderId {
        self.id
    }

    /// Currency of every amount on the order.
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// The lines, in the order they were imported.
    pub fn lines(&self) -> &[OrderLine] {
        &self.lines
    }

    /// Shipping fee, captured once with the first captured shipment that carries it.
    pub fn shipping_fee(&self) -> Money {
        self.shipping_fee
    }

    /// The authorisation shipments capture against, if any.
    pub fn payment(&self) -> Option<&PaymentAuthorization> {
        self.payment.as_ref()
    }

    /// Sum of the amounts of captured and capture-pending shipments.
    pub fn committed(&self) -> Money {
        self.committed
    }

    /// What its shipments have taken so far (see [`OrderProgress`]).
    pub fn progress(&self) -> OrderProgress {
        OrderProgress {
            committed: self.committed,
            shipping_fee_committed: self.shipping_fee_committed,
            next_shipment_number: self.next_shipment_number,
        }
    }

    /// The order total: every unit at its price plus the shipping fee.
    pub fn total(&self) -> Result<Money, MoneyError> {
        self.lines.iter().try_fold(self.shipping_fee, |sum, line| {
            sum.plus(line.unit_price.times(line.quantity)?)
        })
    }

    /// The line with this id, if it is on the order.
    pub fn line(&self, id: LineId) -> Option<&OrderLine> {
        self.lines.iter().find(|l| l.line_id == id)
    }

    /// Whether every unit of the order is in a live shipment.
    pub fn fully_allocated(&self) -> bool {
        self.lines.iter().all(|l| l.allocated == l.quantity)
    }

    /// Whether every unit of the order is in a captured or capture-pending shipment.
    pub fn fully_in_capture(&self) -> bool {
        self.lines.iter().all(|l| l.in_capture == l.quantity)
    }

    /// Applies counter moves all or nothing: every line's new counters and the new committed
    /// amount are computed with checked arithmetic and checked before anything is changed.
    pub(crate) fn apply_moves(
        &mut self,
        moves: &[LineMove],
        committed_change: i64,
        shipping_fee_committed: Option<bool>,
        next_shipment_number: Option<u32>,
    ) -> Result<(), ShipmentError> {
        // Moves apply in turn to a working copy (two moves of one line add up), checked at
        // every step; the order changes only once all of them fit.
        let mut lines = self.lines.clone();
        for m in moves {
            let line = lines.iter_mut().find(|l| l.line_id == m.line_id).ok_or(
                ShipmentError::UnknownLine {
                    order: self.id,
                    line: m.line_id,
                },
            )?;
            let shift = |count: u32, by: i64| {
                i64::from(count)
                    .checked_add(by)
                    .and_then(|n| u32::try_from(n).ok())
            };
            let (Some(allocated), Some(in_capture)) = (
                shift(line.allocated, m.allocated),
                shift(line.in_capture, m.in_capture),
            ) else {
                return Err(does_not_fit(line));
            };
            let moved = line.clone().with_progress(allocated, in_capture);
            if moved.check().is_err() {
                return Err(does_not_fit(line));
            }
            *line = moved;
        }
        let committed = self
            .committed
            .minor()
            .checked_add(committed_change)
            .ok_or(MoneyError::Overflow)?;
        let total = self.total()?.minor();
        if !(0..=total).contains(&committed) {
            return Err(ShipmentError::DoesNotFit(format!(
                "committed would be {committed} of a total of {total}"
            )));
        }
        self.lines = lines;
        self.committed = Money::from_minor(committed, self.currency);
        if let Some(carried) = shipping_fee_committed {
            self.shipping_fee_committed = carried;
        }
        if let Some(next) = next_shipment_number {
            self.next_shipment_number = next;
        }
        Ok(())
    }

    /// Whether a captured or capture-pending shipment carries the shipping fee.
    pub fn shipping_fee_committed(&self) -> bool {
        self.shipping_fee_committed
    }

    /// The number the next shipment of this order gets (numbers are never reused).
    pub fn next_shipment_number(&self) -> u32 {
        self.next_shipment_number
    }
}

fn does_not_fit(line: &OrderLine) -> ShipmentError {
    ShipmentError::DoesNotFit(format!(
        "line {} has {} in capture, {} allocated, {} ordered",
        line.line_id, line.in_capture, line.allocated, line.quantity
    ))
}

fn in_currency(amount: Money, currency: Currency) -> Result<(), OrderError> {
    if amount.currency() != currency {
        return Err(MoneyError::CurrencyMismatch(currency, amount.currency()).into());
    }
    if amount.minor() < 0 {
        return Err(OrderError::NegativeAmount);
    }
    Ok(())
}

/// How one order line's counters move with a change: units into or out of live shipments
/// (`allocated`) and into or out of capture (`in_capture`). Stores apply the same moves with
/// guarded updates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineMove {
    /// The order line.
    pub line_id: LineId,
    /// Change of its allocated units.
    pub allocated: i64,
    /// Change of its units in capture.
    pub in_capture: i64,
}
