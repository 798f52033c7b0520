//! Property tests of the shipment rules through `Shipment`'s methods: random orders, random
//! sequences of partial shipments (valid and invalid, captured, declined, left unknown,
//! uncaptured then captured, edited or deleted), each change applied as a store would.

use consign_domain::*;
use proptest::prelude::*;

fn sek() -> Currency {
    "SEK".parse().unwrap()
}

fn arb_order() -> impl Strategy<Value = Order> {
    (
        prop::collection::vec((0i64..100_000, 1u32..6), 1..5),
        0i64..10_000,
        any::<bool>(),
    )
        .prop_map(|(lines, fee, with_payment)| {
            let lines: Vec<OrderLine> = lines
                .into_iter()
                .enumerate()
                .map(|(i, (price, quantity))| {
                    OrderLine::new(
                        LineId(100 + i as i64),
                        format!("SKU-{i}"),
                        format!("Item {i}"),
                        Money::from_minor(price, sek()),
                        TaxRate(2500),
                        quantity,
                    )
                })
                .collect();
            let fee = Money::from_minor(fee, sek());
            let draft = Order::new(OrderId(7), sek(), lines.clone(), fee, None).unwrap();
            let payment = with_payment.then(|| PaymentAuthorization {
                provider: "sandbox".into(),
                reference: "auth".into(),
                amount: draft.total().unwrap(),
            });
            Order::new(OrderId(7), sek(), lines, fee, payment).unwrap()
        })
}

#[derive(Debug, Clone)]
enum Step {
    Create {
        // (line index, or an unknown line when >= lines; quantity, possibly 0 or too many)
        lines: Vec<(usize, u32)>,
        capture: bool,
        deduct: bool,
        outcome: Outcome,
    },
    CaptureUncaptured {
        pick: usize,
        outcome: Outcome,
    },
    Edit {
        pick: usize,
        line: usize,
        quantity: u32,
    },
    Delete {
        pick: usize,
    },
    Complete {
        pick: usize,
        shipped: bool,
    },
    /// A pending capture's outcome arrives (recovery).
    Settle {
        pick: usize,
        declined: bool,
    },
}

#[derive(Debug, Clone, Copy)]
enum Outcome {
    Captured,
    Declined,
    Unknown,
}

fn arb_outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![6 => Just(Outcome::Captured), 2 => Just(Outcome::Declined), 1 => Just(Outcome::Unknown)]
}

fn arb_step() -> impl Strategy<Value = Step> {
    prop_oneof![
        5 => (
            prop::collection::vec((0usize..6, 0u32..7), 0..4),
            any::<bool>(),
            any::<bool>(),
            arb_outcome(),
        )
            .prop_map(|(lines, capture, deduct, outcome)| Step::Create { lines, capture, deduct, outcome }),
        2 => (any::<usize>(), arb_outcome()).prop_map(|(pick, outcome)| Step::CaptureUncaptured { pick, outcome }),
        1 => (any::<usize>(), 0usize..6, 0u32..6).prop_map(|(pick, line, quantity)| Step::Edit { pick, line, quantity }),
        1 => any::<usize>().prop_map(|pick| Step::Delete { pick }),
        1 => (any::<usize>(), any::<bool>()).prop_map(|(pick, shipped)| Step::Complete { pick, shipped }),
        1 => (any::<usize>(), any::<bool>()).prop_map(|(pick, declined)| Step::Settle { pick, declined }),
    ]
}

/// The error a simple model expects for a request, checking lines in request order.
fn expected_error(order: &Order, request: &ShipmentRequest) -> Option<ShipmentError> {
    if request.lines.is_empty() {
        return Some(ShipmentError::NoProducts);
    }
    let mut seen = Vec::new();
    for l in &request.lines {
        if seen.contains(&l.line_id) {
            return Some(ShipmentError::DuplicateLine(l.line_id));
        }
        seen.push(l.line_id);
        if l.quantity == 0 {
            return Some(ShipmentError::ZeroQuantity(l.line_id));
        }
        let Some(line) = order.line(l.line_id) else {
            return Some(ShipmentError::UnknownLine {
                order: order.id(),
                line: l.line_id,
            });
        };
        if l.quantity > line.quantity() - line.allocated() {
            return Some(ShipmentError::NotEnoughShippable {
                line: l.line_id,
                requested: l.quantity,
                shippable: line.quantity() - line.allocated(),
                ordered: line.quantity(),
            });
        }
    }
    if request.capture && order.payment().is_none() {
        return Some(ShipmentError::NoPaymentAuthorization);
    }
    None
}

/// The order's counters are exactly what its live shipments hold.
fn check_invariants(order: &Order, live: &[Shipment]) {
    for line in order.lines() {
        assert!(line.in_capture() <= line.allocated(), "{line:?}");
        assert!(
            line.allocated() <= line.quantity(),
            "over-allocated: {line:?}"
        );
        let units = |in_capture_only: bool| -> u32 {
            live.iter()
                .filter(|s| !in_capture_only || s.state().is_in_capture())
                .flat_map(|s| s.lines())
                .filter(|l| l.line_id == line.line_id())
                .map(|l| l.quantity)
                .sum()
        };
        assert_eq!(units(false), line.allocated(), "allocation drifted");
        assert_eq!(units(true), line.in_capture(), "units in capture drifted");
    }
    let committed: i64 = live
        .iter()
        .filter(|s| s.state().is_in_capture())
        .map(|s| s.capture_amount().unwrap().minor())
        .sum();
    assert_eq!(order.committed().minor(), committed);
    let total = order.total().unwrap().minor();
    assert!(committed <= total, "committed more than the total");
    if let Some(payment) = order.payment() {
        assert!(committed <= payment.amount.minor());
    }
    assert!(live.iter().all(|s| s.state().is_live()));
}

/// Applies a decided change to the order and the list of live shipments, as a store does.
fn persist(order: &mut Order, live: &mut Vec<Shipment>, change: &ShipmentChange) {
    order
        .apply(change)
        .expect("a change decided on this order fits it");
    let index = live
        .iter()
        .position(|s| s.id() == change.before().id())
        .unwrap();
    if change.after().state().is_live() {
        live[index] = change.after().clone();
    } else {
        live.remove(index);
    }
}

/// Answers a pending capture with `outcome`; unknown leaves it pending.
fn settle(
    order: &mut Order,
    live: &mut Vec<Shipment>,
    index: usize,
    outcome: Outcome,
    origin: CaptureOrigin,
) {
    let settlement = match outcome {
        Outcome::Captured => Settlement::Captured,
        Outcome::Declined => Settlement::Declined,
        Outcome::Unknown => {
            let change = live[index].capture_unknown(1, 10).unwrap();
            return persist(order, live, &change);
        }
    };
    let change = live[index].settle(settlement, origin).unwrap();
    persist(order, live, &change);
}

fn pick(live: &[Shipment], pick: usize, state: ShipmentState) -> Option<usize> {
    let matching: Vec<usize> = (0..live.len())
        .filter(|&i| live[i].state() == state)
        .collect();
    (!matching.is_empty()).then(|| matching[pick % matching.len()])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn partial_shipments_never_over_ship_and_captures_sum_to_the_total(
        mut order in arb_order(),
        steps in prop::collection::vec(arb_step(), 1..30),
    ) {
        let mut live: Vec<Shipment> = Vec::new();
        // Which capture each pending shipment waits for (creation's, or a later one).
        let mut origins: Vec<(ShipmentId, CaptureOrigin)> = Vec::new();
        let origin_of = |origins: &[(ShipmentId, CaptureOrigin)], id| {
            origins.iter().rev().find(|(s, _)| *s == id).map_or(CaptureOrigin::AtCreation, |(_, o)| *o)
        };
        for step in steps {
            let before = order.clone();
            match step {
                Step::Create { lines, capture, deduct, outcome } => {
                    let request = ShipmentRequest {
                        lines: lines.iter().map(|&(i, quantity)| ShipmentLine {
                            line_id: order.lines().get(i).map_or(LineId(999), |l| l.line_id()),
                            quantity,
                        }).collect(),
                        capture,
                        deduct_previous_costs: deduct,
                    };
                    let expected = expected_error(&order, &request);
                    match order.plan_shipment(&request) {
                        Err(error) => {
                            prop_assert_eq!(Some(error), expected);
                            prop_assert_eq!(&order, &before, "a refusal changed the order");
                        }
                        Ok(plan) => {
                            prop_assert_eq!(expected, None);
                            prop_assert_eq!(plan.id().number, before.progress().next_shipment_number);
                            order.reserve(&plan).unwrap();
                            live.push(Shipment::planned(&plan, ShipmentFlags::default()));
                            if plan.capture().is_some() {
                                let index = live.len() - 1;
                                settle(&mut order, &mut live, index, outcome, CaptureOrigin::AtCreation);
                            }
                        }
                    }
                }
                Step::CaptureUncaptured { pick: p, outcome } => {
                    let Some(index) = pick(&live, p, ShipmentState::Uncaptured) else { continue };
                    match live[index].begin_capture(&order) {
                        Err(error) => {
                            prop_assert_eq!(error, ShipmentError::NoPaymentAuthorization);
                            prop_assert_eq!(&order, &before);
                        }
                        Ok(CaptureStart::AlreadyCaptured) => prop_assert!(false, "uncaptured"),
                        Ok(CaptureStart::Started { plan, change }) => {
                            prop_assert_eq!(Some(plan.amount()), change.after().capture_amount());
                            persist(&mut order, &mut live, &change);
                            origins.push((change.after().id(), CaptureOrigin::Later));
                            settle(&mut order, &mut live, index, outcome, CaptureOrigin::Later);
                        }
                    }
                }
                Step::Edit { pick: p, line, quantity } => {
                    if live.is_empty() { continue }
                    let index = p % live.len();
                    let line_id = order.lines().get(line).map_or(LineId(999), |l| l.line_id());
                    let edit = [ShipmentLine { line_id, quantity }];
                    match live[index].update(&order, Some(&edit), false) {
                        Ok(change) => {
                            prop_assert_eq!(live[index].state(), ShipmentState::Uncaptured);
                            persist(&mut order, &mut live, &change);
                        }
                        Err(_) => prop_assert_eq!(&order, &before, "a refused edit changed the order"),
                    }
                }
                Step::Delete { pick: p } => {
                    if live.is_empty() { continue }
                    let index = p % live.len();
                    let state = live[index].state();
                    match live[index].delete() {
                        Ok(change) => {
                            prop_assert_eq!(state, ShipmentState::Uncaptured);
                            persist(&mut order, &mut live, &change);
                        }
                        Err(error) => {
                            prop_assert!(state != ShipmentState::Uncaptured, "{:?}", error);
                            prop_assert_eq!(&order, &before);
                        }
                    }
                }
                Step::Complete { pick: p, shipped } => {
                    if live.is_empty() { continue }
                    let index = p % live.len();
                    let completion = Completion { good_to_go: true, shipped };
                    if let Ok(change) = live[index].complete(completion) {
                        prop_assert!(change.line_moves().is_empty());
                        persist(&mut order, &mut live, &change);
                    }
                }
                Step::Settle { pick: p, declined } => {
                    let Some(index) = pick(&live, p, ShipmentState::CapturePending) else { continue };
                    let outcome = if declined { Outcome::Declined } else { Outcome::Captured };
                    let origin = origin_of(&origins, live[index].id());
                    settle(&mut order, &mut live, index, outcome, origin);
                }
            }
            check_invariants(&order, &live);
        }

        // Finish the order: settle what is pending, capture what is uncaptured, ship what is
        // left, all successfully.
        if order.payment().is_some() {
            while let Some(index) = pick(&live, 0, ShipmentState::CapturePending) {
                let origin = origin_of(&origins, live[index].id());
                settle(&mut order, &mut live, index, Outcome::Captured, origin);
            }
            while let Some(index) = pick(&live, 0, ShipmentState::Uncaptured) {
                let Ok(CaptureStart::Started { change, .. }) = live[index].begin_capture(&order) else {
                    panic!("an uncaptured shipment of an authorised order can be captured");
                };
                persist(&mut order, &mut live, &change);
                settle(&mut order, &mut live, index, Outcome::Captured, CaptureOrigin::Later);
            }
            let rest: Vec<ShipmentLine> = order.lines().iter().filter(|l| l.shippable() > 0)
                .map(|l| ShipmentLine { line_id: l.line_id(), quantity: l.shippable() }).collect();
            if !rest.is_empty() {
                let plan = order.plan_shipment(&ShipmentRequest { lines: rest, capture: true, deduct_previous_costs: false }).unwrap();
                prop_assert!(plan.capture().unwrap().completes_order());
                order.reserve(&plan).unwrap();
                live.push(Shipment::planned(&plan, ShipmentFlags::default()));
                let index = live.len() - 1;
                settle(&mut order, &mut live, index, Outcome::Captured, CaptureOrigin::AtCreation);
            }
            check_invariants(&order, &live);
            prop_assert!(order.fully_in_capture());
            prop_assert!(live.iter().all(|s| s.state() == ShipmentState::Captured));
            let captured: i64 = live.iter().map(|s| s.capture_amount().unwrap().minor()).sum();
            prop_assert_eq!(captured, order.total().unwrap().minor(), "captures must add up to the total");
            prop_assert!(live.iter().all(|s| s.capture_amount().unwrap().minor() >= 0));
        }
    }

    #[test]
    fn a_change_applied_twice_never_fits_twice_when_it_moves_units(
        mut order in arb_order(),
        quantity in 1u32..3,
    ) {
        let line = order.lines()[0].line_id();
        let request = ShipmentRequest {
            lines: vec![ShipmentLine { line_id: line, quantity: quantity.min(order.lines()[0].quantity()) }],
            capture: false,
            deduct_previous_costs: false,
        };
        let plan = order.plan_shipment(&request).unwrap();
        order.reserve(&plan).unwrap();
        let delete = Shipment::planned(&plan, ShipmentFlags::default()).delete().unwrap();
        order.apply(&delete).unwrap();
        let before = order.clone();
        prop_assert!(order.apply(&delete).is_err());
        prop_assert_eq!(order, before);
    }
}

#[test]
fn shipping_fee_is_carried_once_and_deduct_previous_costs_leaves_it_out() {
    let line = OrderLine::new(
        LineId(1),
        "S",
        "N",
        Money::from_minor(10_000, sek()),
        TaxRate(2500),
        3,
    );
    let mut order = Order::new(
        OrderId(1),
        sek(),
        vec![line],
        Money::from_minor(4_900, sek()),
        Some(PaymentAuthorization {
            provider: "sandbox".into(),
            reference: "a".into(),
            amount: Money::from_minor(34_900, sek()),
        }),
    )
    .unwrap();
    let one = |deduct| ShipmentRequest {
        lines: vec![ShipmentLine {
            line_id: LineId(1),
            quantity: 1,
        }],
        capture: true,
        deduct_previous_costs: deduct,
    };
    let first = order.plan_shipment(&one(true)).unwrap();
    assert_eq!(first.capture().unwrap().amount().minor(), 10_000);
    order.reserve(&first).unwrap();
    let second = order.plan_shipment(&one(false)).unwrap();
    assert_eq!(second.capture().unwrap().amount().minor(), 14_900);
    assert!(second.capture().unwrap().carries_shipping_fee());
    order.reserve(&second).unwrap();
    let third = order.plan_shipment(&one(false)).unwrap();
    assert_eq!(third.capture().unwrap().amount().minor(), 10_000);
    assert!(third.capture().unwrap().completes_order());
    assert_eq!(third.id().to_string(), "1-3");
}
