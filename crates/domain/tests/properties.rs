//! Property tests of the shipment rules: random orders, random sequences of partial shipments
//! (valid and invalid, captured, declined, uncaptured then captured or deleted).

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
                .map(|(i, (price, quantity))| OrderLine {
                    line_id: LineId(100 + i as i64),
                    sku: format!("SKU-{i}"),
                    name: format!("Item {i}"),
                    unit_price: Money::from_minor(price, sek()),
                    tax_rate: TaxRate(2500),
                    quantity,
                    allocated: 0,
                    in_capture: 0,
                })
                .collect();
            let mut order = Order {
                id: OrderId(7),
                currency: sek(),
                lines,
                shipping_fee: Money::from_minor(fee, sek()),
                payment: None,
                committed: Money::zero(sek()),
                shipping_fee_committed: false,
                next_shipment_number: 1,
            };
            if with_payment {
                order.payment = Some(PaymentAuthorization {
                    provider: "sandbox".into(),
                    reference: "auth".into(),
                    amount: order.total().unwrap(),
                });
            }
            order
        })
}

#[derive(Debug, Clone)]
enum Step {
    Create {
        // (line index, or an unknown line when >= lines; quantity, possibly 0 or too many)
        lines: Vec<(usize, u32)>,
        capture: bool,
        deduct: bool,
        declined: bool,
    },
    CaptureUncaptured {
        pick: usize,
        declined: bool,
    },
    DeleteUncaptured {
        pick: usize,
    },
}

fn arb_step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (
            prop::collection::vec((0usize..6, 0u32..7), 0..4),
            any::<bool>(),
            any::<bool>(),
            prop::bool::weighted(0.2),
        )
            .prop_map(|(lines, capture, deduct, declined)| Step::Create {
                lines,
                capture,
                deduct,
                declined
            }),
        1 => (any::<usize>(), prop::bool::weighted(0.2))
            .prop_map(|(pick, declined)| Step::CaptureUncaptured { pick, declined }),
        1 => any::<usize>().prop_map(|pick| Step::DeleteUncaptured { pick }),
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
        let Some(line) = order.lines.iter().find(|x| x.line_id == l.line_id) else {
            return Some(ShipmentError::UnknownLine {
                order: order.id,
                line: l.line_id,
            });
        };
        if l.quantity > line.quantity - line.allocated {
            return Some(ShipmentError::NotEnoughShippable {
                line: l.line_id,
                requested: l.quantity,
                shippable: line.quantity - line.allocated,
                ordered: line.quantity,
            });
        }
    }
    if request.capture && order.payment.is_none() {
        return Some(ShipmentError::NoPaymentAuthorization);
    }
    None
}

struct Live {
    lines: Vec<ShipmentLine>,
    captured: Option<Money>,
}

fn check_invariants(order: &Order, live: &[Live]) {
    for line in &order.lines {
        assert!(line.in_capture <= line.allocated, "{line:?}");
        assert!(line.allocated <= line.quantity, "over-allocated: {line:?}");
        let in_shipments: u32 = live
            .iter()
            .flat_map(|s| &s.lines)
            .filter(|l| l.line_id == line.line_id)
            .map(|l| l.quantity)
            .sum();
        assert_eq!(in_shipments, line.allocated, "allocation drifted");
    }
    let captured: i64 = live
        .iter()
        .filter_map(|s| s.captured)
        .map(|m| m.minor())
        .sum();
    assert_eq!(order.committed.minor(), captured);
    if let Some(payment) = &order.payment {
        assert!(captured <= payment.amount.minor());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn partial_shipments_never_over_ship_and_captures_sum_to_the_total(
        mut order in arb_order(),
        steps in prop::collection::vec(arb_step(), 1..25),
    ) {
        let mut live: Vec<Live> = Vec::new();
        for step in steps {
            match step {
                Step::Create { lines, capture, deduct, declined } => {
                    let request = ShipmentRequest {
                        lines: lines.iter().map(|&(i, quantity)| ShipmentLine {
                            line_id: order.lines.get(i).map_or(LineId(999), |l| l.line_id),
                            quantity,
                        }).collect(),
                        capture,
                        deduct_previous_costs: deduct,
                    };
                    let before = order.clone();
                    let expected = expected_error(&order, &request);
                    match order.plan_shipment(&request) {
                        Err(error) => {
                            prop_assert_eq!(Some(error), expected);
                            prop_assert_eq!(&order, &before, "a refusal changed the order");
                        }
                        Ok(plan) => {
                            prop_assert_eq!(expected, None);
                            prop_assert_eq!(plan.id.number, order.next_shipment_number);
                            order.reserve(&plan);
                            match plan.capture {
                                Some(capture) if declined => {
                                    order.release(&plan.lines, Some(&capture));
                                }
                                Some(capture) => live.push(Live { lines: plan.lines, captured: Some(capture.amount) }),
                                None => live.push(Live { lines: plan.lines, captured: None }),
                            }
                        }
                    }
                }
                Step::CaptureUncaptured { pick, declined } => {
                    let uncaptured: Vec<usize> = (0..live.len()).filter(|&i| live[i].captured.is_none()).collect();
                    if uncaptured.is_empty() { continue; }
                    let index = uncaptured[pick % uncaptured.len()];
                    match order.plan_capture(&live[index].lines, false) {
                        Err(error) => prop_assert_eq!(error, ShipmentError::NoPaymentAuthorization),
                        Ok(capture) => {
                            order.begin_capture(&live[index].lines, &capture);
                            if declined {
                                order.release(&live[index].lines, Some(&capture));
                                live.remove(index);
                            } else {
                                live[index].captured = Some(capture.amount);
                            }
                        }
                    }
                }
                Step::DeleteUncaptured { pick } => {
                    let uncaptured: Vec<usize> = (0..live.len()).filter(|&i| live[i].captured.is_none()).collect();
                    if uncaptured.is_empty() { continue; }
                    let index = uncaptured[pick % uncaptured.len()];
                    order.release(&live[index].lines, None);
                    live.remove(index);
                }
            }
            check_invariants(&order, &live);
        }

        // Finish the order: capture what is uncaptured, ship what is left, all successfully.
        if order.payment.is_some() {
            for shipment in live.iter_mut().filter(|s| s.captured.is_none()) {
                let capture = order.plan_capture(&shipment.lines, false).unwrap();
                order.begin_capture(&shipment.lines, &capture);
                shipment.captured = Some(capture.amount);
            }
            let rest: Vec<ShipmentLine> = order.lines.iter().filter(|l| l.shippable() > 0)
                .map(|l| ShipmentLine { line_id: l.line_id, quantity: l.shippable() }).collect();
            if !rest.is_empty() {
                let plan = order.plan_shipment(&ShipmentRequest { lines: rest, capture: true, deduct_previous_costs: false }).unwrap();
                prop_assert!(plan.capture.unwrap().completes_order);
                order.reserve(&plan);
                live.push(Live { lines: plan.lines, captured: plan.capture.map(|c| c.amount) });
            }
            check_invariants(&order, &live);
            prop_assert!(order.fully_in_capture());
            let captured: i64 = live.iter().filter_map(|s| s.captured).map(|m| m.minor()).sum();
            prop_assert_eq!(captured, order.total().unwrap().minor(), "captures must add up to the total");
            prop_assert!(live.iter().all(|s| s.captured.unwrap().minor() >= 0));
        }
    }
}

#[test]
fn shipping_fee_is_carried_once_and_deduct_previous_costs_leaves_it_out() {
    let line = |id, quantity| OrderLine {
        line_id: LineId(id),
        sku: "S".into(),
        name: "N".into(),
        unit_price: Money::from_minor(10_000, sek()),
        tax_rate: TaxRate(2500),
        quantity,
        allocated: 0,
        in_capture: 0,
    };
    let mut order = Order {
        id: OrderId(1),
        currency: sek(),
        lines: vec![line(1, 3)],
        shipping_fee: Money::from_minor(4_900, sek()),
        payment: Some(PaymentAuthorization {
            provider: "sandbox".into(),
            reference: "a".into(),
            amount: Money::from_minor(34_900, sek()),
        }),
        committed: Money::zero(sek()),
        shipping_fee_committed: false,
        next_shipment_number: 1,
    };
    let one = |deduct| ShipmentRequest {
        lines: vec![ShipmentLine {
            line_id: LineId(1),
            quantity: 1,
        }],
        capture: true,
        deduct_previous_costs: deduct,
    };
    let first = order.plan_shipment(&one(true)).unwrap();
    assert_eq!(first.capture.unwrap().amount.minor(), 10_000);
    order.reserve(&first);
    let second = order.plan_shipment(&one(false)).unwrap();
    assert_eq!(second.capture.unwrap().amount.minor(), 14_900);
    assert!(second.capture.unwrap().carries_shipping_fee);
    order.reserve(&second);
    let third = order.plan_shipment(&one(false)).unwrap();
    assert_eq!(third.capture.unwrap().amount.minor(), 10_000);
    assert!(third.capture.unwrap().completes_order);
    assert_eq!(third.id.to_string(), "1-3");
}
