//! Returns and refunds: what can be returned from a captured shipment, what a return refunds,
//! and the refund's states. Each rule is a plain function that answers a plan or a
//! [`ReturnError`] and changes nothing when it refuses.
//!
//! The money rule: per shipment, refunded (and in flight) never exceeds what was captured, so per
//! order it never does either; a line never comes back more often than it was shipped in that
//! shipment.

use crate::ids::{LineId, ShipmentId};
use crate::money::{Money, MoneyError};
use crate::order::Order;
use crate::plan::Providers;
use crate::plan::ShipmentLine;
use crate::shipment::Shipment;
use crate::state::ShipmentState;

/// Why a return or a refund is refused. Nothing changed when it is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReturnError {
    /// Only a captured shipment's money came in; others are updated or deleted instead.
    #[error("shipment is not captured; update or delete it instead of returning it")]
    NotCaptured(ShipmentId),
    /// The same line named twice in one request (however its id was spelled): a request
    /// decides each line's units once.
    #[error("line {0} appears more than once")]
    DuplicateLine(LineId),
    /// No named line could be returned (each reason is in `not_returned`).
    #[error("nothing on the shipment can be returned")]
    NothingReturnable(Vec<NotReturned>),
    /// Costs and deductions that leave less than nothing to refund.
    #[error("the refund would be negative: {0}")]
    NegativeRefund(Money),
    /// More than the shipment still has to refund.
    #[error("refund {asked} exceeds what is still refundable on the shipment ({refundable})")]
    ExceedsRefundable {
        /// The refund asked for.
        asked: Money,
        /// What is still refundable.
        refundable: Money,
    },
    /// A refund asked of a return whose refund is done or in flight.
    #[error("the return's refund is already {0}")]
    RefundNotDue(&'static str),
    /// Only a refund flagged for review (`needsReview`) is settled by an operator; one still
    /// in flight is settled by recovery, and a settled one is done.
    #[error("the return's refund is {0}, not waiting for review: only a refund in needsReview is settled by hand")]
    RefundNotUnderReview(&'static str),
    /// A refunded return is done: it cannot be set back to pending.
    #[error("a refunded return is completed and cannot be set back to pending")]
    RefundedStaysCompleted,
    /// The order's payment goes through a provider this instance has not enabled.
    #[error("payment provider {provider:?} is not enabled here; enabled providers: {enabled}")]
    ProviderNotEnabled {
        /// The order's provider.
        provider: String,
        /// The enabled ones.
        enabled: String,
    },
    /// The order has no payment to refund to.
    #[error("order has no payment to refund")]
    NoPayment,
    /// A return, a shipment or what its returns took that do not belong together (a store's
    /// rows or a caller's values that disagree): nothing is decided on them.
    #[error("the return does not fit what it is checked against: {0}")]
    DoesNotFit(String),
    /// A money error (overflow, another currency).
    #[error(transparent)]
    Money(#[from] MoneyError),
}

/// A line left out of a return, and why (Centra creates the return with the rest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotReturned {
    /// The order line asked for.
    pub line_id: LineId,
    /// Why it was left out, as the client reads it.
    pub msg: String,
}

/// Where a cost of a return comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Cost {
    /// None.
    #[default]
    None,
    /// This amount.
    Given(Money),
    /// What the shipment carried (the shipping fee its capture carried, once per shipment;
    /// nothing for handling and vouchers, which Consign's shipments do not carry).
    FromShipment,
}

/// What a create-return request asks of a captured shipment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReturnRequest {
    /// Lines and quantities to return; `None`: everything still returnable.
    pub lines: Option<Vec<ShipmentLine>>,
    /// Shipping refunded with the return.
    pub shipping: Cost,
    /// Handling refunded with the return.
    pub handling: Cost,
    /// Vouchers deducted from the refund.
    pub voucher: Cost,
    /// What returning costs the customer, deducted from the refund.
    pub return_cost: Option<Money>,
}

/// What earlier returns of one shipment took: units per line, money refunded or in flight, and
/// whether one of them took the shipping fee (whatever its refund's state: the fee comes back
/// with one return at most).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Returned {
    lines: Vec<ShipmentLine>,
    refunded: Money,
    shipping_fee_refunded: bool,
}

impl Returned {
    /// Nothing returned yet, in the order's currency.
    pub fn nothing(order: &Order) -> Returned {
        Returned {
            lines: Vec::new(),
            refunded: Money::zero(order.currency()),
            shipping_fee_refunded: false,
        }
    }

    /// What a store kept: units returned per line, the amount refunded or in flight, and
    /// whether the shipping fee was refunded. Refused when the amount is negative (it would
    /// make more refundable than was captured).
    ///
    /// ```
    /// # use consign_domain::*;
    /// let sek: Currency = "SEK".parse().unwrap();
    /// let line = ShipmentLine { line_id: LineId(1), quantity: 1 };
    /// assert!(Returned::kept(vec![line], Money::from_minor(24_950, sek), false).is_ok());
    /// assert!(matches!(Returned::kept(vec![line], Money::from_minor(-1, sek), false),
    ///     Err(ReturnError::DoesNotFit(_))));
    /// ```
    pub fn kept(
        lines: Vec<ShipmentLine>,
        refunded: Money,
        shipping_fee_refunded: bool,
    ) -> Result<Returned, ReturnError> {
        if refunded.minor() < 0 {
            return Err(ReturnError::DoesNotFit(format!(
                "returns that refunded {refunded}"
            )));
        }
        Ok(Returned {
            lines,
            refunded,
            shipping_fee_refunded,
        })
    }

    /// Units of `line` returned so far (at most `u32::MAX`).
    pub fn units(&self, line: LineId) -> u32 {
        self.lines
            .iter()
            .filter(|l| l.line_id == line)
            .fold(0u32, |sum, l| sum.saturating_add(l.quantity))
    }

    /// Money refunded or in flight.
    pub fn refunded(&self) -> Money {
        self.refunded
    }

    /// Whether a return of the shipment took its shipping fee.
    pub fn shipping_fee_refunded(&self) -> bool {
        self.shipping_fee_refunded
    }

    /// The same, with a planned return's units added and, when `refund` is asked, its amount
    /// counted as in flight.
    pub fn with(&self, plan: &ReturnPlan, refund: bool) -> Result<Returned, ReturnError> {
        let mut lines = self.lines.clone();
        lines.extend(plan.lines.iter().copied());
        let refunded = if refund {
            self.refunded.plus(plan.refund)?
        } else {
            self.refunded
        };
        Ok(Returned {
            lines,
            refunded,
            shipping_fee_refunded: self.shipping_fee_refunded || plan.takes_shipping_fee,
        })
    }
}

/// A validated return: what comes back, the costs, and what it refunds. Only
/// [`Order::plan_return`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnPlan {
    pub(crate) lines: Vec<ShipmentLine>,
    pub(crate) not_returned: Vec<NotReturned>,
    pub(crate) units: Money,
    pub(crate) shipping: Money,
    pub(crate) handling: Money,
    pub(crate) voucher: Money,
    pub(crate) return_cost: Money,
    pub(crate) refund: Money,
    pub(crate) takes_shipping_fee: bool,
    pub(crate) tax: Money,
}

impl ReturnPlan {
    /// Lines and quantities returned.
    pub fn lines(&self) -> &[ShipmentLine] {
        &self.lines
    }

    /// Lines asked for and left out.
    pub fn not_returned(&self) -> &[NotReturned] {
        &self.not_returned
    }

    /// The returned units at the price they were captured at.
    pub fn units(&self) -> Money {
        self.units
    }

    /// Shipping refunded.
    pub fn shipping(&self) -> Money {
        self.shipping
    }

    /// Handling refunded.
    pub fn handling(&self) -> Money {
        self.handling
    }

    /// Vouchers deducted.
    pub fn voucher(&self) -> Money {
        self.voucher
    }

    /// The return cost deducted.
    pub fn return_cost(&self) -> Money {
        self.return_cost
    }

    /// units + shipping + handling - return cost - voucher.
    pub fn refund(&self) -> Money {
        self.refund
    }

    /// Whether `shipping` is the fee the shipment's capture carried.
    pub fn takes_shipping_fee(&self) -> bool {
        self.takes_shipping_fee
    }

    /// The tax included in the returned units (per rate, rounded half up, as on invoices).
    pub fn tax(&self) -> Money {
        self.tax
    }

    /// Whether the refund of this return fits what the shipment still has to refund.
    ///
    /// "Still refundable" is the captured amount minus what is refunded or in flight; a return
    /// created without a refund counts only once its refund is asked for, so the check runs
    /// again then.
    pub fn check_refundable(
        &self,
        shipment: &Shipment,
        returned: &Returned,
    ) -> Result<(), ReturnError> {
        let captured = shipment
            .capture_amount()
            .ok_or(ReturnError::NotCaptured(shipment.id()))?;
        let refundable = captured.minus(returned.refunded)?;
        if self.refund.minor() > refundable.minor() {
            return Err(ReturnError::ExceedsRefundable {
                asked: self.refund,
                refundable,
            });
        }
        Ok(())
    }
}

impl Order {
    /// Plans a return of `shipment` (which must be captured), given what its earlier returns
    /// took. Each line may come back up to its quantity in the shipment minus earlier returns;
    /// lines that cannot are left out with a reason (not capped), and if nothing is left the
    /// return is refused. A line named twice is refused ([`ReturnError::DuplicateLine`]). With
    /// `refund`, the refund must fit what the shipment still has to refund. Nothing is changed.
    ///
    /// ```
    /// use consign_domain::*;
    /// let sek: Currency = "SEK".parse().unwrap();
    /// let money = |text| Money::parse(text, sek).unwrap();
    /// let mut order = Order::new(OrderId(1), sek,
    ///     vec![OrderLine::new(LineId(1), "TSHIRT", "T-shirt", money("249.50"), TaxRate(2500), 2)],
    ///     money("49.00"),
    ///     Some(PaymentAuthorization { provider: "sandbox".into(), reference: "a".into(), amount: money("548.00") }),
    /// ).unwrap();
    /// let plan = order.plan_shipment(&ShipmentRequest { capture: true, deduct_previous_costs: false,
    ///     lines: vec![ShipmentLine { line_id: LineId(1), quantity: 2 }] }).unwrap();
    /// order.reserve(&plan).unwrap();
    /// let shipment = Shipment::planned(&plan, ShipmentFlags::default())
    ///     .settle(Settlement::Captured, CaptureOrigin::AtCreation).unwrap().after().clone();
    /// // One T-shirt back with the shipping fee, less a return cost of 20.
    /// let request = ReturnRequest {
    ///     lines: Some(vec![ShipmentLine { line_id: LineId(1), quantity: 1 }]),
    ///     shipping: Cost::FromShipment,
    ///     return_cost: Some(money("20.00")),
    ///     ..ReturnRequest::default()
    /// };
    /// let returned = Returned::nothing(&order);
    /// let plan = order.plan_return(&shipment, &returned, &request, true).unwrap();
    /// assert_eq!(plan.refund().to_string(), "278.50"); // 249.50 + 49.00 - 20.00
    /// // Three more are not there to return: left out, and with nothing left, refused.
    /// let after = returned.with(&plan, true).unwrap();
    /// let too_many = ReturnRequest { lines: Some(vec![ShipmentLine { line_id: LineId(1), quantity: 3 }]), ..ReturnRequest::default() };
    /// assert!(matches!(order.plan_return(&shipment, &after, &too_many, true), Err(ReturnError::NothingReturnable(_))));
    /// // One line named twice is refused, whatever the quantities.
    /// let twice = ReturnRequest { lines: Some(vec![ShipmentLine { line_id: LineId(1), quantity: 1 }; 2]), ..ReturnRequest::default() };
    /// assert_eq!(order.plan_return(&shipment, &returned, &twice, true).unwrap_err(), ReturnError::DuplicateLine(LineId(1)));
    /// ```
    pub fn plan_return(
        &self,
        shipment: &Shipment,
        returned: &Returned,
        request: &ReturnRequest,
        refund: bool,
    ) -> Result<ReturnPlan, ReturnError> {
        if shipment.id().order != self.id() {
            return Err(ReturnError::DoesNotFit(format!(
                "shipment {} is not on order {}",
                shipment.id(),
                self.id()
            )));
        }
        if let Some(lines) = &request.lines {
            for (i, line) in lines.iter().enumerate() {
                if lines[..i].iter().any(|l| l.line_id == line.line_id) {
                    return Err(ReturnError::DuplicateLine(line.line_id));
                }
            }
        }
        if shipment.state() != ShipmentState::Captured {
            return Err(ReturnError::NotCaptured(shipment.id()));
        }
        let currency = self.currency();
        let wanted: Vec<ShipmentLine> = match &request.lines {
            Some(lines) => lines.clone(),
            None => shipment
                .lines()
                .iter()
                .map(|l| ShipmentLine {
                    line_id: l.line_id,
                    quantity: l.quantity.saturating_sub(returned.units(l.line_id)),
                })
                .filter(|l| l.quantity > 0)
                .collect(),
        };
        let mut lines: Vec<ShipmentLine> = Vec::new();
        let mut not_returned = Vec::new();
        let mut units = Money::zero(currency);
        for want in wanted {
            let shipped = shipment
                .lines()
                .iter()
                .find(|l| l.line_id == want.line_id)
                .map_or(0, |l| l.quantity);
            let already = returned.units(want.line_id);
            let left = shipped.saturating_sub(already);
            let refuse = |msg: String| NotReturned {
                line_id: want.line_id,
                msg,
            };
            if shipped == 0 {
                not_returned.push(refuse(format!(
                    "line {} is not on shipment {}",
                    want.line_id,
                    shipment.id()
                )));
            } else if want.quantity == 0 {
                not_returned.push(refuse(format!(
                    "quantity for line {} must be at least 1",
                    want.line_id
                )));
            } else if want.quantity > left {
                not_returned.push(refuse(format!(
                    "line {}: requested {}, but only {left} of {shipped} can still be returned",
                    want.line_id, want.quantity
                )));
            } else if let Some(line) = self.line(want.line_id) {
                units = units.plus(line.unit_price().times(want.quantity)?)?;
                lines.push(want);
            } else {
                not_returned.push(refuse(format!("line {} is not on the order", want.line_id)));
            }
        }
        if lines.is_empty() {
            return Err(ReturnError::NothingReturnable(not_returned));
        }
        let fee_left = shipment.carries_shipping_fee() && !returned.shipping_fee_refunded();
        let (shipping, takes_shipping_fee) = match request.shipping {
            Cost::None => (Money::zero(currency), false),
            Cost::Given(amount) => (amount, false),
            Cost::FromShipment if fee_left => (self.shipping_fee(), true),
            Cost::FromShipment => (Money::zero(currency), false),
        };
        let amount = |cost: Cost| match cost {
            Cost::Given(amount) => amount,
            Cost::None | Cost::FromShipment => Money::zero(currency),
        };
        let handling = amount(request.handling);
        let voucher = amount(request.voucher);
        let return_cost = request.return_cost.unwrap_or(Money::zero(currency));
        for cost in [shipping, handling, voucher, return_cost] {
            if cost.currency() != currency {
                return Err(MoneyError::CurrencyMismatch(currency, cost.currency()).into());
            }
            if cost.minor() < 0 {
                return Err(ReturnError::NegativeRefund(cost));
            }
        }
        let refund_amount = units
            .plus(shipping)?
            .plus(handling)?
            .minus(return_cost)?
            .minus(voucher)?;
        if refund_amount.minor() < 0 {
            return Err(ReturnError::NegativeRefund(refund_amount));
        }
        let tax = self.tax_included(&lines)?;
        let plan = ReturnPlan {
            tax,
            lines,
            not_returned,
            units,
            shipping,
            handling,
            voucher,
            return_cost,
            refund: refund_amount,
            takes_shipping_fee,
        };
        if refund {
            plan.check_refundable(shipment, returned)?;
        }
        Ok(plan)
    }
}

impl Order {
    /// The tax included in these units at their unit prices: per tax rate, gross x rate /
    /// (100% + rate), rounded half up (as on invoices).
    fn tax_included(&self, lines: &[ShipmentLine]) -> Result<Money, ReturnError> {
        let currency = self.currency();
        let mut gross_per_rate: std::collections::BTreeMap<u32, i128> = Default::default();
        for l in lines {
            if let Some(line) = self.line(l.line_id) {
                let gross = line.unit_price().times(l.quantity)?;
                *gross_per_rate.entry(line.tax_rate().0).or_default() += i128::from(gross.minor());
            }
        }
        let mut tax: i128 = 0;
        for (rate, gross) in gross_per_rate {
            let rate = i128::from(rate);
            tax += (gross * rate * 2 + (10_000 + rate)).div_euclid(2 * (10_000 + rate));
        }
        let tax = i64::try_from(tax).map_err(|_| MoneyError::Overflow)?;
        Ok(Money::from_minor(tax, currency))
    }
}

/// A return of one captured shipment: its lines, what it refunds, where its refund stands and
/// whether it is completed. It changes only through its methods, each of which answers the
/// return after the change (or an error, changing nothing); a store keeps what they answer.
///
/// ```
/// use consign_domain::*;
/// let sek: Currency = "SEK".parse().unwrap();
/// let money = |text| Money::parse(text, sek).unwrap();
/// let mut order = Order::new(OrderId(1), sek,
///     vec![OrderLine::new(LineId(1), "TSHIRT", "T-shirt", money("249.50"), TaxRate(2500), 2)],
///     money("0.00"),
///     Some(PaymentAuthorization { provider: "sandbox".into(), reference: "a".into(), amount: money("499.00") }),
/// ).unwrap();
/// let plan = order.plan_shipment(&ShipmentRequest { capture: true, deduct_previous_costs: false,
///     lines: vec![ShipmentLine { line_id: LineId(1), quantity: 2 }] }).unwrap();
/// order.reserve(&plan).unwrap();
/// let shipment = Shipment::planned(&plan, ShipmentFlags::default())
///     .settle(Settlement::Captured, CaptureOrigin::AtCreation).unwrap().after().clone();
/// let returned = Returned::nothing(&order);
/// let plan = order.plan_return(&shipment, &returned, &ReturnRequest::default(), false).unwrap();
/// let created = Return::created(shipment.id(), &plan);
/// assert_eq!(created.refund_state(), RefundState::None);
/// // Asking for the refund holds its amount against the shipment until the provider answers.
/// let RefundStart::Started(pending) = created
///     .request_refund(&order, &shipment, &returned, &Providers::any()).unwrap()
/// else { unreachable!() };
/// assert_eq!(pending.held().to_string(), "499.00");
/// let refunded = pending.settle_refund(true).unwrap();
/// assert!(refunded.completed());
/// assert_eq!(refunded.refunded().to_string(), "499.00");
/// // Never twice.
/// assert_eq!(refunded.request_refund(&order, &shipment, &returned, &Providers::any()),
///     Ok(RefundStart::AlreadyRefunded));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Return {
    shipment: ShipmentId,
    lines: Vec<ShipmentLine>,
    refund: Money,
    refund_state: RefundState,
    completed: bool,
}

/// What asking for a return's refund decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundStart {
    /// Refunded already: nothing to send, never refunded twice.
    AlreadyRefunded,
    /// The return with its refund pending: its amount is now held against the shipment.
    Started(Return),
}

impl Return {
    /// A new return as planned: no refund asked yet, not completed.
    pub fn created(shipment: ShipmentId, plan: &ReturnPlan) -> Return {
        Return {
            shipment,
            lines: plan.lines.clone(),
            refund: plan.refund,
            refund_state: RefundState::None,
            completed: false,
        }
    }

    /// A return as a store kept it. Refused when its refund is negative.
    pub fn kept(
        shipment: ShipmentId,
        lines: Vec<ShipmentLine>,
        refund: Money,
        refund_state: RefundState,
        completed: bool,
    ) -> Result<Return, ReturnError> {
        if refund.minor() < 0 {
            return Err(ReturnError::DoesNotFit(format!(
                "a return of shipment {shipment} refunding {refund}"
            )));
        }
        Ok(Return {
            shipment,
            lines,
            refund,
            refund_state,
            completed,
        })
    }

    /// The shipment it returns from.
    pub fn shipment(&self) -> ShipmentId {
        self.shipment
    }

    /// Lines and quantities returned.
    pub fn lines(&self) -> &[ShipmentLine] {
        &self.lines
    }

    /// What it refunds.
    pub fn refund(&self) -> Money {
        self.refund
    }

    /// Where its refund stands.
    pub fn refund_state(&self) -> RefundState {
        self.refund_state
    }

    /// Whether it is completed.
    pub fn completed(&self) -> bool {
        self.completed
    }

    /// The money it holds against its shipment: its refund while pending, needing review or
    /// refunded; nothing otherwise.
    pub fn held(&self) -> Money {
        if self.refund_state.holds_money() {
            self.refund
        } else {
            Money::zero(self.refund.currency())
        }
    }

    /// The money the provider refunded for it.
    pub fn refunded(&self) -> Money {
        if self.refund_state == RefundState::Refunded {
            self.refund
        } else {
            Money::zero(self.refund.currency())
        }
    }

    /// Asks for its refund: nothing when refunded already; refused while one is in flight, when
    /// the order's provider is not among `providers`, or when the amount no longer fits what
    /// the shipment still has to refund (`returned` is what the shipment's returns hold now;
    /// this one holds nothing while its refund is not asked for or declined).
    pub fn request_refund(
        &self,
        order: &Order,
        shipment: &Shipment,
        returned: &Returned,
        providers: &Providers,
    ) -> Result<RefundStart, ReturnError> {
        if shipment.id() != self.shipment || self.shipment.order != order.id() {
            return Err(ReturnError::DoesNotFit(format!(
                "a return of shipment {} checked against shipment {} of order {}",
                self.shipment,
                shipment.id(),
                order.id()
            )));
        }
        if self.refund_state == RefundState::Refunded {
            return Ok(RefundStart::AlreadyRefunded);
        }
        let pending = self.refund_state.on(RefundEvent::Requested)?;
        let payment = order.payment().ok_or(ReturnError::NoPayment)?;
        if !providers.allows(&payment.provider) {
            return Err(ReturnError::ProviderNotEnabled {
                provider: payment.provider.clone(),
                enabled: providers.describe(),
            });
        }
        let captured = shipment
            .capture_amount()
            .filter(|_| shipment.state() == ShipmentState::Captured)
            .ok_or(ReturnError::NotCaptured(shipment.id()))?;
        let refundable = captured.minus(returned.refunded())?;
        if self.refund.minor() > refundable.minor() {
            return Err(ReturnError::ExceedsRefundable {
                asked: self.refund,
                refundable,
            });
        }
        Ok(RefundStart::Started(Return {
            refund_state: pending,
            ..self.clone()
        }))
    }

    /// The provider's answer to its pending refund: refunded (the return is completed) or
    /// declined (its amount is released; it may be asked again).
    pub fn settle_refund(&self, refunded: bool) -> Result<Return, ReturnError> {
        let event = if refunded {
            RefundEvent::Succeeded
        } else {
            RefundEvent::Declined
        };
        let state = self.refund_state.on(event)?;
        Ok(Return {
            refund_state: state,
            completed: self.completed || state == RefundState::Refunded,
            ..self.clone()
        })
    }

    /// The provider accepted its refund and is still settling it: the refund stays pending
    /// (one that needed review no longer does), holds its amount, and the return is not
    /// completed until the provider's final answer ([`Return::settle_refund`]), which may
    /// still be a decline.
    ///
    /// ```
    /// use consign_domain::{Currency, Money, OrderId, RefundState, Return, ReturnError, ShipmentId};
    /// let sek: Currency = "SEK".parse().unwrap();
    /// let shipment = ShipmentId { order: OrderId(1), number: 1 };
    /// let refund = Money::from_minor(19_900, sek);
    /// let pending = Return::kept(shipment, Vec::new(), refund, RefundState::Pending, false).unwrap();
    /// let accepted = pending.refund_accepted().unwrap();
    /// assert_eq!(accepted.refund_state(), RefundState::Pending);
    /// assert!(!accepted.completed());
    /// let refunded = accepted.settle_refund(true).unwrap();
    /// assert_eq!(
    ///     refunded.refund_accepted(),
    ///     Err(ReturnError::RefundNotDue("refunded"))
    /// );
    /// ```
    pub fn refund_accepted(&self) -> Result<Return, ReturnError> {
        let state = self.refund_state.on(RefundEvent::Accepted)?;
        Ok(Return {
            refund_state: state,
            ..self.clone()
        })
    }

    /// Whether an operator may settle the refund of a return in `state` from what the
    /// provider's dashboard shows: only one flagged for review may, as for captures.
    ///
    /// ```
    /// use consign_domain::{RefundState, Return, ReturnError};
    /// assert!(Return::check_settle_by_hand(RefundState::NeedsReview).is_ok());
    /// assert_eq!(
    ///     Return::check_settle_by_hand(RefundState::Pending),
    ///     Err(ReturnError::RefundNotUnderReview("pending"))
    /// );
    /// assert!(Return::check_settle_by_hand(RefundState::Refunded).is_err());
    /// ```
    pub fn check_settle_by_hand(state: RefundState) -> Result<(), ReturnError> {
        if state == RefundState::NeedsReview {
            Ok(())
        } else {
            Err(ReturnError::RefundNotUnderReview(state.as_str()))
        }
    }

    /// One more pass without the provider's answer; after `review_after` it needs review.
    pub fn refund_unknown(&self, passes: u32, review_after: u32) -> Result<Return, ReturnError> {
        let state = self.refund_state.on(RefundEvent::Unknown {
            passes,
            review_after,
        })?;
        Ok(Return {
            refund_state: state,
            ..self.clone()
        })
    }

    /// Checks an update's requests together, before any of them is carried out: a refund
    /// completes the return, so a refund asked for with the return set back to pending is
    /// refused ([`ReturnError::RefundedStaysCompleted`]) before any money moves. Carried out in
    /// turn, the refund would be sent and the update then refused, its answer hiding the refund.
    ///
    /// ```
    /// use consign_domain::{Return, ReturnError};
    /// assert_eq!(Return::check_update(Some(false), true), Err(ReturnError::RefundedStaysCompleted));
    /// assert_eq!(Return::check_update(Some(true), true), Ok(()));
    /// assert_eq!(Return::check_update(Some(false), false), Ok(()));
    /// assert_eq!(Return::check_update(None, true), Ok(()));
    /// ```
    pub fn check_update(completed: Option<bool>, refund: bool) -> Result<(), ReturnError> {
        if refund && completed == Some(false) {
            return Err(ReturnError::RefundedStaysCompleted);
        }
        Ok(())
    }

    /// Sets it completed or pending; a refunded return stays completed.
    pub fn set_completed(&self, completed: bool) -> Result<Return, ReturnError> {
        if !completed && self.refund_state == RefundState::Refunded {
            return Err(ReturnError::RefundedStaysCompleted);
        }
        Ok(Return {
            completed,
            ..self.clone()
        })
    }
}

/// Where a return's refund stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefundState {
    /// No refund asked for.
    None,
    /// Asked of the provider; its answer is not known yet.
    Pending,
    /// Refunded.
    Refunded,
    /// Declined by the provider; it may be asked again.
    Declined,
    /// Still unknown after many recovery passes: an operator should look.
    NeedsReview,
}

/// What happens to a return's refund.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefundEvent {
    /// The refund is asked of the provider (a new attempt).
    Requested,
    /// The provider refunded.
    Succeeded,
    /// The provider declined.
    Declined,
    /// The provider accepted the refund and is still settling it (Stripe's `pending`): no
    /// money has moved yet, and it may still fail. The refund stays pending, and one that
    /// needed review no longer does (its outcome is being decided at the provider).
    Accepted,
    /// The outcome is still unknown; after many passes it needs review.
    Unknown {
        /// Passes without an outcome.
        passes: u32,
        /// Passes after which it needs review.
        review_after: u32,
    },
}

impl RefundState {
    /// The state after `event`, or `Err` with the state's name when the event does not apply
    /// (a refunded return is never refunded again; a pending one waits for its outcome).
    ///
    /// ```
    /// use consign_domain::{RefundEvent::*, RefundState};
    /// assert_eq!(RefundState::None.on(Requested), Ok(RefundState::Pending));
    /// assert_eq!(RefundState::Pending.on(Declined), Ok(RefundState::Declined));
    /// assert_eq!(RefundState::Declined.on(Requested), Ok(RefundState::Pending));
    /// assert!(RefundState::Refunded.on(Requested).is_err());
    /// // Accepted by the provider and still settling: pending, never refunded yet.
    /// assert_eq!(RefundState::NeedsReview.on(Accepted), Ok(RefundState::Pending));
    /// assert!(RefundState::Refunded.on(Accepted).is_err());
    /// ```
    pub fn on(self, event: RefundEvent) -> Result<RefundState, ReturnError> {
        use RefundState::*;
        match (self, event) {
            (None | Declined, RefundEvent::Requested) => Ok(Pending),
            (Pending | NeedsReview, RefundEvent::Succeeded) => Ok(Refunded),
            (Pending | NeedsReview, RefundEvent::Declined) => Ok(Declined),
            (Pending | NeedsReview, RefundEvent::Accepted) => Ok(Pending),
            (
                Pending | NeedsReview,
                RefundEvent::Unknown {
                    passes,
                    review_after,
                },
            ) => Ok(if passes >= review_after {
                NeedsReview
            } else {
                Pending
            }),
            (state, _) => Err(ReturnError::RefundNotDue(state.as_str())),
        }
    }

    /// Whether its amount counts against what the shipment can still refund.
    pub fn holds_money(self) -> bool {
        matches!(
            self,
            RefundState::Pending | RefundState::Refunded | RefundState::NeedsReview
        )
    }

    /// The state a name stands for ([`RefundState::as_str`]'s inverse).
    pub fn parse(name: &str) -> Option<RefundState> {
        [
            RefundState::None,
            RefundState::Pending,
            RefundState::Refunded,
            RefundState::Declined,
            RefundState::NeedsReview,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }

    /// The name clients and stores use: `none`, `pending`, `refunded`, `declined`, `needsReview`.
    pub const fn as_str(self) -> &'static str {
        match self {
            RefundState::None => "none",
            RefundState::Pending => "pending",
            RefundState::Refunded => "refunded",
            RefundState::Declined => "declined",
            RefundState::NeedsReview => "needsReview",
        }
    }
}
