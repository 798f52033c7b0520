//! Planning a new shipment: what a request asks for, the checks against the order, and the
//! capture rule that makes partial captures add up exactly to the order total.

use std::collections::HashSet;

use crate::error::ShipmentError;
use crate::ids::{LineId, ShipmentId};
use crate::money::Money;
use crate::order::{LineMove, Order};
use crate::state::ShipmentState;

/// Units of one order line in a shipment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShipmentLine {
    /// The order line.
    pub line_id: LineId,
    /// Units of it, at least 1.
    pub quantity: u32,
}

/// What a create-shipment request asks of an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShipmentRequest {
    /// Lines and quantities to ship.
    pub lines: Vec<ShipmentLine>,
    /// Capture the shipment's amount now (Centra's default) or leave it uncaptured.
    pub capture: bool,
    /// Centra's `deductPreviousCosts`: leave the shipping fee out of this capture.
    pub deduct_previous_costs: bool,
}

/// The money a shipment captures, decided when its capture starts ([`Order::plan_capture`]);
/// only the order's planning makes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapturePlan {
    pub(crate) amount: Money,
    pub(crate) carries_shipping_fee: bool,
    pub(crate) completes_order: bool,
}

impl CapturePlan {
    /// The amount to capture.
    pub fn amount(&self) -> Money {
        self.amount
    }

    /// Whether the amount includes the order's shipping fee.
    pub fn carries_shipping_fee(&self) -> bool {
        self.carries_shipping_fee
    }

    /// Whether, with this capture, every unit of the order is in capture: its amount is then
    /// the exact remainder of the order total.
    pub fn completes_order(&self) -> bool {
        self.completes_order
    }
}

/// Whether a capture's lines were checked before it is planned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LinesChecked {
    /// By the caller, against a stricter bound (what is still shippable).
    Already,
    /// Not yet: checked against what is out of capture.
    Here,
}

/// The payment providers captures may use here: an instance enables some gateways, and an
/// order whose authorisation is held by another provider is refused before anything changes.
///
/// ```
/// use consign_domain::Providers;
/// let stripe_only = Providers::only(["stripe"]);
/// assert!(stripe_only.allows("stripe"));
/// assert!(!stripe_only.allows("sandbox"));
/// assert!(Providers::any().allows("sandbox"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Providers {
    only: Option<std::sync::Arc<[String]>>,
}

impl Providers {
    /// Every provider (a team that captures elsewhere, or a test).
    pub fn any() -> Providers {
        Providers { only: None }
    }

    /// Only these providers.
    pub fn only<I, S>(names: I) -> Providers
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Providers {
            only: Some(names.into_iter().map(Into::into).collect()),
        }
    }

    /// Whether a capture may use `provider`.
    pub fn allows(&self, provider: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|names| names.iter().any(|n| n == provider))
    }

    /// The enabled providers, comma-separated (`any` when every provider is allowed).
    pub fn describe(&self) -> String {
        match &self.only {
            None => "any".to_owned(),
            Some(names) if names.is_empty() => "none".to_owned(),
            Some(names) => names.join(", "),
        }
    }
}

/// A validated shipment, ready to be reserved: its number, lines and capture (if any). Only
/// [`Order::plan_shipment`] makes one, and [`Order::reserve`] takes it only on the counters it
/// was planned on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShipmentPlan {
    pub(crate) id: ShipmentId,
    pub(crate) lines: Vec<ShipmentLine>,
    pub(crate) capture: Option<CapturePlan>,
    pub(crate) deduct_previous_costs: bool,
}

impl ShipmentPlan {
    /// The id the shipment will have.
    pub fn id(&self) -> ShipmentId {
        self.id
    }

    /// Lines and quantities.
    pub fn lines(&self) -> &[ShipmentLine] {
        &self.lines
    }

    /// The capture to make, or `None` for `capture: false`.
    pub fn capture(&self) -> Option<CapturePlan> {
        self.capture
    }

    /// The state the new shipment starts in: capture-pending when it captures, else uncaptured.
    pub fn state(&self) -> ShipmentState {
        if self.capture.is_some() {
            ShipmentState::CapturePending
        } else {
            ShipmentState::Uncaptured
        }
    }

    /// How reserving it moves the order's lines: its units become allocated and, when it
    /// captures, in capture.
    pub fn line_moves(&self) -> Vec<LineMove> {
        let captures = self.capture.is_some();
        self.lines
            .iter()
            .map(|l| LineMove {
                line_id: l.line_id,
                allocated: i64::from(l.quantity),
                in_capture: if captures { i64::from(l.quantity) } else { 0 },
            })
            .collect()
    }
}

impl Order {
    /// Validates a create-shipment request against this order and plans the shipment.
    ///
    /// Every line must be on the order with at least one unit and no more than is still
    /// shippable; with capture on, the order needs a payment authorisation and the capture is
    /// planned by [`Order::plan_capture`]. Nothing is changed: apply the plan with
    /// [`Order::reserve`].
    ///
    /// ```
    /// # use consign_domain::*;
    /// # let sek: Currency = "SEK".parse().unwrap();
    /// # let money = |text| Money::parse(text, sek).unwrap();
    /// let mut order = Order::new(OrderId(83651), sek,
    ///     vec![OrderLine::new(LineId(1), "TSHIRT-M", "T-shirt", money("249.50"), TaxRate(2500), 2),
    ///          OrderLine::new(LineId(2), "CAP", "Cap", money("199.00"), TaxRate(2500), 1)],
    ///     money("49.00"),
    ///     Some(PaymentAuthorization { provider: "sandbox".into(), reference: "auth-1".into(), amount: money("747.00") }),
    /// ).unwrap();
    /// let first = ShipmentRequest { capture: true, deduct_previous_costs: false,
    ///     lines: vec![ShipmentLine { line_id: LineId(1), quantity: 1 }] };
    /// let plan = order.plan_shipment(&first).unwrap();
    /// assert_eq!(plan.id().to_string(), "83651-1");
    /// // One unit plus the shipping fee, which the first captured shipment carries.
    /// assert_eq!(plan.capture().unwrap().amount().to_string(), "298.50");
    /// order.reserve(&plan).unwrap();
    /// // More than is left is refused with the text a Centra client reads.
    /// let too_many = ShipmentRequest { lines: vec![ShipmentLine { line_id: LineId(1), quantity: 2 }], ..first.clone() };
    /// assert_eq!(order.plan_shipment(&too_many).unwrap_err().to_string(),
    ///     "line 1: requested 2, but only 1 of 2 can still be shipped");
    /// let rest = ShipmentRequest { lines: vec![ShipmentLine { line_id: LineId(1), quantity: 1 },
    ///     ShipmentLine { line_id: LineId(2), quantity: 1 }], ..first };
    /// let plan = order.plan_shipment(&rest).unwrap();
    /// // The shipment that completes the order captures the exact remainder.
    /// assert_eq!(plan.capture().unwrap().amount().to_string(), "448.50");
    /// ```
    pub fn plan_shipment(&self, request: &ShipmentRequest) -> Result<ShipmentPlan, ShipmentError> {
        self.plan_shipment_with(request, &Providers::any())
    }

    /// [`Order::plan_shipment`] where only `providers` may capture: a capturing request on an
    /// order whose authorisation another provider holds is refused.
    pub fn plan_shipment_with(
        &self,
        request: &ShipmentRequest,
        providers: &Providers,
    ) -> Result<ShipmentPlan, ShipmentError> {
        self.check_lines(&request.lines)?;
        let capture = if request.capture {
            // The lines were checked above, against what is still shippable (a stricter
            // bound than what is out of capture): not checked a second time.
            Some(self.authorized_capture(
                &request.lines,
                request.deduct_previous_costs,
                providers,
                LinesChecked::Already,
            )?)
        } else {
            None
        };
        Ok(ShipmentPlan {
            id: ShipmentId {
                order: self.id(),
                number: self.next_shipment_number(),
            },
            lines: request.lines.clone(),
            capture,
            deduct_previous_costs: request.deduct_previous_costs,
        })
    }

    /// Applies a plan made by [`Order::plan_shipment`] on this order's current counters: its
    /// units become allocated (and in capture when it captures), its amount committed, and the
    /// next shipment gets the next number. A plan that no longer fits (made on other counters:
    /// another number, units no longer there, or a capture these counters would plan
    /// otherwise) is refused and changes nothing.
    ///
    /// ```
    /// # use consign_domain::*;
    /// # let sek: Currency = "SEK".parse().unwrap();
    /// # let money = |text| Money::parse(text, sek).unwrap();
    /// let order = Order::new(OrderId(7), sek,
    ///     vec![OrderLine::new(LineId(1), "S", "N", money("100.00"), TaxRate(2500), 2)],
    ///     money("0.00"),
    ///     Some(PaymentAuthorization { provider: "sandbox".into(), reference: "a".into(), amount: money("200.00") }),
    /// ).unwrap();
    /// let one = ShipmentRequest { capture: true, deduct_previous_costs: false,
    ///     lines: vec![ShipmentLine { line_id: LineId(1), quantity: 1 }] };
    /// let plan = order.plan_shipment(&one).unwrap();
    /// let mut reserved = order.clone();
    /// reserved.reserve(&plan).unwrap();
    /// // Planned before the first was reserved: the number is taken, refused.
    /// assert!(matches!(reserved.reserve(&plan), Err(ShipmentError::DoesNotFit(_))));
    /// assert_eq!(reserved.committed().to_string(), "100.00");
    /// ```
    pub fn reserve(&mut self, plan: &ShipmentPlan) -> Result<(), ShipmentError> {
        if plan.id.order != self.id() || plan.id.number != self.next_shipment_number() {
            return Err(ShipmentError::DoesNotFit(format!(
                "plan for shipment {} on order {} expecting number {}",
                plan.id,
                self.id(),
                self.next_shipment_number()
            )));
        }
        let next = plan
            .id
            .number
            .checked_add(1)
            .filter(|next| *next <= ShipmentId::MAX_NUMBER)
            .ok_or_else(|| {
                ShipmentError::DoesNotFit(format!(
                    "order {} has no shipment number left after {}",
                    self.id(),
                    plan.id.number
                ))
            })?;
        if let Some(planned) = plan.capture {
            // The capture as these counters plan it: what is committed, and whether the fee
            // was taken, may have moved since the plan was made.
            let now = self.plan_capture(&plan.lines, plan.deduct_previous_costs)?;
            if now != planned {
                return Err(ShipmentError::DoesNotFit(format!(
                    "shipment {} was planned to capture {}; these counters capture {}",
                    plan.id, planned.amount, now.amount
                )));
            }
        }
        let (committed, fee) = match &plan.capture {
            Some(c) => (c.amount.minor(), c.carries_shipping_fee.then_some(true)),
            None => (0, None),
        };
        self.apply_moves(&plan.line_moves(), committed, fee, Some(next))
    }

    fn check_lines(&self, lines: &[ShipmentLine]) -> Result<(), ShipmentError> {
        if lines.is_empty() {
            return Err(ShipmentError::NoProducts);
        }
        let mut seen = HashSet::with_capacity(lines.len());
        for wanted in lines {
            if !seen.insert(wanted.line_id) {
                return Err(ShipmentError::DuplicateLine(wanted.line_id));
            }
            if wanted.quantity == 0 {
                return Err(ShipmentError::ZeroQuantity(wanted.line_id));
            }
            let line = self.known_line(wanted.line_id)?;
            if wanted.quantity > line.shippable() {
                return Err(ShipmentError::NotEnoughShippable {
                    line: line.line_id(),
                    requested: wanted.quantity,
                    shippable: line.shippable(),
                    ordered: line.quantity(),
                });
            }
        }
        Ok(())
    }

    fn check_capturable(&self, lines: &[ShipmentLine]) -> Result<(), ShipmentError> {
        for (i, wanted) in lines.iter().enumerate() {
            if lines[..i].iter().any(|l| l.line_id == wanted.line_id) {
                return Err(ShipmentError::DuplicateLine(wanted.line_id));
            }
            if wanted.quantity == 0 {
                return Err(ShipmentError::ZeroQuantity(wanted.line_id));
            }
            let line = self.known_line(wanted.line_id)?;
            let out_of_capture = line.quantity().saturating_sub(line.in_capture());
            if wanted.quantity > out_of_capture {
                return Err(ShipmentError::NotEnoughShippable {
                    line: line.line_id(),
                    requested: wanted.quantity,
                    shippable: out_of_capture,
                    ordered: line.quantity(),
                });
            }
        }
        Ok(())
    }

    pub(crate) fn known_line(&self, id: LineId) -> Result<&crate::OrderLine, ShipmentError> {
        self.line(id).ok_or(ShipmentError::UnknownLine {
            order: self.id(),
            line: id,
        })
    }

    /// The capture rule: what a shipment of `lines` captures when its capture starts now.
    ///
    /// The price of its units, plus the shipping fee if no captured or capture-pending shipment
    /// carries it yet and `deduct_previous_costs` is not set. When these units make the order
    /// fully in capture, the amount is instead exactly the order total minus what is already
    /// committed, so the captures of a fully shipped order add up to its total to the minor
    /// unit. Refused without an authorisation, or when the capture would exceed it.
    ///
    /// ```
    /// # use consign_domain::*;
    /// # let sek: Currency = "SEK".parse().unwrap();
    /// # let money = |text| Money::parse(text, sek).unwrap();
    /// // Three units at 33.33 and a fee of 0.01: 100.00 in all.
    /// let order = Order::new(OrderId(9), sek,
    ///     vec![OrderLine::new(LineId(1), "S", "N", money("33.33"), TaxRate(2500), 3)],
    ///     money("0.01"),
    ///     Some(PaymentAuthorization { provider: "sandbox".into(), reference: "a".into(), amount: money("100.00") }),
    /// ).unwrap();
    /// let one = [ShipmentLine { line_id: LineId(1), quantity: 1 }];
    /// let plan = order.plan_capture(&one, true).unwrap(); // deductPreviousCosts: no fee
    /// assert_eq!((plan.amount().to_string().as_str(), plan.carries_shipping_fee()), ("33.33", false));
    /// let all = [ShipmentLine { line_id: LineId(1), quantity: 3 }];
    /// let plan = order.plan_capture(&all, false).unwrap();
    /// assert!(plan.completes_order());
    /// assert_eq!(plan.amount().to_string(), "100.00");
    /// ```
    pub fn plan_capture(
        &self,
        lines: &[ShipmentLine],
        deduct_previous_costs: bool,
    ) -> Result<CapturePlan, ShipmentError> {
        self.plan_capture_with(lines, deduct_previous_costs, &Providers::any())
    }

    /// [`Order::plan_capture`] where only `providers` may capture.
    pub fn plan_capture_with(
        &self,
        lines: &[ShipmentLine],
        deduct_previous_costs: bool,
        providers: &Providers,
    ) -> Result<CapturePlan, ShipmentError> {
        self.authorized_capture(lines, deduct_previous_costs, providers, LinesChecked::Here)
    }

    /// [`Order::plan_capture_with`], its lines checked here unless the caller already did.
    fn authorized_capture(
        &self,
        lines: &[ShipmentLine],
        deduct_previous_costs: bool,
        providers: &Providers,
        checked: LinesChecked,
    ) -> Result<CapturePlan, ShipmentError> {
        let payment = self
            .payment()
            .ok_or(ShipmentError::NoPaymentAuthorization)?;
        if !providers.allows(&payment.provider) {
            return Err(ShipmentError::ProviderNotEnabled {
                provider: payment.provider.clone(),
                enabled: providers.describe(),
            });
        }
        if checked == LinesChecked::Here {
            self.check_capturable(lines)?;
        }
        let plan = self.capture_of(lines, deduct_previous_costs)?;
        if self.committed().plus(plan.amount)?.minor() > payment.amount.minor() {
            return Err(ShipmentError::ExceedsAuthorization);
        }
        Ok(plan)
    }

    /// What [`Order::plan_capture`] would capture for `lines` now, without the authorisation
    /// checks: the amount a not-yet-captured shipment is listed with.
    ///
    /// Each line must be on the order once, with at least one unit and no more than it has out
    /// of capture (the units of an uncaptured shipment are allocated to it, but not in capture).
    pub fn preview_capture(
        &self,
        lines: &[ShipmentLine],
        deduct_previous_costs: bool,
    ) -> Result<CapturePlan, ShipmentError> {
        self.check_capturable(lines)?;
        self.capture_of(lines, deduct_previous_costs)
    }

    /// The capture rule for lines already checked.
    fn capture_of(
        &self,
        lines: &[ShipmentLine],
        deduct_previous_costs: bool,
    ) -> Result<CapturePlan, ShipmentError> {
        let completes_order = self.lines().iter().all(|line| {
            let here: u64 = lines
                .iter()
                .filter(|l| l.line_id == line.line_id())
                .map(|l| u64::from(l.quantity))
                .sum();
            u64::from(line.in_capture()) + here == u64::from(line.quantity())
        });
        let fee_free = !self.shipping_fee_committed();
        let carries_shipping_fee = fee_free && (completes_order || !deduct_previous_costs);
        let amount = if completes_order {
            self.total()?.minus(self.committed())?
        } else {
            let units = lines
                .iter()
                .try_fold(Money::zero(self.currency()), |sum, l| {
                    let line = self.known_line(l.line_id)?;
                    Ok::<_, ShipmentError>(sum.plus(line.unit_price().times(l.quantity)?)?)
                })?;
            if carries_shipping_fee {
                units.plus(self.shipping_fee())?
            } else {
                units
            }
        };
        Ok(CapturePlan {
            amount,
            carries_shipping_fee,
            completes_order,
        })
    }

    /// Validates new quantities for an uncaptured shipment's lines and answers its lines after
    /// the change: each named line is set to its quantity (0 removes it), lines not named are
    /// kept. Increases must fit what is still shippable; a shipment left without lines is
    /// refused (delete it instead). Nothing is changed; [`crate::Shipment::update`] uses it.
    pub fn plan_line_changes(
        &self,
        current: &[ShipmentLine],
        changes: &[ShipmentLine],
    ) -> Result<Vec<ShipmentLine>, ShipmentError> {
        let mut seen = HashSet::with_capacity(changes.len());
        let mut result: Vec<ShipmentLine> = current.to_vec();
        for change in changes {
            if !seen.insert(change.line_id) {
                return Err(ShipmentError::DuplicateLine(change.line_id));
            }
            let line = self.known_line(change.line_id)?;
            let held = current
                .iter()
                .find(|l| l.line_id == change.line_id)
                .map_or(0, |l| l.quantity);
            let available = line.shippable().saturating_add(held);
            if change.quantity > available {
                return Err(ShipmentError::NotEnoughShippable {
                    line: line.line_id(),
                    requested: change.quantity,
                    shippable: available,
                    ordered: line.quantity(),
                });
            }
            result.retain(|l| l.line_id != change.line_id);
            if change.quantity > 0 {
                result.push(*change);
            }
        }
        if result.is_empty() {
            return Err(ShipmentError::EmptyShipment);
        }
        result.sort_by_key(|l| l.line_id);
        Ok(result)
    }
}
