//! Shipments: what a request asks for, how the order plans it, and the capture rule.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::error::ShipmentError;
use crate::ids::{LineId, ShipmentId};
use crate::money::Money;
use crate::order::Order;

/// Units of one order line in a shipment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipmentLine {
    /// The order line.
    pub line_id: LineId,
    /// Units of it, at least 1.
    pub quantity: u32,
}

/// What a create-shipment request asks of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipmentRequest {
    /// Lines and quantities to ship.
    pub lines: Vec<ShipmentLine>,
    /// Capture the shipment's amount now (Centra's default) or leave it uncaptured.
    pub capture: bool,
    /// Centra's `deductPreviousCosts`: leave the shipping fee out of this capture.
    pub deduct_previous_costs: bool,
}

/// The money a shipment captures, decided when its capture starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapturePlan {
    /// The amount to capture.
    pub amount: Money,
    /// Whether the amount includes the order's shipping fee.
    pub carries_shipping_fee: bool,
    /// Whether, with this capture, every unit of the order is in capture: its amount is then
    /// the exact remainder of the order total.
    pub completes_order: bool,
}

/// A validated shipment, ready to be reserved: its number, lines and capture (if any).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipmentPlan {
    /// The id the shipment will have.
    pub id: ShipmentId,
    /// Lines and quantities.
    pub lines: Vec<ShipmentLine>,
    /// The capture to make, or `None` for `capture: false`.
    pub capture: Option<CapturePlan>,
}

/// Where a shipment stands with its money.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ShipmentState {
    /// Created with `capture: false`; editable until captured.
    Uncaptured,
    /// Reserved; its capture has been (or is being) asked of the provider.
    CapturePending,
    /// Captured by the provider.
    Captured,
    /// Its capture was declined: units released, never listed, number not reused.
    Voided,
    /// Deleted while uncaptured: units released, never listed, number not reused.
    Deleted,
}

/// What happens to a shipment's money.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ShipmentEvent {
    /// Its capture was asked of the provider.
    CaptureStarted,
    /// The provider captured it.
    CaptureSucceeded,
    /// The provider definitely declined it.
    CaptureDeclined,
    /// It was deleted.
    Delete,
    /// The capture of a shipment created uncaptured was declined: it stays uncaptured.
    CaptureFailed,
}

/// A transition the state machine does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a shipment in state {from:?} cannot take {event:?}")]
pub struct IllegalTransition {
    /// The state it was in.
    pub from: ShipmentState,
    /// The event refused.
    pub event: ShipmentEvent,
}

impl ShipmentState {
    /// The state after `event`, or an error for a transition the workflow forbids.
    ///
    /// ```
    /// use consign_domain::{ShipmentEvent::*, ShipmentState::*};
    /// assert_eq!(Uncaptured.on(CaptureStarted), Ok(CapturePending));
    /// assert_eq!(CapturePending.on(CaptureDeclined), Ok(Voided));
    /// assert!(Captured.on(Delete).is_err());
    /// ```
    pub fn on(self, event: ShipmentEvent) -> Result<ShipmentState, IllegalTransition> {
        use ShipmentEvent::*;
        use ShipmentState::*;
        match (self, event) {
            (Uncaptured, CaptureStarted) => Ok(CapturePending),
            (CapturePending, CaptureSucceeded) => Ok(Captured),
            (CapturePending, CaptureDeclined) => Ok(Voided),
            (CapturePending, CaptureFailed) => Ok(Uncaptured),
            (Uncaptured, Delete) => Ok(Deleted),
            (from, event) => Err(IllegalTransition { from, event }),
        }
    }

    /// Whether the shipment holds units and is listed (not voided or deleted).
    pub fn is_live(self) -> bool {
        !matches!(self, ShipmentState::Voided | ShipmentState::Deleted)
    }

    /// The stable name stores keep: `uncaptured`, `pending`, `captured`, `voided`, `deleted`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ShipmentState::Uncaptured => "uncaptured",
            ShipmentState::CapturePending => "pending",
            ShipmentState::Captured => "captured",
            ShipmentState::Voided => "voided",
            ShipmentState::Deleted => "deleted",
        }
    }

    /// Reads a name written by [`ShipmentState::as_str`].
    pub fn from_name(name: &str) -> Option<ShipmentState> {
        [
            ShipmentState::Uncaptured,
            ShipmentState::CapturePending,
            ShipmentState::Captured,
            ShipmentState::Voided,
            ShipmentState::Deleted,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
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
    /// # let line = |id, price: &str, quantity| OrderLine { line_id: LineId(id), sku: "S".into(),
    /// #     name: "N".into(), unit_price: Money::parse(price, sek).unwrap(), tax_rate: TaxRate(2500),
    /// #     quantity, allocated: 0, in_capture: 0 };
    /// let mut order = Order {
    ///     id: OrderId(83651), currency: sek,
    ///     lines: vec![line(1, "249.50", 2), line(2, "199.00", 1)],
    ///     shipping_fee: Money::parse("49.00", sek).unwrap(),
    ///     payment: Some(PaymentAuthorization { provider: "sandbox".into(),
    ///         reference: "auth-1".into(), amount: Money::parse("747.00", sek).unwrap() }),
    ///     committed: Money::zero(sek), shipping_fee_committed: false, next_shipment_number: 1,
    /// };
    /// let first = ShipmentRequest { capture: true, deduct_previous_costs: false,
    ///     lines: vec![ShipmentLine { line_id: LineId(1), quantity: 1 }] };
    /// let plan = order.plan_shipment(&first).unwrap();
    /// assert_eq!(plan.id.to_string(), "83651-1");
    /// // One unit plus the shipping fee, which the first captured shipment carries.
    /// assert_eq!(plan.capture.unwrap().amount.to_string(), "298.50");
    /// order.reserve(&plan);
    /// let rest = ShipmentRequest { lines: vec![ShipmentLine { line_id: LineId(1), quantity: 1 },
    ///     ShipmentLine { line_id: LineId(2), quantity: 1 }], ..first };
    /// let plan = order.plan_shipment(&rest).unwrap();
    /// // The shipment that completes the order captures the exact remainder.
    /// assert_eq!(plan.capture.unwrap().amount.to_string(), "448.50");
    /// ```
    pub fn plan_shipment(&self, request: &ShipmentRequest) -> Result<ShipmentPlan, ShipmentError> {
        self.check_lines(&request.lines)?;
        let capture = if request.capture {
            Some(self.plan_capture(&request.lines, request.deduct_previous_costs)?)
        } else {
            None
        };
        Ok(ShipmentPlan {
            id: ShipmentId {
                order: self.id,
                number: self.next_shipment_number,
            },
            lines: request.lines.clone(),
            capture,
        })
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
            let line = self
                .line(wanted.line_id)
                .ok_or(ShipmentError::UnknownLine {
                    order: self.id,
                    line: wanted.line_id,
                })?;
            if wanted.quantity > line.shippable() {
                return Err(ShipmentError::NotEnoughShippable {
                    line: line.line_id,
                    requested: wanted.quantity,
                    shippable: line.shippable(),
                    ordered: line.quantity,
                });
            }
        }
        Ok(())
    }

    /// The capture rule: what a shipment of `lines` captures when its capture starts now.
    ///
    /// The price of its units, plus the shipping fee if no captured or capture-pending shipment
    /// carries it yet and `deduct_previous_costs` is not set. When these units make the order
    /// fully in capture, the amount is instead exactly the order total minus what is already
    /// committed, so the captures of a fully shipped order add up to its total to the minor unit.
    pub fn plan_capture(
        &self,
        lines: &[ShipmentLine],
        deduct_previous_costs: bool,
    ) -> Result<CapturePlan, ShipmentError> {
        let payment = self
            .payment
            .as_ref()
            .ok_or(ShipmentError::NoPaymentAuthorization)?;
        let plan = self.preview_capture(lines, deduct_previous_costs)?;
        if self.committed.plus(plan.amount)?.minor() > payment.amount.minor() {
            return Err(ShipmentError::ExceedsAuthorization);
        }
        Ok(plan)
    }

    /// What [`Order::plan_capture`] would capture for `lines` now, without the authorisation
    /// checks: the amount a not-yet-captured shipment is listed with.
    pub fn preview_capture(
        &self,
        lines: &[ShipmentLine],
        deduct_previous_costs: bool,
    ) -> Result<CapturePlan, ShipmentError> {
        let completes_order = self.lines.iter().all(|line| {
            let here: u32 = lines
                .iter()
                .filter(|l| l.line_id == line.line_id)
                .map(|l| l.quantity)
                .sum();
            line.in_capture + here == line.quantity
        });
        let carries_shipping_fee = if completes_order {
            !self.shipping_fee_committed
        } else {
            !self.shipping_fee_committed && !deduct_previous_costs
        };
        let amount = if completes_order {
            self.total()?.minus(self.committed)?
        } else {
            let units = lines
                .iter()
                .try_fold(Money::zero(self.currency), |sum, l| {
                    let line = self.line(l.line_id).ok_or(ShipmentError::UnknownLine {
                        order: self.id,
                        line: l.line_id,
                    })?;
                    Ok::<_, ShipmentError>(sum.plus(line.unit_price.times(l.quantity)?)?)
                })?;
            if carries_shipping_fee {
                units.plus(self.shipping_fee)?
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

    /// Applies a plan: its units become allocated and, when it captures, in capture.
    pub fn reserve(&mut self, plan: &ShipmentPlan) {
        for l in &plan.lines {
            if let Some(line) = self.line_mut(l.line_id) {
                line.allocated += l.quantity;
            }
        }
        self.next_shipment_number = plan.id.number + 1;
        if let Some(capture) = &plan.capture {
            self.begin_capture(&plan.lines, capture);
        }
    }

    /// Moves the units of an allocated shipment into capture and commits its amount.
    pub fn begin_capture(&mut self, lines: &[ShipmentLine], capture: &CapturePlan) {
        for l in lines {
            if let Some(line) = self.line_mut(l.line_id) {
                line.in_capture += l.quantity;
            }
        }
        self.committed = Money::from_minor(
            self.committed.minor() + capture.amount.minor(),
            self.currency,
        );
        self.shipping_fee_committed |= capture.carries_shipping_fee;
    }

    /// Releases a shipment that is voided (declined) or deleted: its units become shippable
    /// again and its capture, if it had one, is no longer committed.
    pub fn release(&mut self, lines: &[ShipmentLine], capture: Option<&CapturePlan>) {
        for l in lines {
            if let Some(line) = self.line_mut(l.line_id) {
                line.allocated -= l.quantity;
                if capture.is_some() {
                    line.in_capture -= l.quantity;
                }
            }
        }
        if let Some(capture) = capture {
            self.committed = Money::from_minor(
                self.committed.minor() - capture.amount.minor(),
                self.currency,
            );
            if capture.carries_shipping_fee {
                self.shipping_fee_committed = false;
            }
        }
    }
}

impl Order {
    /// Validates new quantities for an uncaptured shipment's lines and answers its lines after
    /// the change: each named line is set to its quantity (0 removes it), lines not named are
    /// kept. Increases must fit what is still shippable; a shipment left without lines is
    /// refused (delete it instead). Nothing is changed.
    ///
    /// ```
    /// # use consign_domain::*;
    /// # let sek: Currency = "SEK".parse().unwrap();
    /// # let order = Order { id: OrderId(1), currency: sek, lines: vec![OrderLine { line_id: LineId(7),
    /// #     sku: "S".into(), name: "N".into(), unit_price: Money::from_minor(100, sek),
    /// #     tax_rate: TaxRate(2500), quantity: 3, allocated: 1, in_capture: 0 }],
    /// #     shipping_fee: Money::zero(sek), payment: None, committed: Money::zero(sek),
    /// #     shipping_fee_committed: false, next_shipment_number: 2 };
    /// let current = [ShipmentLine { line_id: LineId(7), quantity: 1 }];
    /// let changed = order.plan_line_changes(&current, &[ShipmentLine { line_id: LineId(7), quantity: 3 }]).unwrap();
    /// assert_eq!(changed, vec![ShipmentLine { line_id: LineId(7), quantity: 3 }]);
    /// assert!(order.plan_line_changes(&current, &[ShipmentLine { line_id: LineId(7), quantity: 4 }]).is_err());
    /// ```
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
            let line = self
                .line(change.line_id)
                .ok_or(ShipmentError::UnknownLine {
                    order: self.id,
                    line: change.line_id,
                })?;
            let held = current
                .iter()
                .find(|l| l.line_id == change.line_id)
                .map_or(0, |l| l.quantity);
            let available = line.shippable() + held;
            if change.quantity > available {
                return Err(ShipmentError::NotEnoughShippable {
                    line: line.line_id,
                    requested: change.quantity,
                    shippable: available,
                    ordered: line.quantity,
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

    /// Moves a shipment's allocation from `before` to `after` (an uncaptured shipment's edit).
    pub fn reallocate(&mut self, before: &[ShipmentLine], after: &[ShipmentLine]) {
        for l in before {
            if let Some(line) = self.line_mut(l.line_id) {
                line.allocated -= l.quantity;
            }
        }
        for l in after {
            if let Some(line) = self.line_mut(l.line_id) {
                line.allocated += l.quantity;
            }
        }
    }
}
