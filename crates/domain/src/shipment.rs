//! A shipment and every change Consign makes to it. Each method goes through the state machine
//! ([`ShipmentState::on`]) and answers the [`ShipmentChange`] to persist, or the
//! [`ShipmentError`] a Centra client reads; none changes anything itself.

use std::collections::HashSet;

use crate::error::ShipmentError;
use crate::ids::{LineId, ShipmentId};
use crate::money::Money;
use crate::order::{LineMove, Order};
use crate::plan::{CapturePlan, Providers, ShipmentLine, ShipmentPlan};
use crate::state::{ShipmentEvent, ShipmentState};

/// A shipment's flags. They only move forward, except `needs_review`, which a settled capture
/// clears.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShipmentFlags {
    /// Good to go: the warehouse may pick it.
    pub good_to_go: bool,
    /// Sent to the customer.
    pub shipped: bool,
    /// Its capture stayed unknown through many recovery passes: an operator should look.
    pub needs_review: bool,
}

/// What complete-shipment asks for besides a capture: flags to set (`false` leaves a flag as
/// it is).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Completion {
    /// Set good to go.
    pub good_to_go: bool,
    /// Set shipped.
    pub shipped: bool,
}

/// A definite answer of the provider to a capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement {
    /// Captured.
    Captured,
    /// Declined.
    Declined,
}

/// Which capture a settlement answers: the one a shipment was created with (a decline voids the
/// shipment) or a later one of a shipment created uncaptured (a decline leaves it uncaptured).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureOrigin {
    /// Create shipment with capture on.
    AtCreation,
    /// Complete or capture shipment of an uncaptured shipment.
    Later,
}

/// What starting a capture decided.
// One is made per capture and used at once, never kept in bulk: boxing would only cost.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaptureStart {
    /// Captured already: nothing to do, and never captured twice.
    AlreadyCaptured,
    /// The capture to send, and the change that puts the shipment into capture.
    Started {
        /// The amount and whether it carries the fee and completes the order.
        plan: CapturePlan,
        /// The change to persist before the provider is called.
        change: ShipmentChange,
    },
}

/// A shipment: its lines, where its money stands, its flags and its capture.
///
/// ```
/// use consign_domain::*;
/// let sek: Currency = "SEK".parse().unwrap();
/// let money = |text| Money::parse(text, sek).unwrap();
/// let mut order = Order::new(OrderId(7), sek,
///     vec![OrderLine::new(LineId(1), "CAP", "Cap", money("199.00"), TaxRate(2500), 2)],
///     money("0"),
///     Some(PaymentAuthorization { provider: "sandbox".into(), reference: "a".into(), amount: money("398.00") }),
/// ).unwrap();
/// // Created uncaptured...
/// let plan = order.plan_shipment(&ShipmentRequest { capture: false, deduct_previous_costs: false,
///     lines: vec![ShipmentLine { line_id: LineId(1), quantity: 1 }] }).unwrap();
/// order.reserve(&plan).unwrap();
/// let shipment = Shipment::planned(&plan, ShipmentFlags::default());
/// // ...captured later: the domain decides the amount and the change; a store writes it.
/// let CaptureStart::Started { plan: capture, change } = shipment.begin_capture(&order).unwrap() else { unreachable!() };
/// assert_eq!(capture.amount().to_string(), "199.00");
/// order.apply(&change).unwrap();
/// let shipment = change.after().clone();
/// assert_eq!(shipment.state(), ShipmentState::CapturePending);
/// // While the capture is in flight, edits wait; once captured, it can not be deleted.
/// assert_eq!(shipment.delete().unwrap_err(), ShipmentError::CaptureInProgress(shipment.id()));
/// let captured = shipment.settle(Settlement::Captured, CaptureOrigin::Later).unwrap();
/// order.apply(&captured).unwrap();
/// assert_eq!(captured.after().delete().unwrap_err().to_string(),
///     "shipment has invoices or creditnotes and could not be deleted.");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shipment {
    id: ShipmentId,
    state: ShipmentState,
    lines: Vec<ShipmentLine>,
    flags: ShipmentFlags,
    capture_amount: Option<Money>,
    carries_shipping_fee: bool,
}

impl Shipment {
    /// A shipment as a store kept it. Refused when it has no lines, a line twice or with no
    /// units, a negative capture amount, or when its state and its capture disagree (a
    /// capture-pending or captured shipment has an amount; an uncaptured one has none).
    ///
    /// ```
    /// # use consign_domain::*;
    /// let sek: Currency = "SEK".parse().unwrap();
    /// let id = ShipmentId { order: OrderId(1), number: 1 };
    /// let lines = vec![ShipmentLine { line_id: LineId(1), quantity: 1 }];
    /// let kept = |minor| Shipment::new(id, ShipmentState::Captured, lines.clone(),
    ///     Some(Money::from_minor(minor, sek)), false, ShipmentFlags::default());
    /// assert!(kept(24_950).is_ok());
    /// assert!(matches!(kept(-1), Err(ShipmentError::DoesNotFit(_))));
    /// ```
    pub fn new(
        id: ShipmentId,
        state: ShipmentState,
        lines: Vec<ShipmentLine>,
        capture_amount: Option<Money>,
        carries_shipping_fee: bool,
        flags: ShipmentFlags,
    ) -> Result<Shipment, ShipmentError> {
        if lines.is_empty() {
            return Err(ShipmentError::EmptyShipment);
        }
        let mut seen = HashSet::with_capacity(lines.len());
        for line in &lines {
            if !seen.insert(line.line_id) {
                return Err(ShipmentError::DuplicateLine(line.line_id));
            }
            if line.quantity == 0 {
                return Err(ShipmentError::ZeroQuantity(line.line_id));
            }
        }
        let amount_fits = match state {
            ShipmentState::CapturePending | ShipmentState::Captured => capture_amount.is_some(),
            ShipmentState::Uncaptured => capture_amount.is_none() && !carries_shipping_fee,
            ShipmentState::Voided | ShipmentState::Deleted => true,
        };
        if !amount_fits || capture_amount.is_some_and(|m| m.minor() < 0) {
            return Err(ShipmentError::DoesNotFit(format!(
                "shipment {id} is {} with capture amount {capture_amount:?}",
                state.as_str()
            )));
        }
        Ok(Shipment {
            id,
            state,
            lines,
            flags,
            capture_amount,
            carries_shipping_fee,
        })
    }

    /// The shipment a plan creates, in the state it starts in.
    pub fn planned(plan: &ShipmentPlan, flags: ShipmentFlags) -> Shipment {
        Shipment {
            id: plan.id,
            state: plan.state(),
            lines: plan.lines.clone(),
            flags,
            capture_amount: plan.capture.map(|c| c.amount),
            carries_shipping_fee: plan.capture.is_some_and(|c| c.carries_shipping_fee),
        }
    }

    /// Its id.
    pub fn id(&self) -> ShipmentId {
        self.id
    }

    /// Where its money stands.
    pub fn state(&self) -> ShipmentState {
        self.state
    }

    /// Its lines, by line id.
    pub fn lines(&self) -> &[ShipmentLine] {
        &self.lines
    }

    /// Its flags.
    pub fn flags(&self) -> ShipmentFlags {
        self.flags
    }

    /// The amount captured or being captured, once a capture started.
    pub fn capture_amount(&self) -> Option<Money> {
        self.capture_amount
    }

    /// Whether its capture carries the order's shipping fee.
    pub fn carries_shipping_fee(&self) -> bool {
        self.carries_shipping_fee
    }

    /// Update shipment: new quantities for its lines (0 removes a line; see
    /// [`Order::plan_line_changes`]) and/or good to go. Lines change only while it is
    /// uncaptured and not sent; nothing changes while its capture is in flight.
    ///
    /// ```
    /// # use consign_domain::*;
    /// # let sek: Currency = "SEK".parse().unwrap();
    /// # let mut order = Order::new(OrderId(1), sek, vec![OrderLine::new(LineId(7), "S", "N",
    /// #     Money::from_minor(100, sek), TaxRate(2500), 3)], Money::zero(sek), None).unwrap();
    /// # let plan = order.plan_shipment(&ShipmentRequest { capture: false, deduct_previous_costs: false,
    /// #     lines: vec![ShipmentLine { line_id: LineId(7), quantity: 1 }] }).unwrap();
    /// # order.reserve(&plan).unwrap();
    /// let shipment = Shipment::planned(&plan, ShipmentFlags::default());
    /// let three = [ShipmentLine { line_id: LineId(7), quantity: 3 }];
    /// let change = shipment.update(&order, Some(&three), true).unwrap();
    /// assert_eq!(change.after().lines(), &three);
    /// assert_eq!(change.line_moves(), &[LineMove { line_id: LineId(7), allocated: 2, in_capture: 0 }]);
    /// assert!(change.after().flags().good_to_go);
    /// let four = [ShipmentLine { line_id: LineId(7), quantity: 4 }];
    /// assert!(matches!(shipment.update(&order, Some(&four), false), Err(ShipmentError::NotEnoughShippable { .. })));
    /// ```
    pub fn update(
        &self,
        order: &Order,
        lines: Option<&[ShipmentLine]>,
        good_to_go: bool,
    ) -> Result<ShipmentChange, ShipmentError> {
        let mut after = self.clone();
        let mut moves = Vec::new();
        if let Some(changes) = lines {
            self.transition(ShipmentEvent::EditLines)?;
            if self.flags.shipped {
                return Err(ShipmentError::ShipmentSent);
            }
            after.lines = order.plan_line_changes(&self.lines, changes)?;
            moves = allocation_moves(&self.lines, &after.lines);
        } else {
            self.transition(ShipmentEvent::SetFlags)?;
        }
        after.flags.good_to_go |= good_to_go;
        Ok(self.change(after, moves, 0, None))
    }

    /// Delete shipment: an uncaptured shipment is deleted and its units become shippable again.
    /// A captured one is refused with Centra's text.
    pub fn delete(&self) -> Result<ShipmentChange, ShipmentError> {
        let state = self.transition(ShipmentEvent::Delete)?;
        let moves = self
            .lines
            .iter()
            .map(|l| LineMove {
                line_id: l.line_id,
                allocated: -i64::from(l.quantity),
                in_capture: 0,
            })
            .collect();
        let after = Shipment {
            state,
            ..self.clone()
        };
        Ok(self.change(after, moves, 0, None))
    }

    /// Complete shipment's flags: good to go and shipped move forward. Refused while its
    /// capture is in flight (the changes then wait for the capture's settlement).
    pub fn complete(&self, completion: Completion) -> Result<ShipmentChange, ShipmentError> {
        self.transition(ShipmentEvent::SetFlags)?;
        let mut after = self.clone();
        after.flags.good_to_go |= completion.good_to_go;
        after.flags.shipped |= completion.shipped;
        Ok(self.change(after, Vec::new(), 0, None))
    }

    /// Starts the capture of an uncaptured shipment: the order plans the amount
    /// ([`Order::plan_capture`]), the units go into capture and the amount is committed. A
    /// captured shipment answers [`CaptureStart::AlreadyCaptured`]: it is never captured twice.
    pub fn begin_capture(&self, order: &Order) -> Result<CaptureStart, ShipmentError> {
        self.begin_capture_with(order, &Providers::any())
    }

    /// [`Shipment::begin_capture`] where only `providers` may capture.
    pub fn begin_capture_with(
        &self,
        order: &Order,
        providers: &Providers,
    ) -> Result<CaptureStart, ShipmentError> {
        if self.state == ShipmentState::Captured {
            return Ok(CaptureStart::AlreadyCaptured);
        }
        let state = self.transition(ShipmentEvent::CaptureStarted)?;
        let plan = order.plan_capture_with(&self.lines, false, providers)?;
        let moves = self
            .lines
            .iter()
            .map(|l| LineMove {
                line_id: l.line_id,
                allocated: 0,
                in_capture: i64::from(l.quantity),
            })
            .collect();
        let after = Shipment {
            state,
            capture_amount: Some(plan.amount),
            carries_shipping_fee: plan.carries_shipping_fee,
            ..self.clone()
        };
        let fee = plan.carries_shipping_fee.then_some(true);
        let change = self.change(after, moves, plan.amount.minor(), fee);
        Ok(CaptureStart::Started { plan, change })
    }

    /// Settles a pending capture. Captured: the shipment is captured (and no longer needs
    /// review). Declined: its units leave capture and its amount is no longer committed; the
    /// capture it was created with voids it (its units become shippable again), a later one
    /// leaves it uncaptured.
    pub fn settle(
        &self,
        settlement: Settlement,
        origin: CaptureOrigin,
    ) -> Result<ShipmentChange, ShipmentError> {
        let event = match (settlement, origin) {
            (Settlement::Captured, _) => ShipmentEvent::CaptureSucceeded,
            (Settlement::Declined, CaptureOrigin::AtCreation) => ShipmentEvent::CaptureDeclined,
            (Settlement::Declined, CaptureOrigin::Later) => ShipmentEvent::CaptureFailed,
        };
        let state = self.transition(event)?;
        let mut after = Shipment {
            state,
            ..self.clone()
        };
        after.flags.needs_review = false;
        if settlement == Settlement::Captured {
            return Ok(self.change(after, Vec::new(), 0, None));
        }
        let voided = state == ShipmentState::Voided;
        let moves = self
            .lines
            .iter()
            .map(|l| LineMove {
                line_id: l.line_id,
                allocated: if voided { -i64::from(l.quantity) } else { 0 },
                in_capture: -i64::from(l.quantity),
            })
            .collect();
        let released = self.capture_amount.map_or(0, |m| m.minor());
        let fee = self.carries_shipping_fee.then_some(false);
        if !voided {
            after.capture_amount = None;
            after.carries_shipping_fee = false;
        }
        Ok(self.change(after, moves, -released, fee))
    }

    /// The provider's answer to a pending capture is still unknown after `passes` tries: it
    /// stays pending, and from `review_after` passes on it needs an operator's review.
    pub fn capture_unknown(
        &self,
        passes: u32,
        review_after: u32,
    ) -> Result<ShipmentChange, ShipmentError> {
        self.transition(ShipmentEvent::CaptureUnknown)?;
        let mut after = self.clone();
        after.flags.needs_review |= Shipment::needs_review_after(passes, review_after);
        Ok(self.change(after, Vec::new(), 0, None))
    }

    /// The review rule: a capture still unknown after `passes` tries needs an operator from
    /// `review_after` passes on.
    pub fn needs_review_after(passes: u32, review_after: u32) -> bool {
        passes >= review_after
    }

    /// Whether an operator may settle the capture of shipment `id` by hand, from what the
    /// provider shows: only a capture still pending that recovery flagged for review. Any other
    /// settles by itself (its answer, a replay, a lookup), and a hand settlement could
    /// contradict the provider's answer on its way.
    ///
    /// ```
    /// use consign_domain::{OrderId, Shipment, ShipmentError, ShipmentId, ShipmentState};
    ///
    /// let id = ShipmentId { order: OrderId(7), number: 1 };
    /// assert!(Shipment::check_settle_by_hand(id, ShipmentState::CapturePending, true).is_ok());
    /// assert_eq!(
    ///     Shipment::check_settle_by_hand(id, ShipmentState::CapturePending, false),
    ///     Err(ShipmentError::NotUnderReview(id))
    /// );
    /// assert_eq!(
    ///     Shipment::check_settle_by_hand(id, ShipmentState::Captured, false),
    ///     Err(ShipmentError::NotUnderReview(id))
    /// );
    /// ```
    pub fn check_settle_by_hand(
        id: ShipmentId,
        state: ShipmentState,
        needs_review: bool,
    ) -> Result<(), ShipmentError> {
        if state == ShipmentState::CapturePending && needs_review {
            Ok(())
        } else {
            Err(ShipmentError::NotUnderReview(id))
        }
    }

    /// The state after `event`, or the refusal a Centra client reads.
    fn transition(&self, event: ShipmentEvent) -> Result<ShipmentState, ShipmentError> {
        self.state
            .on(event)
            .map_err(|illegal| match (self.state, event) {
                (ShipmentState::CapturePending, _) => ShipmentError::CaptureInProgress(self.id),
                (ShipmentState::Captured, ShipmentEvent::Delete) => ShipmentError::NotDeletable,
                (ShipmentState::Captured, ShipmentEvent::EditLines) => {
                    ShipmentError::ShipmentCaptured
                }
                _ => ShipmentError::Illegal(illegal),
            })
    }

    fn change(
        &self,
        after: Shipment,
        line_moves: Vec<LineMove>,
        committed_change: i64,
        shipping_fee_committed: Option<bool>,
    ) -> ShipmentChange {
        ShipmentChange {
            before: self.clone(),
            after,
            line_moves,
            committed_change,
            shipping_fee_committed,
        }
    }
}

/// The allocation moves that take a shipment's lines from `before` to `after`.
fn allocation_moves(before: &[ShipmentLine], after: &[ShipmentLine]) -> Vec<LineMove> {
    let held = |lines: &[ShipmentLine], id: LineId| {
        lines
            .iter()
            .find(|l| l.line_id == id)
            .map_or(0, |l| i64::from(l.quantity))
    };
    let mut ids: Vec<LineId> = before.iter().chain(after).map(|l| l.line_id).collect();
    ids.sort();
    ids.dedup();
    ids.into_iter()
        .map(|id| LineMove {
            line_id: id,
            allocated: held(after, id) - held(before, id),
            in_capture: 0,
        })
        .filter(|m| m.allocated != 0)
        .collect()
}

/// A change the domain decided for a shipment and its order: the shipment before and after,
/// how the order's lines move, how the committed amount moves and whether the shipping fee
/// becomes committed or free. A store writes exactly this (guarding that the shipment is still
/// in its `before` state and that every line stays within `in_capture <= allocated <=
/// quantity`); [`Order::apply`] applies it to an order in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShipmentChange {
    before: Shipment,
    after: Shipment,
    line_moves: Vec<LineMove>,
    committed_change: i64,
    shipping_fee_committed: Option<bool>,
}

impl ShipmentChange {
    /// The shipment as it was when the change was decided.
    pub fn before(&self) -> &Shipment {
        &self.before
    }

    /// The shipment after the change.
    pub fn after(&self) -> &Shipment {
        &self.after
    }

    /// How the order's lines' counters move.
    pub fn line_moves(&self) -> &[LineMove] {
        &self.line_moves
    }

    /// How the order's committed amount moves, in minor units (negative: released).
    pub fn committed_change(&self) -> i64 {
        self.committed_change
    }

    /// `Some(true)` when the shipping fee becomes committed, `Some(false)` when it becomes free
    /// again, `None` when it stays as it is.
    pub fn shipping_fee_committed(&self) -> Option<bool> {
        self.shipping_fee_committed
    }

    /// Whether the shipment's lines change.
    pub fn lines_changed(&self) -> bool {
        self.before.lines != self.after.lines
    }

    /// Whether the shipment becomes shipped with this change (a shipping confirmation is due).
    pub fn becomes_shipped(&self) -> bool {
        !self.before.flags.shipped && self.after.flags.shipped
    }

    /// Whether units leave capture with this change (a declined capture). The order then has
    /// units outside capture, so no capture still open on it completes the order any more: none
    /// of them may go out as the final capture, which on some providers closes the
    /// authorisation and would leave those units unpaid when they are shipped again. Whichever
    /// capture takes them back into capture is planned as the one that completes the order.
    ///
    /// ```
    /// # use consign_domain::*;
    /// # let sek: Currency = "SEK".parse().unwrap();
    /// # let mut order = Order::new(OrderId(1), sek, vec![OrderLine::new(LineId(7), "S", "N",
    /// #     Money::from_minor(100, sek), TaxRate(2500), 2)], Money::zero(sek),
    /// #     Some(PaymentAuthorization { provider: "stripe".into(), reference: "pi".into(),
    /// #         amount: Money::from_minor(200, sek) })).unwrap();
    /// let one = ShipmentRequest { capture: true, deduct_previous_costs: false,
    ///     lines: vec![ShipmentLine { line_id: LineId(7), quantity: 1 }] };
    /// let first = order.plan_shipment(&one).unwrap();
    /// order.reserve(&first).unwrap();
    /// let last = order.plan_shipment(&one).unwrap();
    /// order.reserve(&last).unwrap();
    /// assert!(last.capture().unwrap().completes_order());
    /// // The first capture is declined: its unit leaves capture, and the last no longer completes.
    /// let declined = Shipment::planned(&first, ShipmentFlags::default())
    ///     .settle(Settlement::Declined, CaptureOrigin::AtCreation).unwrap();
    /// assert!(declined.takes_units_out_of_capture());
    /// order.apply(&declined).unwrap();
    /// let again = order.plan_shipment(&one).unwrap();
    /// assert!(again.capture().unwrap().completes_order());
    /// // A capture that succeeds takes nothing out.
    /// let captured = Shipment::planned(&last, ShipmentFlags::default())
    ///     .settle(Settlement::Captured, CaptureOrigin::AtCreation).unwrap();
    /// assert!(!captured.takes_units_out_of_capture());
    /// ```
    pub fn takes_units_out_of_capture(&self) -> bool {
        self.line_moves.iter().any(|m| m.in_capture < 0)
    }
}

impl Order {
    /// Applies a change decided on this order: the lines' counters, the committed amount and the
    /// shipping fee move as the change says, all or nothing, with checked arithmetic. A change
    /// that does not fit these counters (it was decided on others) is refused and changes
    /// nothing.
    pub fn apply(&mut self, change: &ShipmentChange) -> Result<(), ShipmentError> {
        if change.after.id.order != self.id() {
            return Err(ShipmentError::DoesNotFit(format!(
                "shipment {} is not on order {}",
                change.after.id,
                self.id()
            )));
        }
        if let Some(amount) = change
            .after
            .capture_amount
            .filter(|m| m.currency() != self.currency())
        {
            return Err(ShipmentError::DoesNotFit(format!(
                "shipment {} captures {amount} on an order in {}",
                change.after.id,
                self.currency()
            )));
        }
        self.apply_moves(
            &change.line_moves,
            change.committed_change,
            change.shipping_fee_committed,
            None,
        )
    }
}
