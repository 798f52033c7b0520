//! The domain's public calls refuse values that do not belong together, whoever builds them:
//! another team's code calls these directly, without the checks Consign's own planning makes
//! first, so each call checks what it relies on.

use consign_domain::*;

fn sek() -> Currency {
    "SEK".parse().unwrap()
}

fn money(text: &str) -> Money {
    Money::parse(text, sek()).unwrap()
}

/// Order `id`: three units at 33.33 and a fee of 0.01 (100.00 in all), authorised for 150.00.
fn sample_order(id: i64) -> Order {
    Order::new(
        OrderId(id),
        sek(),
        vec![OrderLine::new(
            LineId(1),
            "S",
            "N",
            money("33.33"),
            TaxRate(2500),
            3,
        )],
        money("0.01"),
        Some(PaymentAuthorization {
            provider: "sandbox".into(),
            reference: "a".into(),
            amount: money("150.00"),
        }),
    )
    .unwrap()
}

fn units(line: i64, quantity: u32) -> ShipmentLine {
    ShipmentLine {
        line_id: LineId(line),
        quantity,
    }
}

fn shipped(order: &mut Order, quantity: u32) -> Shipment {
    let plan = order
        .plan_shipment(&ShipmentRequest {
            lines: vec![units(1, quantity)],
            capture: true,
            deduct_previous_costs: false,
        })
        .unwrap();
    order.reserve(&plan).unwrap();
    let change = Shipment::planned(&plan, ShipmentFlags::default())
        .settle(Settlement::Captured, CaptureOrigin::AtCreation)
        .unwrap();
    order.apply(&change).unwrap();
    change.after().clone()
}

#[test]
fn a_capture_is_planned_only_for_units_on_the_order_and_out_of_capture() {
    let mut order = sample_order(1);
    shipped(&mut order, 1);
    // Two units are left out of capture: three would capture more than the order has left.
    assert!(matches!(
        order.plan_capture(&[units(1, 3)], false),
        Err(ShipmentError::NotEnoughShippable {
            requested: 3,
            shippable: 2,
            ..
        })
    ));
    assert_eq!(
        order.plan_capture(&[units(1, 2)], false).unwrap().amount(),
        money("66.66"),
        "the exact remainder"
    );
    // A line the order does not have, beside all that is left, is refused, not ignored.
    assert!(matches!(
        order.plan_capture(&[units(1, 2), units(99, 1)], false),
        Err(ShipmentError::UnknownLine { .. })
    ));
    assert!(matches!(
        order.preview_capture(&[units(1, 1), units(1, 1)], false),
        Err(ShipmentError::DuplicateLine(_))
    ));
    assert!(matches!(
        order.preview_capture(&[units(1, 0)], false),
        Err(ShipmentError::ZeroQuantity(_))
    ));
}

#[test]
fn a_change_in_another_currency_is_not_applied() {
    let mut order = sample_order(2);
    // Two units captured (66.67 committed), so the decline below fits every counter but the
    // currency.
    shipped(&mut order, 2);
    let eur: Currency = "EUR".parse().unwrap();
    let pending = Shipment::new(
        ShipmentId {
            order: OrderId(2),
            number: 2,
        },
        ShipmentState::CapturePending,
        vec![units(1, 1)],
        Some(Money::from_minor(1_000, eur)),
        false,
        ShipmentFlags::default(),
    )
    .unwrap();
    let declined = pending
        .settle(Settlement::Declined, CaptureOrigin::AtCreation)
        .unwrap();
    let before = order.clone();
    assert!(matches!(
        order.apply(&declined),
        Err(ShipmentError::DoesNotFit(_))
    ));
    assert_eq!(order, before);
}

#[test]
fn the_last_shipment_number_is_not_passed() {
    let near_the_end = sample_order(3)
        .with_progress(OrderProgress {
            committed: money("0.00"),
            shipping_fee_committed: false,
            next_shipment_number: ShipmentId::MAX_NUMBER,
        })
        .unwrap();
    let plan = near_the_end
        .plan_shipment(&ShipmentRequest {
            lines: vec![units(1, 1)],
            capture: false,
            deduct_previous_costs: false,
        })
        .unwrap();
    let mut reserved = near_the_end.clone();
    assert!(matches!(
        reserved.reserve(&plan),
        Err(ShipmentError::DoesNotFit(_))
    ));
    assert_eq!(reserved, near_the_end);
}

#[test]
fn a_refund_is_checked_against_the_shipment_it_returns_from() {
    let mut order = sample_order(4);
    let first = shipped(&mut order, 1);
    let second = shipped(&mut order, 2);
    let returned = Returned::nothing(&order);
    let plan = order
        .plan_return(&first, &returned, &ReturnRequest::default(), true)
        .unwrap();
    let ret = Return::created(first.id(), &plan);
    // Checked against the second shipment (which captured more), it is refused.
    assert!(matches!(
        ret.request_refund(&order, &second, &returned, &Providers::any()),
        Err(ReturnError::DoesNotFit(_))
    ));
    assert!(matches!(
        ret.request_refund(&order, &first, &returned, &Providers::any()),
        Ok(RefundStart::Started(_))
    ));
    // And a return is planned only on the order of the shipment it returns from.
    assert!(matches!(
        sample_order(5).plan_return(&first, &returned, &ReturnRequest::default(), true),
        Err(ReturnError::DoesNotFit(_))
    ));
}
