//! A whole order through partial shipments, a declined capture, an edit and a deletion, with
//! nothing but the domain crate: every change is decided by `Shipment` or `Order` and applied
//! with `Order::apply`, as Consign's stores do.
//!
//! Run with `cargo run -p consign-domain --example lifecycle`.

use consign_domain::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sek: Currency = "SEK".parse()?;
    let money = |text: &str| Money::parse(text, sek);
    let mut order = Order::new(
        OrderId(83651),
        sek,
        vec![
            OrderLine::new(
                LineId(1),
                "TSHIRT-M",
                "T-shirt",
                money("249.50")?,
                TaxRate(2500),
                3,
            ),
            OrderLine::new(LineId(2), "CAP", "Cap", money("199.00")?, TaxRate(2500), 1),
        ],
        money("49.00")?,
        Some(PaymentAuthorization {
            provider: "sandbox".into(),
            reference: "auth-83651".into(),
            amount: money("996.50")?,
        }),
    )?;
    println!(
        "order {} total {} {}",
        order.id(),
        order.total()?,
        order.currency()
    );
    let mut captured = Vec::new();

    // 1. A partial shipment, captured at once: one T-shirt plus the shipping fee.
    let plan = order.plan_shipment(&request(&[(1, 1)], true))?;
    order.reserve(&plan)?;
    let change = Shipment::planned(&plan, ShipmentFlags::default())
        .settle(Settlement::Captured, CaptureOrigin::AtCreation)?;
    order.apply(&change)?;
    report("shipment 1 captured", &order, change.after());
    captured.push(change.after().clone());

    // 2. A capture the provider declines: the shipment is voided, its units shippable again.
    let plan = order.plan_shipment(&request(&[(2, 1)], true))?;
    order.reserve(&plan)?;
    let change = Shipment::planned(&plan, ShipmentFlags::default())
        .settle(Settlement::Declined, CaptureOrigin::AtCreation)?;
    order.apply(&change)?;
    report("shipment 2 declined", &order, change.after());

    // 3. An uncaptured shipment, edited, then deleted: captured shipments can not be.
    let plan = order.plan_shipment(&request(&[(1, 1)], false))?;
    order.reserve(&plan)?;
    let shipment = Shipment::planned(&plan, ShipmentFlags::default());
    let edit = shipment.update(&order, Some(&lines(&[(1, 2)])), true)?;
    order.apply(&edit)?;
    report("shipment 3 edited to two T-shirts", &order, edit.after());
    let deletion = edit.after().delete()?;
    order.apply(&deletion)?;
    report("shipment 3 deleted", &order, deletion.after());
    println!(
        "  deleting shipment 1 is refused: {}",
        captured[0].delete().unwrap_err()
    );

    // 4. Asking for more than is left is refused, and changes nothing.
    let refused = order.plan_shipment(&request(&[(1, 3)], true)).unwrap_err();
    println!("  three more T-shirts are refused: {refused}");

    // 5. Uncaptured, completed as shipped, then captured later.
    let plan = order.plan_shipment(&request(&[(1, 1)], false))?;
    order.reserve(&plan)?;
    let shipped = Shipment::planned(&plan, ShipmentFlags::default()).complete(Completion {
        good_to_go: true,
        shipped: true,
    })?;
    order.apply(&shipped)?;
    let CaptureStart::Started { change, .. } = shipped.after().begin_capture(&order)? else {
        unreachable!("an uncaptured shipment starts a capture");
    };
    order.apply(&change)?;
    let change = change
        .after()
        .settle(Settlement::Captured, CaptureOrigin::Later)?;
    order.apply(&change)?;
    report("shipment 5 shipped, captured later", &order, change.after());
    captured.push(change.after().clone());

    // 6. The rest of the order: its capture is the exact remainder of the total.
    let plan = order.plan_shipment(&request(&[(1, 1), (2, 1)], true))?;
    order.reserve(&plan)?;
    let change = Shipment::planned(&plan, ShipmentFlags::default())
        .settle(Settlement::Captured, CaptureOrigin::AtCreation)?;
    order.apply(&change)?;
    report("shipment 6 completes the order", &order, change.after());
    captured.push(change.after().clone());

    let sum = captured.iter().try_fold(Money::zero(sek), |sum, s| {
        sum.plus(s.capture_amount().unwrap_or(Money::zero(sek)))
    })?;
    println!(
        "captured {sum} of {} in {} captures",
        order.total()?,
        captured.len()
    );
    assert_eq!(sum, order.total()?);
    assert!(order.fully_in_capture());
    Ok(())
}

fn lines(pairs: &[(i64, u32)]) -> Vec<ShipmentLine> {
    pairs
        .iter()
        .map(|&(line, quantity)| ShipmentLine {
            line_id: LineId(line),
            quantity,
        })
        .collect()
}

fn request(pairs: &[(i64, u32)], capture: bool) -> ShipmentRequest {
    ShipmentRequest {
        lines: lines(pairs),
        capture,
        deduct_previous_costs: false,
    }
}

fn report(what: &str, order: &Order, shipment: &Shipment) {
    let amount = shipment
        .capture_amount()
        .map_or_else(|| "-".to_owned(), |m| m.to_string());
    println!(
        "{what}: {} is {}, capture {amount}; order committed {}, shippable {:?}",
        shipment.id(),
        shipment.state().as_str(),
        order.committed(),
        order
            .lines()
            .iter()
            .map(|l| (l.sku().to_owned(), l.shippable()))
            .collect::<Vec<_>>()
    );
}
