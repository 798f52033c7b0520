//! The store port's contract, run against every backend: SQLite always, PostgreSQL when one is
//! reachable (`CONSIGN_TEST_POSTGRES`, default `postgres://postgres@127.0.0.1:5432`); with
//! `CI=true` a missing PostgreSQL fails the run instead of skipping.

mod support;

use consign_domain::*;
use consign_ports::*;
use support::{backends, sek, TestDb};

fn import(id: Option<i64>, email: &str, reference: &str) -> OrderImport {
    OrderImport {
        id: id.map(OrderId),
        currency: sek(),
        customer: Customer {
            email: email.into(),
            first_name: "Anna".into(),
            last_name: "Svensson".into(),
            address: Address {
                address: "Storgatan 1".into(),
                zipcode: "11122".into(),
                city: "Stockholm".into(),
                country: "SE".into(),
            },
        },
        lines: vec![
            LineImport {
                sku: "TSHIRT-M".into(),
                name: "T-shirt".into(),
                unit_price: Money::from_minor(24_950, sek()),
                tax_rate: TaxRate(2500),
                quantity: 2,
            },
            LineImport {
                sku: "CAP".into(),
                name: "Cap".into(),
                unit_price: Money::from_minor(19_900, sek()),
                tax_rate: TaxRate(2500),
                quantity: 1,
            },
        ],
        shipping_fee: Money::from_minor(4_900, sek()),
        payment: Some(PaymentAuthorization {
            provider: "sandbox".into(),
            reference: reference.into(),
            amount: Money::from_minor(74_700, sek()),
        }),
    }
}

fn ship(lines: &[(i64, u32)], capture: bool) -> ShipmentRequest {
    ShipmentRequest {
        lines: lines
            .iter()
            .map(|&(line_id, quantity)| ShipmentLine {
                line_id: LineId(line_id),
                quantity,
            })
            .collect(),
        capture,
        deduct_previous_costs: false,
    }
}

/// Imports `order` at `at`, without a key: the order as stored.
async fn imported_as(t: &TestDb, order: OrderImport, at: i64) -> Order {
    t.db.import_order(order, None, Timestamp(at))
        .await
        .unwrap()
        .order
}

/// Reserves a shipment of `lines` on `order` that captures, at `at`: its pending attempt.
async fn reserve_capture(
    t: &TestDb,
    order: OrderId,
    lines: &[(i64, u32)],
    at: i64,
) -> CaptureAttempt {
    t.db.reserve_shipment(
        order,
        ship(lines, true),
        Providers::any(),
        ShipmentDetails::default(),
        None,
        Timestamp(at),
    )
    .await
    .unwrap()
    .attempt
    .unwrap()
}

async fn each_backend<F, Fut>(test: F)
where
    F: Fn(TestDb) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for db in backends().await {
        test(db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_assigns_unique_line_ids_customer_per_email_and_refuses_a_used_order_id() {
    each_backend(|t| async move {
        let first =
            t.db.import_order(
                import(Some(83651), "anna@example.com", "a"),
                None,
                Timestamp(1),
            )
            .await
            .unwrap();
        let second =
            t.db.import_order(import(None, "ANNA@example.com", "b"), None, Timestamp(2))
                .await
                .unwrap();
        let third =
            t.db.import_order(import(None, "bo@example.com", "c"), None, Timestamp(3))
                .await
                .unwrap();
        let ids: Vec<i64> = [&first, &second, &third]
            .iter()
            .flat_map(|o| o.order.lines().iter().map(|l| l.line_id().0))
            .collect();
        let mut unique = ids.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(ids.len(), 6);
        assert_eq!(unique.len(), 6, "{}: line ids {ids:?}", t.name);
        assert_eq!(first.customer_id, second.customer_id, "{}", t.name);
        assert_ne!(first.customer_id, third.customer_id, "{}", t.name);
        assert_ne!(second.order.id(), OrderId(83651));
        let before = t.db.dump().await.unwrap();
        let again =
            t.db.import_order(
                import(Some(83651), "x@example.com", "d"),
                None,
                Timestamp(4),
            )
            .await;
        assert_eq!(
            again.unwrap_err(),
            StoreError::OrderExists(OrderId(83651)),
            "{}",
            t.name
        );
        assert_eq!(
            t.db.dump().await.unwrap(),
            before,
            "{}: a refused import wrote",
            t.name
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserve_then_settle_captured_moves_counters_and_lists_the_shipment() {
    each_backend(|t| async move {
        let order = imported(&t, 10).await;
        let l1 = order.lines()[0].line_id().0;
        let reservation =
            t.db.reserve_shipment(
                order.id(),
                ship(&[(l1, 1)], true),
                Providers::any(),
                ShipmentDetails::default(),
                None,
                Timestamp(5),
            )
            .await
            .unwrap();
        assert_eq!(reservation.shipment.id.to_string(), "10-1");
        assert_eq!(reservation.shipment.state, ShipmentState::CapturePending);
        let attempt = reservation.attempt.unwrap();
        assert_eq!(attempt.amount.minor(), 24_950 + 4_900);
        assert!(!attempt.final_capture);
        assert_eq!(
            t.db.pending_captures(Timestamp(6)).await.unwrap(),
            vec![attempt.clone()]
        );
        assert!(
            t.db.pending_captures(Timestamp(5))
                .await
                .unwrap()
                .is_empty(),
            "{}: age filter",
            t.name
        );
        let settled =
            t.db.settle_capture(
                &attempt,
                SettleOutcome::Captured {
                    reference: "ch_1".into(),
                },
                Timestamp(7),
            )
            .await
            .unwrap()
            .shipment;
        assert_eq!(settled.state, ShipmentState::Captured);
        assert_eq!(settled.capture_reference.as_deref(), Some("ch_1"));
        // Settling the same attempt again changes nothing, whatever it says.
        let again =
            t.db.settle_capture(
                &attempt,
                SettleOutcome::Declined {
                    code: "x".into(),
                    message: "y".into(),
                },
                Timestamp(8),
            )
            .await
            .unwrap()
            .shipment;
        assert_eq!(again.state, ShipmentState::Captured, "{}", t.name);
        assert!(t
            .db
            .pending_captures(Timestamp(100))
            .await
            .unwrap()
            .is_empty());
        let view = &t
            .db
            .list_orders(OrderQuery {
                order: Some(order.id()),
                ..OrderQuery::default()
            })
            .await
            .unwrap()[0];
        assert_eq!(view.order.lines()[0].allocated(), 1);
        assert_eq!(view.order.lines()[0].in_capture(), 1);
        assert_eq!(view.order.committed().minor(), 29_850);
        assert!(view.order.shipping_fee_committed());
        assert_eq!(view.shipments.len(), 1);
        assert_eq!(
            view.shipments[0].lines,
            vec![ShipmentLine {
                line_id: LineId(l1),
                quantity: 1
            }]
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_reservation_writes_nothing() {
    each_backend(|t| async move {
        let order = imported(&t, 11).await;
        let (l1, l2) = (order.lines()[0].line_id().0, order.lines()[1].line_id().0);
        let before = t.db.dump().await.unwrap();
        let refusals = [
            (
                OrderId(404),
                ship(&[(l1, 1)], true),
                StoreError::OrderNotFound(OrderId(404)),
            ),
            (
                order.id(),
                ship(&[(l1, 3)], true),
                StoreError::Rejected(ShipmentError::NotEnoughShippable {
                    line: LineId(l1),
                    requested: 3,
                    shippable: 2,
                    ordered: 2,
                }),
            ),
            (
                order.id(),
                ship(&[(l2, 1), (9_999, 1)], true),
                StoreError::Rejected(ShipmentError::UnknownLine {
                    order: order.id(),
                    line: LineId(9_999),
                }),
            ),
            (
                order.id(),
                ship(&[], true),
                StoreError::Rejected(ShipmentError::NoProducts),
            ),
        ];
        for (id, request, expected) in refusals {
            let error =
                t.db.reserve_shipment(
                    id,
                    request,
                    Providers::any(),
                    ShipmentDetails::default(),
                    None,
                    Timestamp(2),
                )
                .await
                .unwrap_err();
            assert_eq!(error, expected, "{}", t.name);
            assert_eq!(
                t.db.dump().await.unwrap(),
                before,
                "{}: a refusal wrote",
                t.name
            );
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decline_voids_releases_and_never_reuses_the_number() {
    each_backend(|t| async move {
        let order = imported(&t, 12).await;
        let l1 = order.lines()[0].line_id().0;
        let first =
            t.db.reserve_shipment(
                order.id(),
                ship(&[(l1, 2)], true),
                Providers::any(),
                ShipmentDetails::default(),
                None,
                Timestamp(2),
            )
            .await
            .unwrap();
        let voided =
            t.db.settle_capture(
                first.attempt.as_ref().unwrap(),
                SettleOutcome::Declined {
                    code: "card_declined".into(),
                    message: "no".into(),
                },
                Timestamp(3),
            )
            .await
            .unwrap()
            .shipment;
        assert_eq!(voided.state, ShipmentState::Voided);
        let view = &t
            .db
            .list_orders(OrderQuery {
                order: Some(order.id()),
                ..OrderQuery::default()
            })
            .await
            .unwrap()[0];
        assert!(
            view.shipments.is_empty(),
            "{}: voided shipments are not listed",
            t.name
        );
        assert_eq!(
            (
                view.order.lines()[0].allocated(),
                view.order.lines()[0].in_capture()
            ),
            (0, 0)
        );
        assert_eq!(view.order.committed().minor(), 0);
        assert!(!view.order.shipping_fee_committed());
        let second =
            t.db.reserve_shipment(
                order.id(),
                ship(&[(l1, 2)], false),
                Providers::any(),
                ShipmentDetails::default(),
                None,
                Timestamp(4),
            )
            .await
            .unwrap();
        assert_eq!(second.shipment.id.to_string(), "12-2", "{}", t.name);
        assert_eq!(second.shipment.state, ShipmentState::Uncaptured);
        assert!(second.attempt.is_none());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reservations_never_over_allocate() {
    each_backend(|t| async move {
        let order = imported(&t, 13).await;
        let l1 = order.lines()[0].line_id().0;
        let mut tasks = Vec::new();
        for i in 0..30 {
            let db = t.db.clone();
            tasks.push(tokio::spawn(async move {
                db.reserve_shipment(
                    OrderId(13),
                    ship(&[(l1, 1)], i % 2 == 0),
                    Providers::any(),
                    ShipmentDetails::default(),
                    None,
                    Timestamp(2),
                )
                .await
            }));
        }
        let mut ok = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(_) => ok += 1,
                Err(StoreError::Rejected(ShipmentError::NotEnoughShippable { .. })) => {}
                Err(other) => panic!("{}: unexpected {other:?}", t.name),
            }
        }
        assert_eq!(ok, 2, "{}", t.name);
        let view = &t
            .db
            .list_orders(OrderQuery {
                order: Some(order.id()),
                ..OrderQuery::default()
            })
            .await
            .unwrap()[0];
        assert_eq!(view.order.lines()[0].allocated(), 2);
        assert_eq!(view.shipments.len(), 2);
    })
    .await;
}

/// Many writers on one order at once (on PostgreSQL most lose the compare-and-set, plan again
/// and some fall back to the lock): every reservation is written exactly once, numbers are
/// unique and dense, and the counters equal what the shipments hold.
// Eight runtime threads: PostgreSQL writes run on the calling thread, so the threads are how
// many reservations contend at once (more than a two-core server's workers).
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn a_hot_order_takes_every_reservation_once_with_consistent_counters() {
    each_backend(|t| async move {
        let mut big = import(Some(14), "hot@example.com", "auth");
        big.lines[0].quantity = 1_000;
        big.payment.as_mut().unwrap().amount = Money::from_minor(100_000_000, sek());
        let order =
            t.db.import_order(big, None, Timestamp(1))
                .await
                .unwrap()
                .order;
        let l1 = order.lines()[0].line_id().0;
        let mut tasks = Vec::new();
        for i in 0..40 {
            let db = t.db.clone();
            tasks.push(tokio::spawn(async move {
                db.reserve_shipment(
                    OrderId(14),
                    ship(&[(l1, 1 + i % 2)], i % 3 != 0),
                    Providers::any(),
                    ShipmentDetails::default(),
                    None,
                    Timestamp(2),
                )
                .await
            }));
        }
        let mut units = 0;
        let mut committed = 0;
        for task in tasks {
            let reservation = task
                .await
                .unwrap()
                .unwrap_or_else(|e| panic!("{}: {e:?}", t.name));
            units += reservation.shipment.lines[0].quantity;
            committed += reservation.shipment.capture_amount.map_or(0, |m| m.minor());
        }
        let view = &t
            .db
            .list_orders(OrderQuery {
                order: Some(order.id()),
                ..OrderQuery::default()
            })
            .await
            .unwrap()[0];
        let mut numbers: Vec<u32> = view.shipments.iter().map(|s| s.id.number).collect();
        numbers.sort_unstable();
        assert_eq!(numbers, (1..=40).collect::<Vec<_>>(), "{}", t.name);
        let held: u32 = view.shipments.iter().map(|s| s.lines[0].quantity).sum();
        assert_eq!(
            (held, view.order.lines()[0].allocated()),
            (units, units),
            "{}",
            t.name
        );
        assert_eq!(view.order.committed().minor(), committed, "{}", t.name);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_orders_filters_and_pages_oldest_first() {
    each_backend(|t| async move {
        for (i, email) in ["a@x.se", "b@x.se", "a@x.se", "c@x.se"].iter().enumerate() {
            t.db.import_order(
                import(Some(100 + i as i64), email, "auth"),
                None,
                Timestamp(10 * i as i64),
            )
            .await
            .unwrap();
        }
        let ids = |views: Vec<OrderView>| views.iter().map(|v| v.order.id().0).collect::<Vec<_>>();
        let all = t.db.list_orders(OrderQuery::default()).await.unwrap();
        assert_eq!(ids(all.clone()), vec![100, 101, 102, 103], "{}", t.name);
        let page =
            t.db.list_orders(OrderQuery {
                limit: 2,
                offset: 1,
                ..OrderQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(ids(page), vec![101, 102]);
        let customer = all[0].customer_id;
        let mine =
            t.db.list_orders(OrderQuery {
                customer_id: Some(customer),
                ..OrderQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(ids(mine), vec![100, 102]);
        let window =
            t.db.list_orders(OrderQuery {
                newer_than: Some(Timestamp(10)),
                older_than: Some(Timestamp(30)),
                ..OrderQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(ids(window), vec![101, 102]);
    })
    .await;
}

/// A page read in parts: each part goes on after the order the last one ended with, by import
/// time then id, so orders imported in the same millisecond are neither repeated nor skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_orders_after_an_order_goes_on_from_it() {
    each_backend(|t| async move {
        for (id, at) in [(203, 10), (201, 20), (202, 20), (200, 30)] {
            t.db.import_order(import(Some(id), "a@x.se", "auth"), None, Timestamp(at))
                .await
                .unwrap();
        }
        let after = |at: i64, id: i64, limit: u32| {
            let db = t.db.clone();
            async move {
                db.list_orders(OrderQuery {
                    after: Some((Timestamp(at), OrderId(id))),
                    limit,
                    ..OrderQuery::default()
                })
                .await
                .unwrap()
                .iter()
                .map(|v| v.order.id().0)
                .collect::<Vec<_>>()
            }
        };
        assert_eq!(after(0, 0, 20).await, [203, 201, 202, 200], "{}", t.name);
        assert_eq!(after(10, 203, 20).await, [201, 202, 200], "{}", t.name);
        assert_eq!(after(20, 201, 20).await, [202, 200], "{}", t.name);
        assert_eq!(after(20, 202, 20).await, [200], "{}", t.name);
        assert_eq!(after(30, 200, 20).await, Vec::<i64>::new(), "{}", t.name);
        assert_eq!(after(10, 203, 1).await, [201], "{}", t.name);
    })
    .await;
}

/// A listing bounded by shipments stops before the order that would take it past the bound,
/// counting live shipments only, and always lists its first order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_orders_bounded_by_shipments_stops_before_the_order_past_the_bound() {
    each_backend(|t| async move {
        // Live shipments: 301 two (and one deleted), 302 three, 303 none, 304 one (and one
        // deleted).
        for (id, at, live, deleted) in [
            (301, 10, 2, 1),
            (302, 20, 3, 0),
            (303, 30, 0, 0),
            (304, 40, 1, 1),
        ] {
            let order =
                t.db.import_order(import(Some(id), "a@x.se", "auth"), None, Timestamp(at))
                    .await
                    .unwrap()
                    .order;
            let (l1, l2) = (order.lines()[0].line_id().0, order.lines()[1].line_id().0);
            let units = [l1, l1, l2];
            for (n, line) in units.iter().take(live + deleted).enumerate() {
                let shipment =
                    t.db.reserve_shipment(
                        order.id(),
                        ship(&[(*line, 1)], false),
                        Providers::any(),
                        ShipmentDetails::default(),
                        None,
                        Timestamp(at + 1),
                    )
                    .await
                    .unwrap()
                    .shipment;
                if n >= live {
                    t.db.delete_shipment(shipment.id, None, None, Timestamp(at + 2))
                        .await
                        .unwrap();
                }
            }
        }
        let listed = |after: Option<(i64, i64)>, most: Option<u32>| {
            let db = t.db.clone();
            async move {
                db.list_orders(OrderQuery {
                    after: after.map(|(at, id)| (Timestamp(at), OrderId(id))),
                    shipments_at_most: most,
                    ..OrderQuery::default()
                })
                .await
                .unwrap()
                .iter()
                .map(|v| (v.order.id().0, v.shipments.len()))
                .collect::<Vec<_>>()
            }
        };
        let name = t.name;
        let all = [(301, 2), (302, 3), (303, 0), (304, 1)];
        assert_eq!(listed(None, None).await, all, "{name}");
        assert_eq!(listed(None, Some(6)).await, all, "{name}");
        assert_eq!(listed(None, Some(5)).await, all[..3], "{name}");
        assert_eq!(listed(None, Some(4)).await, all[..1], "{name}");
        assert_eq!(
            listed(None, Some(0)).await,
            all[..1],
            "{name}: the first order always"
        );
        // 304's deleted shipment does not count.
        assert_eq!(listed(Some((20, 302)), Some(1)).await, all[2..], "{name}");
        assert_eq!(listed(Some((10, 301)), Some(2)).await, all[1..2], "{name}");
    })
    .await;
}

/// An order of `units` units of one line, whose shipments [`reserve_one_by_one`] makes.
async fn one_line_order(t: &TestDb, id: i64, units: u32) -> (OrderId, LineId) {
    let mut bulk = import(Some(id), "a@x.se", "auth");
    bulk.lines[0].quantity = units;
    bulk.payment.as_mut().unwrap().amount =
        Money::from_minor(i64::from(units) * 24_950 + 19_900 + 4_900, sek());
    let order =
        t.db.import_order(bulk, None, Timestamp(1))
            .await
            .unwrap()
            .order;
    (order.id(), order.lines()[0].line_id())
}

/// Reserves `units` shipments of one unit of `line` each, one after the other, in a task.
fn reserve_one_by_one(
    t: &TestDb,
    id: OrderId,
    line: LineId,
    units: u32,
) -> tokio::task::JoinHandle<()> {
    let db = t.db.clone();
    tokio::spawn(async move {
        for n in 0..units {
            db.reserve_shipment(
                id,
                ship(&[(line.0, 1)], false),
                Providers::any(),
                ShipmentDetails::default(),
                None,
                Timestamp(2 + i64::from(n)),
            )
            .await
            .unwrap();
        }
    })
}

/// Units of `line` in `shipments`.
fn units_of<'a>(line: LineId, shipments: impl IntoIterator<Item = &'a ShipmentView>) -> u32 {
    shipments
        .into_iter()
        .flat_map(|s| &s.lines)
        .filter(|l| l.line_id == line)
        .map(|l| l.quantity)
        .sum()
}

/// Lists with `list` while [`reserve_one_by_one`] commits 300 reservations on one order, and
/// fails if fewer than 10 listings ran or any was torn: `list` answers each listing's
/// disagreements between an order's allocated units and its listed shipments' units.
async fn no_listing_torn_while_reserving<F, Fut>(t: &TestDb, id: i64, list: F)
where
    F: Fn(OrderId, LineId) -> Fut,
    Fut: std::future::Future<Output = Vec<(u32, u32)>>,
{
    const UNITS: u32 = 300;
    let (order, line) = one_line_order(t, id, UNITS).await;
    let reserving = reserve_one_by_one(t, order, line, UNITS);
    let (mut listings, mut torn) = (0, Vec::new());
    while !reserving.is_finished() {
        let disagreements = list(order, line).await;
        if !disagreements.is_empty() {
            torn.push(disagreements);
        }
        listings += 1;
    }
    reserving.await.unwrap();
    let name = t.name;
    assert!(
        listings >= 10,
        "{name}: only {listings} listings ran beside the writes"
    );
    assert!(
        torn.is_empty(),
        "{name}: {} of {listings} listings disagree (allocated, in shipments): {:?}",
        torn.len(),
        &torn[..torn.len().min(5)]
    );
}

/// A listing reads an order, its lines and its shipments in one snapshot: while reservations
/// commit, every listed line's allocated units are the units of its listed live shipments.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_sees_an_order_and_its_shipments_as_of_one_moment() {
    each_backend(|t| async move {
        no_listing_torn_while_reserving(&t, 401, |order, line| {
            let db = t.db.clone();
            async move {
                let views = db
                    .list_orders(OrderQuery {
                        order: Some(order),
                        ..OrderQuery::default()
                    })
                    .await
                    .unwrap();
                let allocated = views[0].order.lines()[0].allocated();
                let in_shipments = units_of(line, &views[0].shipments);
                if allocated == in_shipments {
                    vec![]
                } else {
                    vec![(allocated, in_shipments)]
                }
            }
        })
        .await;
    })
    .await;
}

/// A page of shipments is read in one snapshot too: while reservations commit, every listed
/// shipment's order has allocated exactly the units of the shipments listed beside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_of_shipments_sees_their_order_as_of_one_moment() {
    each_backend(|t| async move {
        no_listing_torn_while_reserving(&t, 402, |order, line| {
            let db = t.db.clone();
            async move {
                let page = db
                    .list_shipments(ShipmentQuery {
                        status: ShipmentStatus::InProgress,
                        order: Some(order),
                        customer_id: None,
                        newer_than: None,
                        older_than: None,
                        limit: 1_000,
                        offset: 0,
                    })
                    .await
                    .unwrap();
                let in_shipments = units_of(line, page.iter().map(|l| &l.shipment));
                page.iter()
                    .map(|l| (l.order.order.lines()[0].allocated(), in_shipments))
                    .filter(|(allocated, listed)| allocated != listed)
                    .collect()
            }
        })
        .await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_are_stored_hashed_and_revocable() {
    each_backend(|t| async move {
        let id =
            t.db.add_key("csk_secret-key-value", "warehouse", Timestamp(1))
                .await
                .unwrap();
        assert_eq!(
            t.db.verify_key("csk_secret-key-value").await.unwrap(),
            Some(id)
        );
        assert_eq!(t.db.verify_key("csk_secret-key-valuf").await.unwrap(), None);
        let keys = t.db.list_keys().await.unwrap();
        assert_eq!(keys[0].prefix, "csk_secr");
        assert!(t.db.revoke_key(id, Timestamp(2)).await.unwrap());
        assert!(!t.db.revoke_key(id, Timestamp(3)).await.unwrap());
        assert_eq!(
            t.db.verify_key("csk_secret-key-value").await.unwrap(),
            None,
            "{}",
            t.name
        );
        let stored = t.raw_key_hashes().await;
        assert_eq!(stored.len(), 1);
        assert!(
            !stored[0].contains("secret"),
            "{}: key stored in clear",
            t.name
        );
        assert_eq!(stored[0].len(), 64);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_unknown_for_too_many_passes_needs_review_until_it_settles() {
    each_backend(|t| async move {
        // The store's figures (read for `/metrics`) count what is open: the attempt while it
        // is pending, unknown or waiting for review, the shipment while it is in the review
        // queue, and neither once the capture has settled.
        let figures = |db: consign_db::Database| async move {
            let stats = db.stats().await.unwrap();
            (stats.open_attempts_by_state, stats.shipments_needing_review)
        };
        let open = |state: &str| vec![(state.to_owned(), 1)];
        let order = imported(&t, 14).await;
        let l1 = order.lines()[0].line_id().0;
        let attempt = reserve_capture(&t, order.id(), &[(l1, 1)], 2).await;
        assert_eq!(
            figures(t.db.clone()).await,
            (open("pending"), 0),
            "{}",
            t.name
        );
        for pass in 1..=3 {
            let review =
                t.db.record_unknown(&attempt, "timeout", Timestamp(10 + pass), 3)
                    .await
                    .unwrap();
            assert_eq!(review, pass == 3, "{}: pass {pass}", t.name);
            let expected = match review {
                false => (open("unknown"), 0),
                true => (open("needs_review"), 1),
            };
            assert_eq!(
                figures(t.db.clone()).await,
                expected,
                "{}: pass {pass}",
                t.name
            );
        }
        let listed = |db: consign_db::Database| async move {
            db.list_orders(OrderQuery {
                order: Some(OrderId(14)),
                ..OrderQuery::default()
            })
            .await
            .unwrap()[0]
                .shipments[0]
                .clone()
        };
        assert!(listed(t.db.clone()).await.needs_review, "{}", t.name);
        // Still replayed by recovery, by when it was last tried.
        assert!(t
            .db
            .pending_captures(Timestamp(13))
            .await
            .unwrap()
            .is_empty());
        assert_eq!(t.db.pending_captures(Timestamp(14)).await.unwrap().len(), 1);
        t.db.settle_capture(
            &attempt,
            SettleOutcome::Captured {
                reference: "ch".into(),
            },
            Timestamp(20),
        )
        .await
        .unwrap();
        let shipment = listed(t.db.clone()).await;
        assert_eq!(shipment.state, ShipmentState::Captured, "{}", t.name);
        assert!(!shipment.needs_review);
        assert_eq!(figures(t.db.clone()).await, (vec![], 0), "{}", t.name);
        assert!(
            !t.db
                .record_unknown(&attempt, "late", Timestamp(21), 3)
                .await
                .unwrap(),
            "a settled attempt is left alone"
        );
    })
    .await;
}

/// Order `order_id` (two lines, paid), imported at time 1.
async fn imported(t: &TestDb, order_id: i64) -> Order {
    imported_as(t, import(Some(order_id), "a@example.com", "auth"), 1).await
}

/// An import whose idempotency key already imported an order (the first run's answer lost with
/// its process, the key taken over by the retry) answers that order: one order, one id, never a
/// second order holding the same authorisation. Without a key, an import makes a new order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_whose_key_already_imported_answers_that_order() {
    each_backend(|t| async move {
        let order = import(None, "k@example.com", "auth-keyed");
        let key = Some("7:import-1".to_owned());
        let first =
            t.db.import_order(order.clone(), key.clone(), Timestamp(1))
                .await
                .unwrap();
        let again =
            t.db.import_order(order.clone(), key, Timestamp(2))
                .await
                .unwrap();
        assert_eq!(again, first, "{}", t.name);
        assert_eq!(records(&t.db, "orders").await.len(), 1, "{}", t.name);
        let unkeyed = t.db.import_order(order, None, Timestamp(3)).await.unwrap();
        assert_ne!(unkeyed.order.id(), first.order.id(), "{}", t.name);
    })
    .await;
}

/// Two open attempts on a new order, the first of one unit of its first line, the second
/// planned as final (it completes the order); answers the order and that line too.
async fn first_and_planned_final(
    t: &TestDb,
    order_id: i64,
) -> (OrderId, i64, CaptureAttempt, CaptureAttempt) {
    let order = imported(t, order_id).await;
    let (l1, l2) = (order.lines()[0].line_id().0, order.lines()[1].line_id().0);
    let mut attempts = Vec::new();
    for (lines, at) in [(vec![(l1, 1)], 2), (vec![(l1, 1), (l2, 1)], 3)] {
        let attempt = reserve_capture(t, order.id(), &lines, at).await;
        attempts.push(attempt);
    }
    let last = attempts.pop().unwrap();
    let first = attempts.pop().unwrap();
    assert!(last.final_capture && !first.final_capture, "{}", t.name);
    (order.id(), l1, first, last)
}

fn standing(still_final: bool, others_open: usize) -> FinalCaptureStanding {
    FinalCaptureStanding {
        still_final,
        others_open,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_final_captures_standing_counts_the_orders_other_unsettled_attempts() {
    each_backend(|t| async move {
        let (_, _, first, last) = first_and_planned_final(&t, 15).await;
        let now = t.db.final_capture_standing(&last).await.unwrap();
        assert_eq!(now, standing(true, 1), "{}", t.name);
        let captured = SettleOutcome::Captured {
            reference: "ch_1".into(),
        };
        t.db.settle_capture(&first, captured, Timestamp(4))
            .await
            .unwrap();
        let now = t.db.final_capture_standing(&last).await.unwrap();
        assert_eq!(now, standing(true, 0), "{}", t.name);
    })
    .await;
}

/// Recovery takes the least recently touched attempts first: one tried again and again (here
/// the older, just marked unknown) goes behind one never tried, so attempts that stay open pass
/// after pass cannot fill every pass (500 at most) and keep a newer one from being replayed;
/// and a final capture that waited its turn goes behind the capture it waits for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_captures_come_least_recently_touched_first() {
    each_backend(|t| async move {
        let (_, _, first, last) = first_and_planned_final(&t, 17).await;
        let keys = |attempts: Vec<CaptureAttempt>| -> Vec<String> {
            attempts.into_iter().map(|a| a.idempotency_key).collect()
        };
        let before = keys(t.db.pending_captures(Timestamp(20)).await.unwrap());
        assert_eq!(
            before,
            [first.idempotency_key.clone(), last.idempotency_key.clone()],
            "{}",
            t.name
        );
        t.db.record_unknown(&first, "lost", Timestamp(10), 10)
            .await
            .unwrap();
        let after = keys(t.db.pending_captures(Timestamp(20)).await.unwrap());
        assert_eq!(
            after,
            [last.idempotency_key.clone(), first.idempotency_key.clone()],
            "{}",
            t.name
        );
        // The final capture waited for the first: touched too, so it goes behind it again
        // (waiting finals that stayed in front would fill every pass ahead of what they wait
        // for).
        t.db.record_waiting(&last, Timestamp(11)).await.unwrap();
        let waited = keys(t.db.pending_captures(Timestamp(20)).await.unwrap());
        assert_eq!(
            waited,
            [first.idempotency_key.clone(), last.idempotency_key.clone()],
            "{}",
            t.name
        );
    })
    .await;
}

/// The same for refunds: a refund tried again (the older, just marked unknown) goes behind one
/// never tried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_refunds_come_least_recently_touched_first() {
    each_backend(|t| async move {
        let order = imported(&t, 18).await;
        let l1 = order.lines()[0].line_id().0;
        let attempt = reserve_capture(&t, order.id(), &[(l1, 2)], 2).await;
        let captured = SettleOutcome::Captured {
            reference: "ch_1".into(),
        };
        t.db.settle_capture(&attempt, captured, Timestamp(3))
            .await
            .unwrap();
        let mut refunds = Vec::new();
        for at in [4, 5] {
            let request = ReturnRequest {
                lines: Some(vec![ShipmentLine {
                    line_id: LineId(l1),
                    quantity: 1,
                }]),
                shipping: Cost::None,
                handling: Cost::None,
                voucher: Cost::None,
                return_cost: None,
            };
            let created =
                t.db.create_return(
                    attempt.shipment,
                    request,
                    true,
                    Providers::any(),
                    ReturnDetails::default(),
                    None,
                    Timestamp(at),
                )
                .await
                .unwrap();
            refunds.push(created.attempt.unwrap());
        }
        let keys = |attempts: Vec<RefundAttempt>| -> Vec<String> {
            attempts.into_iter().map(|a| a.idempotency_key).collect()
        };
        let [older, newer] = [&refunds[0], &refunds[1]].map(|a| a.idempotency_key.clone());
        let before = keys(t.db.pending_refunds(Timestamp(20)).await.unwrap());
        assert_eq!(before, [older.clone(), newer.clone()], "{}", t.name);
        t.db.record_refund_unknown(&refunds[0], "lost", Timestamp(10), 10)
            .await
            .unwrap();
        let after = keys(t.db.pending_refunds(Timestamp(20)).await.unwrap());
        assert_eq!(after, [newer, older], "{}", t.name);
    })
    .await;
}

/// Returns the whole of the captured `shipment` at `at`, with its refund: the refund's attempt.
async fn whole_return_refunded(t: &TestDb, shipment: ShipmentId, at: i64) -> RefundAttempt {
    let request = ReturnRequest {
        lines: None,
        shipping: Cost::None,
        handling: Cost::None,
        voucher: Cost::None,
        return_cost: None,
    };
    t.db.create_return(
        shipment,
        request,
        true,
        Providers::any(),
        ReturnDetails::default(),
        None,
        Timestamp(at),
    )
    .await
    .unwrap()
    .attempt
    .unwrap()
}

/// A refund the provider accepted and is still settling: the attempt keeps its reference, stays
/// open (and is answered with it, so it is looked up, once it has rested as long as it was
/// given), its return is pending again after needing review, and nothing is refunded; once settled, an acceptance arriving late changes
/// nothing. The store's figures (read for `/metrics`) count it by where it stands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accepted_refund_stays_open_with_its_reference_and_a_late_acceptance_changes_nothing() {
    each_backend(|t| async move {
        let order = imported(&t, 19).await;
        let l1 = order.lines()[0].line_id().0;
        let capture = reserve_capture(&t, order.id(), &[(l1, 1)], 2).await;
        let captured = SettleOutcome::Captured {
            reference: "ch_1".into(),
        };
        t.db.settle_capture(&capture, captured, Timestamp(3))
            .await
            .unwrap();
        let attempt = whole_return_refunded(&t, capture.shipment, 4).await;
        assert_eq!(attempt.accepted, None, "{}", t.name);
        let open_refunds = |db: consign_db::Database| async move {
            db.stats().await.unwrap().open_refunds_by_state
        };
        let one = |state: &str| vec![(state.to_owned(), 1)];
        assert_eq!(
            open_refunds(t.db.clone()).await,
            one("pending"),
            "{}",
            t.name
        );
        // Unknown once, with review after one pass: it needs review.
        assert!(t
            .db
            .record_refund_unknown(&attempt, "lost", Timestamp(5), 1)
            .await
            .unwrap());
        assert_eq!(
            open_refunds(t.db.clone()).await,
            one("needs_review"),
            "{}",
            t.name
        );
        // Accepted at 6, to rest 3 before it is looked up again.
        let view =
            t.db.record_refund_accepted(&attempt, "re_7", "pending", 3, Timestamp(6))
                .await
                .unwrap();
        assert_eq!(view.refund_state, RefundState::Pending, "{}", t.name);
        assert!(!view.completed && view.credit_note.is_none(), "{}", t.name);
        let resting = t.db.pending_refunds(Timestamp(9)).await.unwrap();
        assert!(resting.is_empty(), "{}: {resting:?}", t.name);
        let open = t.db.pending_refunds(Timestamp(10)).await.unwrap();
        assert_eq!(open.len(), 1, "{}", t.name);
        assert_eq!(open[0].accepted.as_deref(), Some("re_7"), "{}", t.name);
        assert_eq!(
            open_refunds(t.db.clone()).await,
            one("settling"),
            "{}",
            t.name
        );
        let refunded = RefundSettle::Refunded {
            reference: "re_7".into(),
            status: "succeeded".into(),
        };
        let settled =
            t.db.settle_refund(&attempt, refunded, Timestamp(10))
                .await
                .unwrap();
        assert_eq!(settled.refund_state, RefundState::Refunded, "{}", t.name);
        let late =
            t.db.record_refund_accepted(&attempt, "re_7", "pending", 0, Timestamp(11))
                .await
                .unwrap();
        assert_eq!(late, settled, "{}", t.name);
        assert!(t
            .db
            .pending_refunds(Timestamp(12))
            .await
            .unwrap()
            .is_empty());
        assert!(open_refunds(t.db.clone()).await.is_empty(), "{}", t.name);
    })
    .await;
}

/// The rows of `table` in a dump of the store.
async fn records(db: &consign_db::Database, table: &str) -> Vec<String> {
    db.dump()
        .await
        .unwrap()
        .into_iter()
        .filter(|row| row.starts_with(&format!("{table} ")))
        .collect()
}

/// Order `order_id`'s capture of one unit, its outcome unknown once (its attempt open).
async fn capture_under_review(t: &TestDb, order_id: i64) -> CaptureAttempt {
    let order = imported(t, order_id).await;
    let l1 = order.lines()[0].line_id().0;
    let capture = reserve_capture(t, order.id(), &[(l1, 1)], 2).await;
    assert!(t
        .db
        .record_unknown(&capture, "lost", Timestamp(3), 1)
        .await
        .unwrap());
    capture
}

/// `shipment` returned whole with a refund whose outcome is unknown once (its attempt open).
async fn refund_under_review(t: &TestDb, shipment: ShipmentId) -> RefundAttempt {
    let refund = whole_return_refunded(t, shipment, 6).await;
    assert!(t
        .db
        .record_refund_unknown(&refund, "lost", Timestamp(7), 1)
        .await
        .unwrap());
    refund
}

/// Two operators settling the same attempt, both past the review check: the second finds it
/// settled, changes nothing, keeps the first's record and is answered the state it is in
/// (where its record's key used to conflict with the first's and fail its command). For a
/// capture and for a refund.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_settlement_by_hand_of_one_attempt_changes_nothing_and_keeps_the_first_record() {
    each_backend(|t| async move {
        let capture = capture_under_review(&t, 21).await;
        let captured = SettleOutcome::Captured {
            reference: "ch_first".into(),
        };
        let first =
            t.db.settle_by_hand(&capture, captured, Timestamp(4))
                .await
                .unwrap();
        assert_eq!(first.shipment.state, ShipmentState::Captured, "{}", t.name);
        assert!(first.attempt_captured, "{}", t.name);
        let not_captured = SettleOutcome::Declined {
            code: "settled_by_operator".into(),
            message: "second operator".into(),
        };
        let second =
            t.db.settle_by_hand(&capture, not_captured, Timestamp(5))
                .await
                .unwrap();
        assert_eq!(second.shipment.state, ShipmentState::Captured, "{}", t.name);
        assert!(second.attempt_captured, "{}: as the first found it", t.name);
        let kept = records(&t.db, "hand_settlements").await;
        assert_eq!(kept.len(), 1, "{}: {kept:?}", t.name);
        assert!(kept[0].contains("ch_first"), "{}: {kept:?}", t.name);

        let refund = refund_under_review(&t, capture.shipment).await;
        let refunded = RefundSettle::Refunded {
            reference: "re_first".into(),
            status: "settled_by_operator".into(),
        };
        let first =
            t.db.settle_refund_by_hand(&refund, refunded, Timestamp(8))
                .await
                .unwrap();
        assert_eq!(first.refund_state, RefundState::Refunded, "{}", t.name);
        let declined = RefundSettle::Declined {
            code: "settled_by_operator".into(),
            message: "second operator".into(),
        };
        let second =
            t.db.settle_refund_by_hand(&refund, declined, Timestamp(9))
                .await
                .unwrap();
        assert_eq!(second.refund_state, RefundState::Refunded, "{}", t.name);
        let kept = records(&t.db, "refund_hand_settlements").await;
        assert_eq!(kept.len(), 1, "{}: {kept:?}", t.name);
        assert!(kept[0].contains("re_first"), "{}: {kept:?}", t.name);
    })
    .await;
}

/// An operator's settlement of an attempt the provider's answer settled meanwhile (recovery
/// got there first) changes nothing and records nothing: the tables of settlements by hand hold
/// only what an operator settled. For a capture and for a refund.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settlement_by_hand_of_an_attempt_settled_meanwhile_records_nothing() {
    each_backend(|t| async move {
        let capture = capture_under_review(&t, 22).await;
        let by_provider =
            t.db.settle_capture(
                &capture,
                SettleOutcome::Captured {
                    reference: "ch_provider".into(),
                },
                Timestamp(4),
            )
            .await
            .unwrap();
        assert!(by_provider.attempt_captured, "{}", t.name);
        let by_hand =
            t.db.settle_by_hand(
                &capture,
                SettleOutcome::Declined {
                    code: "settled_by_operator".into(),
                    message: "late operator".into(),
                },
                Timestamp(5),
            )
            .await
            .unwrap();
        assert_eq!(
            by_hand.shipment.state,
            ShipmentState::Captured,
            "{}",
            t.name
        );
        assert!(
            by_hand.attempt_captured,
            "{}: as the provider settled it",
            t.name
        );
        let kept = records(&t.db, "hand_settlements").await;
        assert!(kept.is_empty(), "{}: {kept:?}", t.name);

        let refund = refund_under_review(&t, capture.shipment).await;
        let by_provider =
            t.db.settle_refund(
                &refund,
                RefundSettle::Refunded {
                    reference: "re_provider".into(),
                    status: "succeeded".into(),
                },
                Timestamp(8),
            )
            .await
            .unwrap();
        assert_eq!(
            by_provider.refund_state,
            RefundState::Refunded,
            "{}",
            t.name
        );
        let by_hand =
            t.db.settle_refund_by_hand(
                &refund,
                RefundSettle::Declined {
                    code: "settled_by_operator".into(),
                    message: "late operator".into(),
                },
                Timestamp(9),
            )
            .await
            .unwrap();
        assert_eq!(by_hand.refund_state, RefundState::Refunded, "{}", t.name);
        let kept = records(&t.db, "refund_hand_settlements").await;
        assert!(kept.is_empty(), "{}: {kept:?}", t.name);
    })
    .await;
}

/// An operator's settlement is checked on the return it settles, in its own transaction: a
/// refund under review that the provider accepted since the operator's command read it (it is
/// pending at the provider now, its attempt still open) is refused and nothing is written.
/// Declined by hand, it would be released and could be asked again, and paid twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settlement_by_hand_of_a_refund_accepted_meanwhile_is_refused_and_writes_nothing() {
    each_backend(|t| async move {
        let order = imported(&t, 23).await;
        let l1 = order.lines()[0].line_id().0;
        let capture = reserve_capture(&t, order.id(), &[(l1, 1)], 2).await;
        t.db.settle_capture(
            &capture,
            SettleOutcome::Captured {
                reference: "ch_23".into(),
            },
            Timestamp(3),
        )
        .await
        .unwrap();
        let refund = refund_under_review(&t, capture.shipment).await;
        let accepted =
            t.db.record_refund_accepted(&refund, "re_23", "pending", 0, Timestamp(8))
                .await
                .unwrap();
        assert_eq!(accepted.refund_state, RefundState::Pending, "{}", t.name);
        let before = t.db.dump().await.unwrap();
        let by_hand =
            t.db.settle_refund_by_hand(
                &refund,
                RefundSettle::Declined {
                    code: "settled_by_operator".into(),
                    message: "not in the dashboard".into(),
                },
                Timestamp(9),
            )
            .await;
        assert!(
            matches!(
                by_hand,
                Err(StoreError::ReturnRejected(
                    consign_domain::ReturnError::RefundNotUnderReview("pending")
                ))
            ),
            "{}: {by_hand:?}",
            t.name
        );
        assert_eq!(t.db.dump().await.unwrap(), before, "{}", t.name);
    })
    .await;
}

/// A settle answers how the attempt itself stands, not only the shipment: a replay captured by
/// the provider after its attempt was found not captured by an operator, and the shipment
/// captured by a later attempt since, answers the shipment captured and this attempt not
/// (the order was charged twice); a replay of the attempt that did capture answers it
/// captured. Also for a capture at creation that was declined.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settle_answers_whether_its_own_attempt_stands_captured() {
    each_backend(|t| async move {
        let (_, ids) = two_uncaptured_shipments(&t, 32, "c@example.com").await;
        let shipment = ids[1];
        let begin = |at: i64| {
            let db = t.db.clone();
            async move {
                match db
                    .begin_capture(
                        shipment,
                        None,
                        Providers::any(),
                        ShipmentChanges::default(),
                        None,
                        Timestamp(at),
                    )
                    .await
                    .unwrap()
                {
                    BeginCapture::Started(attempt) => attempt,
                    other => panic!("capture not started: {other:?}"),
                }
            }
        };
        let captured = |reference: &str| SettleOutcome::Captured {
            reference: reference.into(),
        };
        let first = begin(6).await;
        let found = t.db.settle_by_hand(
            &first,
            SettleOutcome::Declined {
                code: "settled_by_operator".into(),
                message: "not in the provider's dashboard".into(),
            },
            Timestamp(7),
        );
        let found = found.await.unwrap();
        assert_eq!(
            found.shipment.state,
            ShipmentState::Uncaptured,
            "{}",
            t.name
        );
        assert!(!found.attempt_captured, "{}", t.name);
        let second = begin(8).await;
        let settled =
            t.db.settle_capture(&second, captured("ch_second"), Timestamp(9))
                .await
                .unwrap();
        assert!(settled.attempt_captured, "{}: settled here", t.name);
        assert_eq!(
            settled.shipment.state,
            ShipmentState::Captured,
            "{}",
            t.name
        );

        let late =
            t.db.settle_capture(&first, captured("ch_first"), Timestamp(10))
                .await
                .unwrap();
        assert_eq!(late.shipment.state, ShipmentState::Captured, "{}", t.name);
        assert_eq!(
            late.shipment.capture_reference.as_deref(),
            Some("ch_second"),
            "{}: the late settle changed nothing",
            t.name
        );
        assert!(
            !late.attempt_captured,
            "{}: found not captured first",
            t.name
        );
        let replayed =
            t.db.settle_capture(&second, captured("ch_second"), Timestamp(11))
                .await
                .unwrap();
        assert!(
            replayed.attempt_captured,
            "{}: a replay of the capture",
            t.name
        );

        let other = imported_as(&t, import(Some(33), "c@example.com", "auth"), 12).await;
        let l1 = other.lines()[0].line_id().0;
        let at_creation = reserve_capture(&t, other.id(), &[(l1, 1)], 12).await;
        let declined = SettleOutcome::Declined {
            code: "card_declined".into(),
            message: "declined".into(),
        };
        t.db.settle_capture(&at_creation, declined, Timestamp(13))
            .await
            .unwrap();
        let late =
            t.db.settle_capture(&at_creation, captured("ch_late"), Timestamp(14))
                .await
                .unwrap();
        assert_eq!(late.shipment.state, ShipmentState::Voided, "{}", t.name);
        assert!(!late.attempt_captured, "{}: declined first", t.name);
    })
    .await;
}

/// The first capture is declined: its unit leaves capture, so the capture planned as final no
/// longer completes the order and is stored as not final in the decline's transaction; the
/// shipment that takes the unit again is planned as the final capture.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_capture_lowers_the_orders_open_final_capture() {
    each_backend(|t| async move {
        let (order, line, first, last) = first_and_planned_final(&t, 16).await;
        let declined = SettleOutcome::Declined {
            code: "card_declined".into(),
            message: "declined".into(),
        };
        t.db.settle_capture(&first, declined, Timestamp(4))
            .await
            .unwrap();
        let now = t.db.final_capture_standing(&last).await.unwrap();
        assert_eq!(now, standing(false, 0), "{}", t.name);
        let again = reserve_capture(&t, order, &[(line, 1)], 5).await;
        assert!(again.final_capture, "{}", t.name);
        let lowered = t.db.open_attempt(last.shipment).await.unwrap().unwrap();
        assert!(!lowered.final_capture, "{}: stays lowered", t.name);
        let now = t.db.final_capture_standing(&again).await.unwrap();
        assert_eq!(now, standing(true, 1), "{}", t.name);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capture_tally_adds_the_orders_other_captured_attempts_and_counts_the_open_ones() {
    each_backend(|t| async move {
        let order = imported(&t, 16).await;
        let (l1, l2) = (order.lines()[0].line_id().0, order.lines()[1].line_id().0);
        let mut attempts = Vec::new();
        for (at, lines) in [(2, vec![(l1, 1)]), (3, vec![(l2, 1)]), (4, vec![(l1, 1)])] {
            attempts.push(reserve_capture(&t, order.id(), &lines, at).await);
        }
        let (captured, declined, looked_up) = (&attempts[0], &attempts[1], &attempts[2]);
        let zero = Money::zero(looked_up.amount.currency());
        assert_eq!(
            t.db.capture_tally(looked_up).await.unwrap(),
            CaptureTally {
                settled: zero,
                others_open: 2,
                later_finals_open: 0
            },
            "{}",
            t.name
        );
        assert_eq!(
            t.db.capture_tally(captured).await.unwrap(),
            CaptureTally {
                settled: zero,
                others_open: 2,
                later_finals_open: 1
            },
            "{}: of the open ones, the last is the final capture, written after this attempt",
            t.name
        );
        t.db.settle_capture(
            captured,
            SettleOutcome::Captured {
                reference: "ch_1".into(),
            },
            Timestamp(5),
        )
        .await
        .unwrap();
        t.db.settle_capture(
            declined,
            SettleOutcome::Declined {
                code: "card_declined".into(),
                message: "declined".into(),
            },
            Timestamp(6),
        )
        .await
        .unwrap();
        assert_eq!(
            t.db.capture_tally(looked_up).await.unwrap(),
            CaptureTally {
                settled: captured.amount,
                others_open: 0,
                later_finals_open: 0
            },
            "{}: only the captured attempt counts, and never the one looked up",
            t.name
        );
    })
    .await;
}

/// On SQLite the writer thread commits queued writes together, each in a savepoint: a refused
/// write must roll back only itself (its counter bumps and customer included), never its
/// neighbours. On PostgreSQL the same holds with one transaction each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_that_fail_roll_back_alone() {
    each_backend(|t| async move {
        let mut tasks = Vec::new();
        for i in 0..40_i64 {
            let db = t.db.clone();
            // Every order id twice: one of each pair is refused.
            let order = import(Some(500 + i / 2), &format!("c{i}@example.com"), "auth");
            tasks.push(tokio::spawn(async move {
                db.import_order(order, None, Timestamp(1)).await
            }));
        }
        let (mut imported, mut refused) = (0, 0);
        for task in tasks {
            match task.await.unwrap() {
                Ok(_) => imported += 1,
                Err(StoreError::OrderExists(_)) => refused += 1,
                Err(other) => panic!("{}: unexpected {other:?}", t.name),
            }
        }
        assert_eq!((imported, refused), (20, 20), "{}", t.name);
        if let Some(largest) = t.db.largest_write_group() {
            // SQLite: refusals inside a group commit are what this test is about.
            assert!(largest > 1, "{}: no group of writes formed", t.name);
        }
        let orders =
            t.db.list_orders(OrderQuery {
                limit: 100,
                ..OrderQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(orders.len(), 20, "{}", t.name);
        let mut line_ids: Vec<i64> = orders
            .iter()
            .flat_map(|o| o.order.lines().iter().map(|l| l.line_id().0))
            .collect();
        line_ids.sort_unstable();
        line_ids.dedup();
        assert_eq!(line_ids.len(), 40, "{}", t.name);
        // Refused imports bumped the line counter too; rolled back, they left no gap.
        assert_eq!(line_ids[39] - line_ids[0], 39, "{}", t.name);
    })
    .await;
}

/// A capture settled twice (a client's retry and recovery, say) is invoiced once: the second
/// settle writes nothing, so the next invoice follows the first without a gap. On PostgreSQL this
/// exercises the one-statement settle, whose counter bump must depend on the attempt changing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settling_a_captured_attempt_again_issues_no_second_invoice() {
    each_backend(|t| async move {
        let order = imported(&t, 21).await;
        let l1 = order.lines()[0].line_id().0;
        let mut invoices = Vec::new();
        for _ in 0..2 {
            let attempt = reserve_capture(&t, order.id(), &[(l1, 1)], 2).await;
            for reference in ["ch_first", "ch_again"] {
                let settled =
                    t.db.settle_capture(
                        &attempt,
                        SettleOutcome::Captured {
                            reference: reference.into(),
                        },
                        Timestamp(3),
                    )
                    .await
                    .unwrap()
                    .shipment;
                assert_eq!(settled.state, ShipmentState::Captured, "{}", t.name);
                assert_eq!(
                    settled.capture_reference.as_deref(),
                    Some("ch_first"),
                    "{}: the first outcome stands",
                    t.name
                );
                assert_eq!(settled.lines.len(), 1, "{}", t.name);
            }
            invoices.push(
                t.db.find_invoice(attempt.shipment)
                    .await
                    .unwrap()
                    .expect("invoiced")
                    .number,
            );
        }
        assert_eq!(invoices[1], invoices[0] + 1, "{}: {invoices:?}", t.name);
    })
    .await;
}

/// An in-memory SQLite database would be one database per connection (the writer's and each
/// reader's): refused at start with a clear reason instead of losing writes to a database no
/// reader sees.
#[test]
fn an_in_memory_sqlite_database_is_refused_with_a_reason() {
    for url in [
        "sqlite://:memory:",
        ":memory:",
        "sqlite://file::memory:?cache=shared",
    ] {
        let error = consign_db::Database::open(&consign_db::DbConfig::from_url(url))
            .err()
            .unwrap_or_else(|| panic!("{url} was accepted"));
        assert!(error.to_string().contains("in-memory"), "{url}: {error}");
    }
}

/// A PostgreSQL write that loses a deadlock runs again and succeeds: writes run on the calling
/// thread once, and a transient failure hands the retries (with backoff) to the blocking pool.
/// Another session holds the shipment row and then asks for the order row, which the store's
/// update holds while it waits for the shipment row; the store's session, waiting first, is the
/// one PostgreSQL aborts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_that_loses_a_deadlock_runs_again_and_succeeds() {
    use diesel::connection::SimpleConnection;
    use diesel::Connection;
    for t in backends().await {
        if t.name != "postgres" {
            continue;
        }
        let order = imported_as(&t, import(Some(31), "dead@example.com", "auth"), 1).await;
        let l1 = order.lines()[0].line_id().0;
        let shipment =
            t.db.reserve_shipment(
                order.id(),
                ship(&[(l1, 1)], false),
                Providers::any(),
                ShipmentDetails::default(),
                None,
                Timestamp(2),
            )
            .await
            .unwrap()
            .shipment;
        let mut other = diesel::PgConnection::establish(&t.throwaway.url).expect("connect");
        other
            .batch_execute(
                "SET deadlock_timeout = '10s'; BEGIN; \
                 UPDATE shipments SET internal_comment = 'held' WHERE order_id = 31 AND number = 1",
            )
            .unwrap();
        let db = t.db.clone();
        let update = tokio::spawn(async move {
            db.update_shipment(shipment.id, None, None, Some(true), Timestamp(3))
                .await
        });
        // Wait until the update holds the order and waits for the shipment row.
        let mut watcher = diesel::PgConnection::establish(&t.throwaway.url).expect("connect");
        let waiting = || {
            diesel::sql_query(
                "SELECT count(*) AS n FROM pg_stat_activity \
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
        };
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let started = std::time::Instant::now();
        while diesel::RunQueryDsl::get_result::<Count>(waiting(), &mut watcher)
            .unwrap()
            .n
            == 0
        {
            assert!(started.elapsed().as_secs() < 10, "the update never waited");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let closing = tokio::task::spawn_blocking(move || {
            // Waits for the order row until PostgreSQL aborts the update's transaction.
            other.batch_execute("UPDATE orders SET updated_at = updated_at WHERE id = 31; COMMIT")
        });
        let updated = update
            .await
            .unwrap()
            .expect("the update runs again after losing the deadlock");
        closing.await.unwrap().expect("the other session commits");
        assert!(
            updated.shipment.details.gtg,
            "the update's change is written"
        );
        let view = t.db.find_shipment(shipment.id).await.unwrap().unwrap();
        assert!(view.shipment.details.gtg, "and stored");
    }
}

/// Imports `order` (two lines) and creates two uncaptured shipments of it: both lines, named
/// last one first, then the first line only.
async fn two_uncaptured_shipments(t: &TestDb, order: i64, email: &str) -> (Order, Vec<ShipmentId>) {
    let order =
        t.db.import_order(import(Some(order), email, "auth"), None, Timestamp(1))
            .await
            .unwrap()
            .order;
    let (l1, l2) = (order.lines()[0].line_id().0, order.lines()[1].line_id().0);
    let mut ids = Vec::new();
    for lines in [vec![(l2, 1), (l1, 1)], vec![(l1, 1)]] {
        let reservation =
            t.db.reserve_shipment(
                order.id(),
                ship(&lines, false),
                Providers::any(),
                ShipmentDetails::default(),
                None,
                Timestamp(5),
            )
            .await
            .unwrap();
        ids.push(reservation.shipment.id);
    }
    (order, ids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shipment_reads_with_its_order_as_the_listing_gives_it() {
    each_backend(|t| async move {
        let (order, ids) = two_uncaptured_shipments(&t, 30, "r@example.com").await;
        let (l1, l2) = (order.lines()[0].line_id().0, order.lines()[1].line_id().0);
        let listed =
            t.db.list_shipments(ShipmentQuery {
                status: ShipmentStatus::InProgress,
                order: Some(order.id()),
                customer_id: None,
                newer_than: None,
                older_than: None,
                limit: 10,
                offset: 0,
            })
            .await
            .unwrap();
        assert_eq!(listed.len(), 2, "{}", t.name);
        for (id, from_list) in ids.iter().zip(&listed) {
            let found = t.db.find_shipment(*id).await.unwrap();
            assert_eq!(found.as_ref(), Some(from_list), "{}: {id}", t.name);
        }
        let both = &listed[0].shipment.lines;
        assert_eq!(
            both.iter().map(|l| l.line_id.0).collect::<Vec<_>>(),
            vec![l1, l2],
            "{}: lines in line order",
            t.name
        );
        assert_eq!(listed[1].shipment.lines.len(), 1, "{}", t.name);
        assert_eq!(listed[1].order.order.lines().len(), 2, "{}", t.name);
        let deleted = ids[1];
        t.db.delete_shipment(deleted, None, None, Timestamp(6))
            .await
            .unwrap();
        let gone = t.db.find_shipment(deleted).await.unwrap();
        assert_eq!(gone, None, "{}: a deleted shipment", t.name);
        let missing = ShipmentId {
            order: order.id(),
            number: 9,
        };
        let none = t.db.find_shipment(missing).await.unwrap();
        assert_eq!(none, None, "{}: no such shipment", t.name);
    })
    .await;
}

/// A delete made with an idempotency key is found by that key, as the delete answered it, and
/// by no other key, shipment or keyless delete; the delete itself is still refused a second
/// time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_with_a_key_is_found_by_that_key_alone() {
    each_backend(|t| async move {
        let (_, ids) = two_uncaptured_shipments(&t, 33, "d@example.com").await;
        let name = t.name;
        let answered =
            t.db.delete_shipment(ids[0], None, Some("7:retry-me".into()), Timestamp(6))
                .await
                .unwrap();
        assert_eq!(answered.state, ShipmentState::Deleted, "{name}");
        let found = t.db.deleted_by_key(ids[0], "7:retry-me").await.unwrap();
        assert_eq!(
            found,
            Some(answered),
            "{name}: found as the delete answered"
        );
        for (id, key) in [
            (ids[0], "7:other"),
            (ids[0], "8:retry-me"),
            (ids[1], "7:retry-me"),
        ] {
            let found = t.db.deleted_by_key(id, key).await.unwrap();
            assert_eq!(found, None, "{name}: {id} {key}");
        }
        t.db.delete_shipment(ids[1], None, None, Timestamp(7))
            .await
            .unwrap();
        assert_eq!(
            t.db.deleted_by_key(ids[1], "").await.unwrap(),
            None,
            "{name}"
        );
        let again =
            t.db.delete_shipment(ids[0], None, Some("7:retry-me".into()), Timestamp(8))
                .await;
        assert!(
            matches!(again, Err(StoreError::ShipmentNotFound(id)) if id == ids[0]),
            "{name}: the store deletes once: {again:?}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipments_read_together_answer_what_each_reads_alone_in_the_order_asked() {
    each_backend(|t| async move {
        let mut ids = two_uncaptured_shipments(&t, 31, "s@example.com").await.1;
        ids.extend(two_uncaptured_shipments(&t, 32, "t@example.com").await.1);
        // ids: order 31's two shipments (both lines, then one), then order 32's.
        let deleted = ids[3];
        t.db.delete_shipment(deleted, None, None, Timestamp(6))
            .await
            .unwrap();
        let missing = ShipmentId {
            order: ids[0].order,
            number: 9,
        };
        // Across both orders, out of order, one asked twice, a deleted and a missing one.
        let asked = [ids[2], ids[1], missing, ids[0], deleted, ids[1]];
        let mut expected = Vec::new();
        for id in [ids[2], ids[1], ids[0]] {
            expected.push(t.db.find_shipment(id).await.unwrap().expect("live"));
        }
        let together = t.db.find_shipments(&asked).await.unwrap();
        assert_eq!(together, expected, "{}", t.name);
        assert_eq!(together[0].order.order.id(), ids[2].order, "{}", t.name);
        assert_eq!(together[0].shipment.lines.len(), 2, "{}", t.name);
        let none = t.db.find_shipments(&[deleted, missing]).await.unwrap();
        assert_eq!(none, vec![], "{}", t.name);
        assert_eq!(
            t.db.find_shipments(&[]).await.unwrap(),
            vec![],
            "{}",
            t.name
        );
    })
    .await;
}

/// The shipment a request key created, as a read answers it.
async fn read_back(t: &TestDb, key: &str) -> ShipmentView {
    OrderStore::find_by_request_key(&t.db, key)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{}: no shipment for key {key}", t.name))
}

/// Every write answers the shipment as it was written; the answers are built from what was
/// written, not read back, so each must equal what a read of the same shipment gives: states,
/// flags, capture, carrier details, comment, lines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_answers_what_a_read_of_the_shipment_gives() {
    each_backend(|t| async move {
        let order = imported(&t, 31).await;
        let (l1, l2) = (order.lines()[0].line_id().0, order.lines()[1].line_id().0);
        let reserve = |lines: Vec<(i64, u32)>, capture: bool, key: &'static str, at: i64| {
            let db = t.db.clone();
            async move {
                db.reserve_shipment(
                    OrderId(31),
                    ship(&lines, capture),
                    Providers::any(),
                    ShipmentDetails::default(),
                    Some(key.into()),
                    Timestamp(at),
                )
                .await
                .unwrap()
            }
        };
        let shipped = ShipmentChanges {
            gtg: true,
            shipped: true,
            shipping: ShippingUpdate {
                carrier: Some("DHL".into()),
                service: Some("Express".into()),
                packages: Some(2),
                tracking: Some("T1".into()),
                return_slip_tracking: Some("R1".into()),
            },
            send_email: Some(true),
            internal_comment: Some("fragile".into()),
        };

        // Update: new quantities and good to go.
        let a = reserve(vec![(l1, 1)], false, "a", 2).await.shipment.id;
        let updated =
            t.db.update_shipment(
                a,
                None,
                Some(ship(&[(l1, 2)], false).lines),
                Some(true),
                Timestamp(3),
            )
            .await
            .unwrap();
        assert_eq!(
            updated.shipment,
            read_back(&t, "a").await,
            "{}: update",
            t.name
        );
        assert_eq!(updated.shipment.lines[0].quantity, 2, "{}", t.name);
        assert!(updated.shipment.details.gtg, "{}", t.name);
        assert_eq!(
            updated.order.order.line(LineId(l1)).map(|l| l.allocated()),
            Some(2),
            "{}: the order as the update left it",
            t.name
        );

        // A later capture that is declined returns the shipment to uncaptured; then one that
        // succeeds applies the changes that waited for it.
        let b = reserve(vec![(l2, 1)], false, "b", 4).await.shipment.id;
        let begin = |at: i64| {
            let (db, changes) = (t.db.clone(), shipped.clone());
            async move {
                db.begin_capture(
                    b,
                    Some(OrderId(31)),
                    Providers::any(),
                    changes,
                    None,
                    Timestamp(at),
                )
                .await
                .unwrap()
            }
        };
        let BeginCapture::Started(declined) = begin(5).await else {
            panic!("{}: capture not started", t.name)
        };
        let answer =
            t.db.settle_capture(
                &declined,
                SettleOutcome::Declined {
                    code: "card".into(),
                    message: "declined".into(),
                },
                Timestamp(6),
            )
            .await
            .unwrap()
            .shipment;
        assert_eq!(answer.state, ShipmentState::Uncaptured, "{}", t.name);
        assert_eq!(
            answer,
            read_back(&t, "b").await,
            "{}: later decline",
            t.name
        );
        let BeginCapture::Started(captured) = begin(7).await else {
            panic!("{}: capture not started again", t.name)
        };
        // A new attempt, numbered after the declined one, with a key of its own.
        assert!(declined.idempotency_key.ends_with("-31-2-1"), "{}", t.name);
        assert!(captured.idempotency_key.ends_with("-31-2-2"), "{}", t.name);
        let answer =
            t.db.settle_capture(
                &captured,
                SettleOutcome::Captured {
                    reference: "ch_b".into(),
                },
                Timestamp(8),
            )
            .await
            .unwrap()
            .shipment;
        assert!(
            answer.details.shipped,
            "{}: waiting changes applied",
            t.name
        );
        assert_eq!(answer.details.shipping.carrier, "DHL", "{}", t.name);
        assert_eq!(
            answer,
            read_back(&t, "b").await,
            "{}: capture with changes",
            t.name
        );
        let BeginCapture::AlreadyCaptured(answer) = begin(9).await else {
            panic!("{}: captured twice", t.name)
        };
        assert_eq!(
            answer,
            read_back(&t, "b").await,
            "{}: already captured",
            t.name
        );

        // Complete's changes on a captured shipment and on an uncaptured one.
        let more = ShipmentChanges {
            shipping: ShippingUpdate {
                tracking: Some("T2".into()),
                ..ShippingUpdate::default()
            },
            internal_comment: Some("checked".into()),
            ..ShipmentChanges::default()
        };
        let answer =
            t.db.apply_changes(b, None, more, Timestamp(10))
                .await
                .unwrap();
        assert_eq!(answer.details.shipping.tracking, "T2", "{}", t.name);
        assert_eq!(
            answer,
            read_back(&t, "b").await,
            "{}: complete, captured",
            t.name
        );

        // Delete releases the units for the next shipments.
        let deleted =
            t.db.delete_shipment(a, None, None, Timestamp(11))
                .await
                .unwrap();
        assert_eq!(deleted, read_back(&t, "a").await, "{}: delete", t.name);

        // Captured at creation: a decline voids it, a success captures it.
        let c = reserve(vec![(l1, 1)], true, "c", 12).await.attempt.unwrap();
        let voided =
            t.db.settle_capture(
                &c,
                SettleOutcome::Declined {
                    code: "card".into(),
                    message: "declined".into(),
                },
                Timestamp(13),
            )
            .await
            .unwrap()
            .shipment;
        assert_eq!(voided.state, ShipmentState::Voided, "{}", t.name);
        assert_eq!(voided, read_back(&t, "c").await, "{}: void", t.name);
        let d = reserve(vec![(l1, 1)], true, "d", 14).await.attempt.unwrap();
        let answer =
            t.db.settle_capture(
                &d,
                SettleOutcome::Captured {
                    reference: "ch_d".into(),
                },
                Timestamp(15),
            )
            .await
            .unwrap()
            .shipment;
        assert_eq!(answer, read_back(&t, "d").await, "{}: capture", t.name);

        let e = reserve(vec![(l1, 1)], false, "e", 16).await.shipment.id;
        let answer =
            t.db.apply_changes(e, None, shipped.clone(), Timestamp(17))
                .await
                .unwrap();
        assert_eq!(answer.shipped_at, Some(Timestamp(17)), "{}", t.name);
        assert_eq!(
            answer,
            read_back(&t, "e").await,
            "{}: complete, uncaptured",
            t.name
        );

        // Invoices are issued in the settle that records a capture, numbered one after another
        // (b's capture started later, d's at creation); a shipment has its confirmation queued
        // once, when it becomes shipped (b by the changes that waited for its capture, e by its
        // first complete and not again by its second).
        t.db.apply_changes(e, None, shipped.clone(), Timestamp(18))
            .await
            .unwrap();
        let invoice = |id| {
            let db = &t.db;
            async move { db.find_invoice(id).await.unwrap().map(|i| i.number) }
        };
        let (b_invoice, d_invoice) = (invoice(b).await, invoice(d.shipment).await);
        assert!(b_invoice.is_some(), "{}: b invoiced", t.name);
        assert_eq!(d_invoice, b_invoice.map(|n| n + 1), "{}", t.name);
        assert_eq!(invoice(e).await, None, "{}: e is not captured", t.name);
        let queued =
            t.db.claim_outbox(Timestamp(100), 60_000, 100)
                .await
                .unwrap();
        let confirmations = |id| {
            queued
                .iter()
                .filter(|m| m.shipment == id && m.kind == OutboxKind::ShippingConfirmation)
                .count()
        };
        assert_eq!(
            (confirmations(b), confirmations(e), confirmations(a)),
            (1, 1, 0),
            "{}: {queued:?}",
            t.name
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_due_message_is_leased_to_one_claimer_earliest_due_first() {
    each_backend(|t| async move {
        let other = consign_db::Database::open(&t.throwaway.config).expect("a second instance");
        // Six shipped shipments with a confirmation each, queued at 2..=7.
        let mut queued = Vec::new();
        for order in [41, 42] {
            let imported = imported_as(&t, import(Some(order), "c@example.com", "auth"), 1).await;
            let (l1, l2) = (
                imported.lines()[0].line_id().0,
                imported.lines()[1].line_id().0,
            );
            for line in [l1, l1, l2] {
                let details = ShipmentDetails {
                    shipped: true,
                    send_email: Some(true),
                    ..ShipmentDetails::default()
                };
                let at = Timestamp(2 + queued.len() as i64);
                let reserved =
                    t.db.reserve_shipment(
                        OrderId(order),
                        ship(&[(line, 1)], false),
                        Providers::any(),
                        details,
                        None,
                        at,
                    )
                    .await
                    .unwrap();
                queued.push(reserved.shipment.id);
            }
        }
        // Two instances claim at once, four at most each: every message is leased exactly once.
        let claim = |db: consign_db::Database| {
            tokio::spawn(async move { db.claim_outbox(Timestamp(100), 60_000, 4).await.unwrap() })
        };
        let (a, b) = tokio::join!(claim(t.db.clone()), claim(other.clone()));
        let (a, b) = (a.unwrap(), b.unwrap());
        let mut ids: Vec<i64> = a.iter().chain(&b).map(|m| m.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), a.len() + b.len(), "{}: {a:?} {b:?}", t.name);
        let mut shipments: Vec<ShipmentId> = a.iter().chain(&b).map(|m| m.shipment).collect();
        shipments.sort_by_key(|s| (s.order.0, s.number));
        assert_eq!(shipments, queued, "{}: {a:?} {b:?}", t.name);
        assert!(a.len() <= 4 && b.len() <= 4, "{}: the limit", t.name);
        for batch in [&a, &b] {
            assert!(batch.windows(2).all(|w| w[0].id < w[1].id), "{}", t.name);
        }

        // Leased: nothing is due again until the lease lapses.
        let early = t.db.claim_outbox(Timestamp(60_099), 60_000, 10).await;
        assert_eq!(early.unwrap(), vec![], "{}", t.name);

        // Two sent in one write, one failed with a retry due after the others' leases lapse.
        t.db.outbox_sent(&[ids[0], ids[2]], Timestamp(101))
            .await
            .unwrap();
        t.db.outbox_failed(ids[1], "mail server down", Timestamp(200_000))
            .await
            .unwrap();
        let again =
            t.db.claim_outbox(Timestamp(60_100), 60_000, 10)
                .await
                .unwrap();
        let again_ids: Vec<i64> = again.iter().map(|m| m.id).collect();
        assert_eq!(again_ids, ids[3..].to_vec(), "{}", t.name);

        // The earliest due goes first: the three leased until 120,100 before the retry due at
        // 200,000, although the retry was queued first.
        let first =
            t.db.claim_outbox(Timestamp(300_000), 60_000, 1)
                .await
                .unwrap();
        assert_eq!(first.len(), 1, "{}", t.name);
        assert!(ids[3..].contains(&first[0].id), "{}: {first:?}", t.name);
        let rest =
            t.db.claim_outbox(Timestamp(300_000), 60_000, 10)
                .await
                .unwrap();
        let retry: Vec<&OutboxMessage> = rest.iter().filter(|m| m.id == ids[1]).collect();
        assert_eq!(retry.len(), 1, "{}: {rest:?}", t.name);
        assert_eq!(retry[0].attempts, 1, "{}", t.name);
        assert_eq!(rest.len(), 3, "{}: {rest:?}", t.name);

        // Refused for good: never claimed again, however late; counted apart from the depth.
        t.db.outbox_refused(ids[1], "550 no such mailbox", Timestamp(300_001))
            .await
            .unwrap();
        // A slow pass's late failure or put-off (its lease ran out and another pass refused
        // the message meanwhile) leaves it refused.
        t.db.outbox_failed(ids[1], "timed out", Timestamp(300_002))
            .await
            .unwrap();
        t.db.outbox_later(ids[1], "waits", Timestamp(300_003))
            .await
            .unwrap();
        let stats = t.db.stats().await.unwrap();
        assert_eq!(
            (stats.outbox_depth, stats.outbox_refused),
            (3, 1),
            "{}: the other three are still leased",
            t.name
        );
        let later =
            t.db.claim_outbox(Timestamp(10_000_000), 60_000, 10)
                .await
                .unwrap();
        let later_ids: Vec<i64> = later.iter().map(|m| m.id).collect();
        assert!(!later_ids.contains(&ids[1]), "{}: {later:?}", t.name);
        assert_eq!(later.len(), 3, "{}: {later:?}", t.name);

        // An operator lists it and queues it again, once; a sent message is not queued again.
        let refused = t.db.refused_messages(10).await.unwrap();
        assert_eq!(refused.len(), 1, "{}: {refused:?}", t.name);
        assert_eq!(refused[0].message.id, ids[1], "{}", t.name);
        assert!(refused[0].error.contains("no such mailbox"), "{}", t.name);
        assert_eq!(refused[0].refused_at, Timestamp(300_001), "{}", t.name);
        assert!(
            !t.db
                .resend_refused(ids[0], Timestamp(10_000_001))
                .await
                .unwrap(),
            "{}: a sent message",
            t.name
        );
        assert!(t
            .db
            .resend_refused(ids[1], Timestamp(10_000_001))
            .await
            .unwrap());
        assert!(!t
            .db
            .resend_refused(ids[1], Timestamp(10_000_001))
            .await
            .unwrap());
        let resent =
            t.db.claim_outbox(Timestamp(10_000_002), 60_000, 10)
                .await
                .unwrap();
        let resent: Vec<(i64, u32)> = resent.iter().map(|m| (m.id, m.attempts)).collect();
        assert_eq!(
            resent,
            vec![(ids[1], 0)],
            "{}: the others are leased",
            t.name
        );
        assert_eq!(t.db.stats().await.unwrap().outbox_refused, 0, "{}", t.name);
    })
    .await;
}
