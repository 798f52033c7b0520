//! The state machine, pinned: every state x event pair, and the refusal each `Shipment` method
//! answers in each state (the text a Centra client reads).

use consign_domain::ShipmentEvent::*;
use consign_domain::ShipmentState::*;
use consign_domain::*;

/// The whole table: `Some(next)` where the workflow allows the event, `None` where it does not.
fn expected(state: ShipmentState, event: ShipmentEvent) -> Option<ShipmentState> {
    let row: [(ShipmentEvent, Option<ShipmentState>); 8] = match state {
        Uncaptured => [
            (CaptureStarted, Some(CapturePending)),
            (CaptureSucceeded, None),
            (CaptureDeclined, None),
            (CaptureFailed, None),
            (CaptureUnknown, None),
            (Delete, Some(Deleted)),
            (EditLines, Some(Uncaptured)),
            (SetFlags, Some(Uncaptured)),
        ],
        CapturePending => [
            (CaptureStarted, None),
            (CaptureSucceeded, Some(Captured)),
            (CaptureDeclined, Some(Voided)),
            (CaptureFailed, Some(Uncaptured)),
            (CaptureUnknown, Some(CapturePending)),
            (Delete, None),
            (EditLines, None),
            (SetFlags, None),
        ],
        Captured => [
            (CaptureStarted, None),
            (CaptureSucceeded, None),
            (CaptureDeclined, None),
            (CaptureFailed, None),
            (CaptureUnknown, None),
            (Delete, None),
            (EditLines, None),
            (SetFlags, Some(Captured)),
        ],
        Voided | Deleted => [
            (CaptureStarted, None),
            (CaptureSucceeded, None),
            (CaptureDeclined, None),
            (CaptureFailed, None),
            (CaptureUnknown, None),
            (Delete, None),
            (EditLines, None),
            (SetFlags, None),
        ],
    };
    row.into_iter()
        .find(|(e, _)| *e == event)
        .and_then(|(_, next)| next)
}

#[test]
fn every_state_and_event_pair_is_as_the_table_says() {
    let mut pairs = 0;
    for state in ALL_STATES {
        for event in ALL_EVENTS {
            let got = state.on(event);
            match expected(state, event) {
                Some(next) => assert_eq!(got, Ok(next), "{state:?} x {event:?}"),
                None => assert_eq!(
                    got,
                    Err(IllegalTransition { from: state, event }),
                    "{state:?} x {event:?}"
                ),
            }
            pairs += 1;
        }
    }
    assert_eq!(pairs, 40);
}

#[test]
fn state_names_round_trip() {
    for state in ALL_STATES {
        assert_eq!(ShipmentState::from_name(state.as_str()), Some(state));
    }
    assert_eq!(ShipmentState::from_name("shipped"), None);
}

fn sek() -> Currency {
    "SEK".parse().unwrap()
}

fn order() -> Order {
    let line = OrderLine::new(
        LineId(1),
        "S",
        "N",
        Money::from_minor(10_000, sek()),
        TaxRate(2500),
        4,
    )
    .with_progress(2, 1);
    Order::new(
        OrderId(5),
        sek(),
        vec![line],
        Money::zero(sek()),
        Some(PaymentAuthorization {
            provider: "sandbox".into(),
            reference: "a".into(),
            amount: Money::from_minor(40_000, sek()),
        }),
    )
    .unwrap()
    .with_progress(OrderProgress {
        committed: Money::from_minor(10_000, sek()),
        shipping_fee_committed: false,
        next_shipment_number: 3,
    })
    .unwrap()
}

fn shipment(state: ShipmentState, shipped: bool) -> Shipment {
    let amount = matches!(state, CapturePending | Captured | Voided)
        .then(|| Money::from_minor(10_000, sek()));
    Shipment::new(
        ShipmentId {
            order: OrderId(5),
            number: 2,
        },
        state,
        vec![ShipmentLine {
            line_id: LineId(1),
            quantity: 1,
        }],
        amount,
        false,
        ShipmentFlags {
            shipped,
            ..ShipmentFlags::default()
        },
    )
    .unwrap()
}

#[test]
fn each_method_refuses_with_centras_text_in_each_state() {
    let id = shipment(Uncaptured, false).id();
    let in_progress = ShipmentError::CaptureInProgress(id);
    let lines = [ShipmentLine {
        line_id: LineId(1),
        quantity: 2,
    }];
    let illegal = |from, event| ShipmentError::Illegal(IllegalTransition { from, event });
    let o = order();

    // delete
    assert!(shipment(Uncaptured, false).delete().is_ok());
    assert_eq!(
        shipment(CapturePending, false).delete(),
        Err(in_progress.clone())
    );
    let refused = shipment(Captured, false).delete().unwrap_err();
    assert_eq!(
        refused.to_string(),
        "shipment has invoices or creditnotes and could not be deleted."
    );
    assert_eq!(
        shipment(Voided, false).delete(),
        Err(illegal(Voided, Delete))
    );

    // update lines
    assert!(shipment(Uncaptured, false)
        .update(&o, Some(&lines), false)
        .is_ok());
    assert_eq!(
        shipment(Uncaptured, true).update(&o, Some(&lines), false),
        Err(ShipmentError::ShipmentSent)
    );
    assert_eq!(
        shipment(Captured, false)
            .update(&o, Some(&lines), false)
            .unwrap_err()
            .to_string(),
        "shipment is captured and can not be updated"
    );
    assert_eq!(
        shipment(CapturePending, false).update(&o, None, true),
        Err(in_progress.clone())
    );
    assert!(shipment(Captured, false).update(&o, None, true).is_ok());

    // complete
    let ship = Completion {
        good_to_go: true,
        shipped: true,
    };
    assert!(shipment(Captured, false)
        .complete(ship)
        .unwrap()
        .becomes_shipped());
    assert!(!shipment(Captured, true)
        .complete(ship)
        .unwrap()
        .becomes_shipped());
    assert_eq!(
        shipment(CapturePending, false).complete(ship),
        Err(in_progress.clone())
    );
    assert_eq!(
        shipment(Deleted, false).complete(ship),
        Err(illegal(Deleted, SetFlags))
    );

    // begin capture
    assert!(matches!(
        shipment(Uncaptured, false).begin_capture(&o),
        Ok(CaptureStart::Started { .. })
    ));
    assert_eq!(
        shipment(Captured, false).begin_capture(&o),
        Ok(CaptureStart::AlreadyCaptured)
    );
    assert_eq!(
        shipment(CapturePending, false).begin_capture(&o),
        Err(in_progress)
    );

    // settle and unknown outcomes: only a pending capture
    for state in [Uncaptured, Captured, Voided] {
        assert!(shipment(state, false)
            .settle(Settlement::Captured, CaptureOrigin::Later)
            .is_err());
        assert!(shipment(state, false).capture_unknown(1, 10).is_err());
    }
    let pending = shipment(CapturePending, false);
    assert!(
        !pending
            .capture_unknown(9, 10)
            .unwrap()
            .after()
            .flags()
            .needs_review
    );
    assert!(
        pending
            .capture_unknown(10, 10)
            .unwrap()
            .after()
            .flags()
            .needs_review
    );
}

#[test]
fn a_declined_capture_releases_what_it_held() {
    let pending = shipment(CapturePending, false);
    let voided = pending
        .settle(Settlement::Declined, CaptureOrigin::AtCreation)
        .unwrap();
    assert_eq!(voided.after().state(), Voided);
    assert_eq!(
        voided.line_moves(),
        &[LineMove {
            line_id: LineId(1),
            allocated: -1,
            in_capture: -1
        }]
    );
    assert_eq!(voided.committed_change(), -10_000);
    let failed = pending
        .settle(Settlement::Declined, CaptureOrigin::Later)
        .unwrap();
    assert_eq!(failed.after().state(), Uncaptured);
    assert_eq!(failed.after().capture_amount(), None);
    assert_eq!(failed.line_moves()[0].allocated, 0);
    let mut o = order();
    o.apply(&failed).unwrap();
    assert_eq!(o.committed().minor(), 0);
    assert_eq!(
        (o.lines()[0].allocated(), o.lines()[0].in_capture()),
        (2, 0)
    );
    // The same change again does not fit: nothing is left to release.
    let before = o.clone();
    assert!(matches!(
        o.apply(&failed),
        Err(ShipmentError::DoesNotFit(_))
    ));
    assert_eq!(o, before);
}

#[test]
fn stored_shipments_and_orders_that_cannot_exist_are_refused() {
    let id = ShipmentId {
        order: OrderId(5),
        number: 1,
    };
    let one = vec![ShipmentLine {
        line_id: LineId(1),
        quantity: 1,
    }];
    let flags = ShipmentFlags::default();
    assert!(Shipment::new(id, CapturePending, one.clone(), None, false, flags).is_err());
    assert!(Shipment::new(id, Uncaptured, Vec::new(), None, false, flags).is_err());
    let twice = vec![one[0], one[0]];
    assert!(Shipment::new(id, Uncaptured, twice, None, false, flags).is_err());
    let amount = Some(Money::from_minor(1, sek()));
    assert!(Shipment::new(id, Uncaptured, one, amount, false, flags).is_err());

    let line = |allocated, in_capture| {
        OrderLine::new(
            LineId(1),
            "S",
            "N",
            Money::from_minor(100, sek()),
            TaxRate(0),
            2,
        )
        .with_progress(allocated, in_capture)
    };
    let build = |lines| Order::new(OrderId(1), sek(), lines, Money::zero(sek()), None);
    assert!(build(vec![line(2, 2)]).is_ok());
    assert!(matches!(
        build(vec![line(3, 0)]),
        Err(OrderError::Inconsistent(_))
    ));
    assert!(matches!(
        build(vec![line(1, 2)]),
        Err(OrderError::Inconsistent(_))
    ));
    assert_eq!(
        build(vec![line(0, 0), line(0, 0)]),
        Err(OrderError::DuplicateLine(LineId(1)))
    );
    assert_eq!(build(Vec::new()), Err(OrderError::NoLines));
    let eur: Currency = "EUR".parse().unwrap();
    assert!(matches!(
        Order::new(OrderId(1), eur, vec![line(0, 0)], Money::zero(eur), None),
        Err(OrderError::Money(MoneyError::CurrencyMismatch(_, _)))
    ));
    let progress = |committed| OrderProgress {
        committed: Money::from_minor(committed, sek()),
        shipping_fee_committed: false,
        next_shipment_number: 1,
    };
    let order = build(vec![line(2, 2)]).unwrap();
    assert!(order.clone().with_progress(progress(200)).is_ok());
    assert!(order.clone().with_progress(progress(201)).is_err());
    assert!(order.with_progress(progress(-1)).is_err());
}

#[test]
fn a_capture_with_a_provider_that_is_not_enabled_is_refused_before_anything_changes() {
    let o = order();
    let stripe_only = Providers::only(["stripe"]);
    let refused = ShipmentError::ProviderNotEnabled {
        provider: "sandbox".into(),
        enabled: "stripe".into(),
    };
    assert_eq!(
        shipment(Uncaptured, false).begin_capture_with(&o, &stripe_only),
        Err(refused.clone())
    );
    let request = ShipmentRequest {
        lines: vec![ShipmentLine {
            line_id: LineId(1),
            quantity: 1,
        }],
        capture: true,
        deduct_previous_costs: false,
    };
    assert_eq!(o.plan_shipment_with(&request, &stripe_only), Err(refused));
    assert!(o
        .plan_shipment_with(&request, &Providers::only(["sandbox"]))
        .is_ok());
    // Without capture no provider is involved.
    let uncaptured = ShipmentRequest {
        capture: false,
        ..request
    };
    assert!(o.plan_shipment_with(&uncaptured, &stripe_only).is_ok());
    assert_eq!(
        Providers::only(["stripe"]).describe(),
        "stripe",
        "the message names what is enabled"
    );
}

/// A plan made on counters that moved before it was reserved (here: the first shipment's
/// capture declined, so the shipping fee is free again) is refused and changes nothing; planned
/// again, it captures what these counters say.
#[test]
fn a_plan_made_before_a_capture_was_declined_is_refused_and_changes_nothing() {
    let sek: Currency = "SEK".parse().unwrap();
    let money = |text| Money::parse(text, sek).unwrap();
    let mut order = Order::new(
        OrderId(8),
        sek,
        vec![OrderLine::new(
            LineId(1),
            "S",
            "N",
            money("100.00"),
            TaxRate(2500),
            3,
        )],
        money("10.00"),
        Some(PaymentAuthorization {
            provider: "sandbox".into(),
            reference: "a".into(),
            amount: money("310.00"),
        }),
    )
    .unwrap();
    let one = ShipmentRequest {
        capture: true,
        deduct_previous_costs: false,
        lines: vec![ShipmentLine {
            line_id: LineId(1),
            quantity: 1,
        }],
    };
    let first = order.plan_shipment(&one).unwrap();
    assert_eq!(first.capture().unwrap().amount(), money("110.00"));
    order.reserve(&first).unwrap();
    // Planned while the first's capture (which carries the fee) is pending: without the fee.
    let second = order.plan_shipment(&one).unwrap();
    assert_eq!(second.capture().unwrap().amount(), money("100.00"));
    let declined = Shipment::planned(&first, ShipmentFlags::default())
        .settle(Settlement::Declined, CaptureOrigin::AtCreation)
        .unwrap();
    order.apply(&declined).unwrap();
    let before = order.clone();
    assert!(matches!(
        order.reserve(&second),
        Err(ShipmentError::DoesNotFit(_))
    ));
    assert_eq!(order, before);
    let again = order.plan_shipment(&one).unwrap();
    assert_eq!(again.id(), second.id(), "the same number");
    assert_eq!(again.capture().unwrap().amount(), money("110.00"));
    order.reserve(&again).unwrap();
    assert_eq!(order.committed(), money("110.00"));
}
