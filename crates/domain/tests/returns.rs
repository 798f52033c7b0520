//! Property tests of returns and refunds: random orders shipped and captured in random partial
//! shipments, then random returns (some lines too many, some refunds declined or left unknown,
//! costs added and deducted) never return more than a shipment shipped and never refund more than
//! it captured, per shipment and per order.

use consign_domain::*;
use proptest::prelude::*;

fn sek() -> Currency {
    "SEK".parse().unwrap()
}

/// A fully shipped and captured order, in shipments of random sizes.
fn shipped(prices: &[(i64, u32)], fee: i64, cuts: &[u32]) -> (Order, Vec<Shipment>) {
    let lines: Vec<OrderLine> = prices
        .iter()
        .enumerate()
        .map(|(i, (price, qty))| {
            OrderLine::new(
                LineId(i as i64 + 1),
                format!("S{i}"),
                "N",
                Money::from_minor(*price, sek()),
                TaxRate(2500),
                *qty,
            )
        })
        .collect();
    let fee = Money::from_minor(fee, sek());
    let total = Order::new(OrderId(1), sek(), lines.clone(), fee, None)
        .unwrap()
        .total()
        .unwrap();
    let mut order = Order::new(
        OrderId(1),
        sek(),
        lines,
        fee,
        Some(PaymentAuthorization {
            provider: "sandbox".into(),
            reference: "a".into(),
            amount: total,
        }),
    )
    .unwrap();
    let mut shipments = Vec::new();
    let mut cut = cuts.iter().cycle();
    while !order.fully_allocated() {
        let lines: Vec<ShipmentLine> = order
            .lines()
            .iter()
            .filter(|l| l.shippable() > 0)
            .map(|l| ShipmentLine {
                line_id: l.line_id(),
                quantity: (*cut.next().unwrap()).clamp(1, l.shippable()),
            })
            .collect();
        let plan = order
            .plan_shipment(&ShipmentRequest {
                lines,
                capture: true,
                deduct_previous_costs: false,
            })
            .unwrap();
        order.reserve(&plan).unwrap();
        let captured = Shipment::planned(&plan, ShipmentFlags::default())
            .settle(Settlement::Captured, CaptureOrigin::AtCreation)
            .unwrap();
        order.apply(&captured).unwrap();
        shipments.push(captured.after().clone());
    }
    (order, shipments)
}

/// One return as a store keeps it.
struct Kept {
    shipment: usize,
    plan: ReturnPlan,
    state: RefundState,
}

/// What earlier returns of shipment `index` took, computed from the kept returns as a store does.
fn returned(order: &Order, kept: &[Kept], index: usize) -> Returned {
    let mine: Vec<&Kept> = kept.iter().filter(|k| k.shipment == index).collect();
    let lines = mine
        .iter()
        .flat_map(|k| k.plan.lines().iter().copied())
        .collect();
    let refunded = mine
        .iter()
        .filter(|k| k.state.holds_money())
        .map(|k| k.plan.refund().minor())
        .sum();
    let fee = mine.iter().any(|k| k.plan.takes_shipping_fee());
    let _ = order;
    Returned::kept(lines, Money::from_minor(refunded, sek()), fee).unwrap()
}

#[derive(Debug, Clone)]
struct Step {
    shipment: usize,
    lines: Option<Vec<(usize, u32)>>,
    shipping: u8,
    handling: i64,
    return_cost: i64,
    refund: bool,
    outcome: u8,
}

fn arb_step() -> impl Strategy<Value = Step> {
    (
        any::<usize>(),
        prop::option::weighted(0.8, prop::collection::vec((0usize..4, 0u32..4), 1..3)),
        0u8..3,
        prop_oneof![3 => Just(0i64), 1 => 0i64..5_000],
        prop_oneof![3 => Just(0i64), 1 => 0i64..20_000],
        prop::bool::weighted(0.8),
        0u8..4,
    )
        .prop_map(
            |(shipment, lines, shipping, handling, return_cost, refund, outcome)| Step {
                shipment,
                lines,
                shipping,
                handling,
                return_cost,
                refund,
                outcome,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn returns_never_take_back_more_than_shipped_nor_refund_more_than_captured(
        prices in prop::collection::vec((1i64..50_000, 1u32..5), 1..4),
        fee in 0i64..10_000,
        cuts in prop::collection::vec(1u32..4, 1..4),
        steps in prop::collection::vec(arb_step(), 1..20),
    ) {
        let (order, shipments) = shipped(&prices, fee, &cuts);
        let mut kept: Vec<Kept> = Vec::new();
        for step in steps {
            let index = step.shipment % shipments.len();
            let shipment = &shipments[index];
            let before = returned(&order, &kept, index);
            let request = ReturnRequest {
                lines: step.lines.as_ref().map(|lines| lines.iter().map(|&(i, quantity)| ShipmentLine {
                    line_id: LineId(i as i64 + 1),
                    quantity,
                }).collect()),
                shipping: match step.shipping {
                    0 => Cost::None,
                    1 => Cost::FromShipment,
                    _ => Cost::Given(Money::from_minor(1_000, sek())),
                },
                handling: Cost::Given(Money::from_minor(step.handling, sek())),
                voucher: Cost::None,
                return_cost: Some(Money::from_minor(step.return_cost, sek())),
            };
            let named_twice = request.lines.as_ref().is_some_and(|lines| {
                lines.iter().enumerate().any(|(i, l)| lines[..i].iter().any(|m| m.line_id == l.line_id))
            });
            let planned = order.plan_return(shipment, &before, &request, step.refund);
            // A line named twice is refused, and only then.
            prop_assert_eq!(named_twice, matches!(planned, Err(ReturnError::DuplicateLine(_))));
            match planned {
                Err(ReturnError::DuplicateLine(_) | ReturnError::NothingReturnable(_) | ReturnError::NegativeRefund(_) | ReturnError::ExceedsRefundable { .. }) => {
                    // Refused: nothing is kept, so nothing changed.
                    prop_assert_eq!(returned(&order, &kept, index), before);
                }
                Err(other) => prop_assert!(false, "unexpected {:?}", other),
                Ok(plan) => {
                    for l in plan.lines() {
                        prop_assert!(l.quantity >= 1);
                    }
                    let state = if step.refund {
                        let requested = RefundState::None.on(RefundEvent::Requested).unwrap();
                        match step.outcome {
                            0 => requested.on(RefundEvent::Declined).unwrap(),
                            1 => requested.on(RefundEvent::Unknown { passes: 1, review_after: 10 }).unwrap(),
                            _ => requested.on(RefundEvent::Succeeded).unwrap(),
                        }
                    } else {
                        RefundState::None
                    };
                    kept.push(Kept { shipment: index, plan, state });
                }
            }
            // The invariants, per shipment and per order.
            let mut order_refunded = 0;
            for (i, s) in shipments.iter().enumerate() {
                let r = returned(&order, &kept, i);
                for line in s.lines() {
                    prop_assert!(r.units(line.line_id) <= line.quantity, "returned more than shipped");
                }
                let captured = s.capture_amount().unwrap().minor();
                prop_assert!(r.refunded().minor() <= captured, "refunded {} of {}", r.refunded(), captured);
                prop_assert!(r.refunded().minor() >= 0);
                order_refunded += r.refunded().minor();
            }
            prop_assert!(order_refunded <= order.committed().minor());
        }
    }
}

#[test]
fn a_declined_refund_can_be_asked_again_and_a_refunded_one_never() {
    use RefundEvent::*;
    let declined = RefundState::None
        .on(Requested)
        .and_then(|s| s.on(Declined))
        .unwrap();
    assert!(!declined.holds_money());
    assert_eq!(declined.on(Requested), Ok(RefundState::Pending));
    let refunded = RefundState::Pending.on(Succeeded).unwrap();
    assert_eq!(
        refunded.on(Requested).unwrap_err().to_string(),
        "the return's refund is already refunded"
    );
    let review = RefundState::Pending
        .on(Unknown {
            passes: 10,
            review_after: 10,
        })
        .unwrap();
    assert_eq!(review, RefundState::NeedsReview);
    assert!(review.holds_money());
    assert_eq!(
        review.on(Unknown {
            passes: 11,
            review_after: 10
        }),
        Ok(RefundState::NeedsReview),
        "review sticks until the outcome is known"
    );
    assert_eq!(review.on(Succeeded), Ok(RefundState::Refunded));
}

#[test]
fn only_captured_shipments_have_returns_and_the_fee_comes_back_once() {
    let (order, shipments) = shipped(&[(10_000, 2)], 4_900, &[2]);
    assert_eq!(shipments.len(), 1);
    let first = &shipments[0];
    assert!(first.carries_shipping_fee());
    let one = |shipping| ReturnRequest {
        lines: Some(vec![ShipmentLine {
            line_id: LineId(1),
            quantity: 1,
        }]),
        shipping,
        ..ReturnRequest::default()
    };
    let nothing = Returned::nothing(&order);
    let plan = order
        .plan_return(first, &nothing, &one(Cost::FromShipment), true)
        .unwrap();
    assert_eq!(plan.refund().minor(), 14_900);
    let after = nothing.with(&plan, true).unwrap();
    // The fee came back with the first return: the second takes none.
    let again = order
        .plan_return(first, &after, &one(Cost::FromShipment), true)
        .unwrap();
    assert_eq!(
        (again.refund().minor(), again.takes_shipping_fee()),
        (10_000, false)
    );
    let all = after.with(&again, true).unwrap();
    assert_eq!(all.refunded(), first.capture_amount().unwrap());
    // A return created without a refund takes the fee all the same: it comes back once.
    let unrefunded = order
        .plan_return(first, &nothing, &one(Cost::FromShipment), false)
        .unwrap();
    let second = order
        .plan_return(
            first,
            &nothing.with(&unrefunded, false).unwrap(),
            &one(Cost::FromShipment),
            false,
        )
        .unwrap();
    assert!(unrefunded.takes_shipping_fee() && !second.takes_shipping_fee());
    // Nothing is left to return, and nothing to refund.
    assert!(matches!(
        order.plan_return(first, &all, &one(Cost::None), false),
        Err(ReturnError::NothingReturnable(_))
    ));
    // An uncaptured shipment has no returns.
    let uncaptured = Shipment::new(
        ShipmentId {
            order: OrderId(1),
            number: 9,
        },
        ShipmentState::Uncaptured,
        vec![ShipmentLine {
            line_id: LineId(1),
            quantity: 1,
        }],
        None,
        false,
        ShipmentFlags::default(),
    )
    .unwrap();
    assert_eq!(
        order.plan_return(&uncaptured, &nothing, &one(Cost::None), false),
        Err(ReturnError::NotCaptured(uncaptured.id()))
    );
    // Deductions beyond the value refuse the return.
    let costly = ReturnRequest {
        return_cost: Some(Money::from_minor(20_000, sek())),
        ..one(Cost::None)
    };
    assert!(matches!(
        order.plan_return(first, &nothing, &costly, true),
        Err(ReturnError::NegativeRefund(_))
    ));
}
