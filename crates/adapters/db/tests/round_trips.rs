//! Round trips to PostgreSQL per captured shipment, counted by a proxy in front of the server
//! that reads the client's side of the wire protocol: every simple query (`Q`) and every `Sync`
//! (`S`, which ends an extended-protocol exchange and makes the server answer) is one round trip.
//! The store is driven through its port as the create-shipment saga drives it: reserve, then
//! settle the capture.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

mod shipping;

use consign_db::testing::{postgres_required, Throwaway};
use consign_db::{Database, DbConfig};
use consign_domain::*;
use consign_ports::*;
use shipping::{import, progress, ship};

/// A TCP proxy to `upstream` that counts the client's round trips.
struct Proxy {
    address: String,
    round_trips: Arc<AtomicU64>,
}

impl Proxy {
    fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address").to_string();
        let round_trips = Arc::new(AtomicU64::new(0));
        let (upstream, counter) = (upstream.to_owned(), round_trips.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let (mut from_server, mut to_client) = (
                    server.try_clone().expect("clone"),
                    client.try_clone().expect("clone"),
                );
                std::thread::spawn(move || std::io::copy(&mut from_server, &mut to_client));
                let counter = counter.clone();
                std::thread::spawn(move || count_and_forward(client, server, &counter));
            }
        });
        Proxy {
            address,
            round_trips,
        }
    }

    fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::SeqCst)
    }
}

/// Forwards the client's messages, counting `Q` and `S`. The first messages have no type byte
/// (an SSL or GSS request, then the startup message, protocol 3.0).
fn count_and_forward(mut client: TcpStream, mut server: TcpStream, counter: &AtomicU64) {
    let mut started = false;
    loop {
        let mut kind = [0u8; 1];
        if started && client.read_exact(&mut kind).is_err() {
            return;
        }
        let mut length = [0u8; 4];
        if client.read_exact(&mut length).is_err() {
            return;
        }
        let mut body = vec![0u8; (u32::from_be_bytes(length) as usize).saturating_sub(4)];
        if client.read_exact(&mut body).is_err() {
            return;
        }
        if started {
            if kind[0] == b'Q' || kind[0] == b'S' {
                counter.fetch_add(1, Ordering::SeqCst);
            }
            if server.write_all(&kind).is_err() {
                return;
            }
        } else if body.get(..4) == Some(&196_608u32.to_be_bytes()[..]) {
            started = true;
        }
        if server.write_all(&length).is_err() || server.write_all(&body).is_err() {
            return;
        }
    }
}

/// A throwaway PostgreSQL database reached through a counting proxy, with order 1 imported
/// (one line of 1,000 units); `None` when PostgreSQL is unreachable outside CI.
async fn order_through_a_proxy() -> Option<(Throwaway, Proxy, Database, LineId)> {
    let throwaway = match Throwaway::postgres() {
        Ok(t) => t,
        Err(why) if postgres_required() => panic!("CI=true but PostgreSQL is unreachable: {why}"),
        Err(why) => {
            eprintln!("SKIPPED (PostgreSQL unreachable: {why})");
            return None;
        }
    };
    // postgres://user@host:port/name: the proxy takes the place of host:port.
    let (scheme_user, rest) = throwaway.url.split_once('@').expect("user@host");
    let (host, database) = rest.split_once('/').expect("host/database");
    let proxy = Proxy::start(host);
    let url = format!("{scheme_user}@{}/{database}?sslmode=disable", proxy.address);
    let db = Database::open(&DbConfig::from_url(&url)).expect("open through the proxy");
    let line = import(&db, 1, 1_000).await;
    Some((throwaway, proxy, db, line))
}

/// Settles `attempt` as captured.
async fn settle(db: &Database, attempt: &CaptureAttempt) -> ShipmentView {
    db.settle_capture(
        attempt,
        SettleOutcome::Captured {
            reference: "ch_1".into(),
        },
        Timestamp(3),
    )
    .await
    .expect("settle")
    .shipment
}

/// Starts the capture of an uncaptured shipment, with changes that ship it (and set its
/// email) waiting for the capture.
async fn start_capture(db: &Database, id: ShipmentId, send_email: Option<bool>) -> CaptureAttempt {
    let changes = ShipmentChanges {
        shipped: true,
        send_email,
        ..ShipmentChanges::default()
    };
    shipping::start_capture(db, id, changes).await
}

/// Reserves `quantity` units of order 1's `line`, captured or not.
async fn reserve(db: &Database, line: LineId, quantity: u32, capture: bool) -> Reservation {
    ship(db, 1, line, quantity, capture).await.expect("reserve")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_captured_shipment_costs_at_most_three_round_trips_on_postgresql() {
    let Some((_throwaway, proxy, db, line)) = order_through_a_proxy().await else {
        return;
    };
    let ship = || async {
        let reservation = reserve(&db, line, 1, true).await;
        let attempt = reservation.attempt.expect("a capture attempt");
        let settled = settle(&db, &attempt).await;
        assert_eq!(settled.state, ShipmentState::Captured);
        assert_eq!(
            settled.lines.len(),
            1,
            "the settled shipment comes with its lines"
        );
    };
    // The first shipments prepare each statement once per connection (a round trip of its own).
    for _ in 0..5 {
        ship().await;
    }
    let before = proxy.round_trips();
    let counted_before = db.statements_sent();
    let shipments = 20;
    for _ in 0..shipments {
        ship().await;
    }
    let per_shipment = (proxy.round_trips() - before) as f64 / f64::from(shipments);
    // What the store counts itself (for /metrics and the benchmark) is what the wire carried.
    assert_eq!(
        db.statements_sent() - counted_before,
        proxy.round_trips() - before,
        "the store's own count of statements sent matches the round trips on the wire"
    );
    eprintln!("round trips per captured shipment: {per_shipment:.2}");
    assert!(
        per_shipment <= 3.0,
        "{per_shipment:.2} round trips per captured shipment"
    );
    assert!(per_shipment >= 2.0, "the proxy saw the traffic");
    let order = &db.list_orders(OrderQuery::default()).await.expect("list")[0];
    assert_eq!(order.order.line(line).unwrap().allocated(), 25);
    assert_eq!(order.order.committed().minor(), 25 * 1_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_capture_starts_in_two_round_trips_and_settles_with_its_changes_in_two() {
    let Some((_throwaway, proxy, db, line)) = order_through_a_proxy().await else {
        return;
    };
    let mut number = 0;
    let mut complete = || {
        number += 1;
        let (db, proxy) = (&db, &proxy);
        async move {
            let reservation = reserve(db, line, 2, false).await;
            assert!(reservation.attempt.is_none());
            let id = reservation.shipment.id;
            assert_eq!(id.number, number);
            let before = proxy.round_trips();
            let attempt = start_capture(db, id, Some(true)).await;
            assert!(
                attempt.idempotency_key.ends_with(&format!("-{number}-1")),
                "{}",
                attempt.idempotency_key
            );
            let started_in = proxy.round_trips() - before;
            let before = proxy.round_trips();
            let settled = settle(db, &attempt).await;
            assert_eq!(settled.state, ShipmentState::Captured);
            assert!(
                settled.details.shipped,
                "the changes that waited are applied"
            );
            assert_eq!(settled.lines.len(), 1, "answered with its lines");
            let settled_in = proxy.round_trips() - before;
            // What the confirmation's dispatch and `GET shipment` read: one statement.
            let before = proxy.round_trips();
            let listed = db.find_shipment(id).await.expect("read").expect("live");
            let listed_in = proxy.round_trips() - before;
            assert_eq!(listed.shipment, settled, "listed as the settle answered it");
            assert_eq!(
                listed.order.order.line(line).unwrap().in_capture(),
                2 * number
            );
            let invoice = db.find_invoice(id).await.expect("read the invoice");
            assert_eq!(
                invoice.map(|i| i.number),
                Some(i64::from(number)),
                "invoiced with the capture, numbered in turn"
            );
            (started_in, settled_in, listed_in)
        }
    };
    // The first ones prepare each statement once per connection (a round trip of its own).
    for _ in 0..3 {
        complete().await;
    }
    let (start, settle, listed) = complete().await;
    eprintln!(
        "round trips to start a later capture: {start}, to settle it: {settle}, \
         to read it with its order: {listed}"
    );
    let order = &db.list_orders(OrderQuery::default()).await.expect("list")[0];
    let line = order.order.line(line).unwrap();
    assert_eq!((line.allocated(), line.in_capture()), (8, 8));
    assert_eq!(order.order.committed().minor(), 8 * 1_000);
    // The shipment with its order (no lock), then one write of the shipment, the line moves,
    // the counters and the attempt that commits only if the order's version is the one read.
    assert_eq!(start, 2, "round trips to start a later capture");
    // The open attempt read with its shipment (no lock), then one write of the shipment, the
    // attempt, the invoice and the confirmation that commits only if the shipment's row is the
    // version read and its attempt still open.
    assert_eq!(settle, 2, "round trips to settle it with its changes");
    // What the confirmation's dispatch and `GET shipment` read.
    assert_eq!(listed, 1, "a shipment with its order in one read");
    let due = db
        .claim_outbox(Timestamp(4), 60_000, 100)
        .await
        .expect("claim the outbox");
    let confirmed: Vec<(u32, OutboxKind)> = due
        .into_iter()
        .map(|m| (m.shipment.number, m.kind))
        .collect();
    assert_eq!(
        confirmed,
        (1..=4)
            .map(|n| (n, OutboxKind::ShippingConfirmation))
            .collect::<Vec<_>>(),
        "each shipment's confirmation queued once, with its capture"
    );
}

/// A page of shipments is read in two statements whatever its length (the page, then its
/// shipments with their orders), not two more a shipment; the shipments an outbox pass confirms
/// are read in one, and the pass marks its messages sent in one; a page of orders in four.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_and_batches_are_read_and_marked_in_a_fixed_number_of_round_trips() {
    let Some((_throwaway, proxy, db, line)) = order_through_a_proxy().await else {
        return;
    };
    let mut ids = Vec::new();
    for _ in 0..12 {
        ids.push(reserve(&db, line, 1, false).await.shipment.id);
    }
    // Three completed, each with its confirmation queued; nine left in progress.
    for id in &ids[..3] {
        let attempt = start_capture(&db, *id, Some(true)).await;
        settle(&db, &attempt).await;
    }
    let in_progress = || ShipmentQuery {
        status: ShipmentStatus::InProgress,
        order: Some(OrderId(1)),
        customer_id: None,
        newer_than: None,
        older_than: None,
        limit: 100,
        offset: 0,
    };
    let counted = |before: u64| proxy.round_trips() - before;
    // The first of each prepares its statements (a round trip of its own).
    db.find_shipments(&ids).await.expect("read");
    db.list_shipments(in_progress()).await.expect("list");
    db.outbox_sent(&[], Timestamp(4)).await.expect("mark none");

    let before = proxy.round_trips();
    let together = db.find_shipments(&ids).await.expect("read");
    assert_eq!(
        counted(before),
        1,
        "twelve shipments with their order in one read"
    );
    assert_eq!(together.len(), 12);
    assert_eq!(
        together.iter().map(|l| l.shipment.id).collect::<Vec<_>>(),
        ids,
        "in the order asked"
    );
    let before = proxy.round_trips();
    let page = db.list_shipments(in_progress()).await.expect("list");
    // The page, its orders with their lines, its shipments' lines (each order read once, not
    // once for each of its shipments with its lines joined); in one snapshot, begun repeatable
    // read in one statement and committed.
    assert_eq!(counted(before), 5, "a page of nine in five statements");
    assert_eq!(
        page.iter().map(|l| l.shipment.id).collect::<Vec<_>>(),
        ids[3..].to_vec()
    );

    let due = db
        .claim_outbox(Timestamp(4), 60_000, 100)
        .await
        .expect("claim");
    assert_eq!(due.len(), 3, "{due:?}");
    let messages: Vec<i64> = due.iter().map(|m| m.id).collect();
    let before = proxy.round_trips();
    db.outbox_sent(&messages, Timestamp(5))
        .await
        .expect("mark sent");
    assert_eq!(
        counted(before),
        1,
        "three messages marked sent in one write"
    );
    let later = db
        .claim_outbox(Timestamp(1_000_000), 60_000, 100)
        .await
        .expect("claim after the lease");
    assert_eq!(later, vec![], "sent messages are not due again");

    // A page of returns: the page and four statements however many (their orders, shipments,
    // lines and credit notes), where it was four more a return; in one snapshot.
    for id in &ids[..3] {
        let whole = ReturnRequest {
            lines: None,
            shipping: Cost::None,
            handling: Cost::None,
            voucher: Cost::None,
            return_cost: None,
        };
        db.create_return(
            *id,
            whole,
            false,
            Providers::any(),
            ReturnDetails::default(),
            None,
            Timestamp(6),
        )
        .await
        .expect("return");
    }
    let returns_of_order_1 = || ReturnQuery {
        id: None,
        shipment: None,
        order: Some(OrderId(1)),
        customer_id: None,
        newer_than: None,
        older_than: None,
        limit: 100,
        offset: 0,
    };
    db.list_returns(returns_of_order_1()).await.expect("list");
    let before = proxy.round_trips();
    let returns = db.list_returns(returns_of_order_1()).await.expect("list");
    assert_eq!(
        counted(before),
        7,
        "a page of three returns in seven statements"
    );
    assert_eq!(returns.len(), 3);
    assert!(
        returns
            .iter()
            .all(|r| r.lines.len() == 1 && r.shipment_row_id != 0),
        "{returns:?}"
    );

    // A page of orders: six statements however many (the page, then the orders' lines, live
    // shipments and shipment lines, where it was three more an order; in one snapshot, which
    // takes a transaction begun repeatable read in one statement, and committed).
    for order in 2..=6 {
        import(&db, order, 10).await;
    }
    db.list_orders(OrderQuery::default()).await.expect("list");
    let before = proxy.round_trips();
    let orders = db.list_orders(OrderQuery::default()).await.expect("list");
    assert_eq!(counted(before), 6, "a page of six orders in six statements");
    assert_eq!(orders.len(), 6);
    assert_eq!(orders[0].shipments.len(), 12, "order 1's live shipments");
    assert_eq!(
        orders[0].shipments[0].lines.len(),
        1,
        "each with its own lines"
    );
    assert!(orders[1..].iter().all(|o| o.shipments.is_empty()));
}

/// Opens a second instance on the proxy's database, straight to PostgreSQL (not counted).
fn another_instance(throwaway: &Throwaway) -> Database {
    Database::open(&DbConfig::from_url(&format!(
        "{}?sslmode=disable",
        throwaway.url
    )))
    .expect("a second instance")
}

/// An order this instance imported or shipped last is planned from what it wrote: the reserve
/// is one round trip (its compare-and-set write), so a captured shipment costs two. Planned
/// from the snapshot, every unit is shipped exactly once, the last capture is the final one,
/// and a shipment beyond the order is refused as a read would refuse it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shipment_of_an_order_this_instance_wrote_costs_two_round_trips() {
    let Some((_throwaway, proxy, db, _)) = order_through_a_proxy().await else {
        return;
    };
    // Each statement is prepared once per connection (a round trip of its own): warm up.
    let warm = import(&db, 2, 3).await;
    for _ in 0..3 {
        let attempt = ship(&db, 2, warm, 1, true).await.expect("ship").attempt;
        let attempt = attempt.expect("captured");
        settle(&db, &attempt).await;
    }
    let line = import(&db, 3, 10).await;
    let before = proxy.round_trips();
    let mut finals = Vec::new();
    for number in 1..=10 {
        let reservation = ship(&db, 3, line, 1, true).await.expect("ship");
        assert_eq!(reservation.shipment.id.number, number, "numbered in turn");
        let attempt = reservation.attempt.expect("captured");
        finals.push(attempt.final_capture);
        let settled = settle(&db, &attempt).await;
        assert_eq!(settled.state, ShipmentState::Captured);
    }
    let per_shipment = (proxy.round_trips() - before) as f64 / 10.0;
    eprintln!("round trips per captured shipment of a known order: {per_shipment:.2}");
    assert!(
        per_shipment <= 2.0,
        "{per_shipment:.2} round trips per shipment"
    );
    assert_eq!(progress(&db, 3).await, (10, 10_000));
    assert_eq!(
        finals.iter().filter(|f| **f).count(),
        1,
        "only the last capture completes the order: {finals:?}"
    );
    assert!(finals[9], "the tenth capture is the final one");
    match ship(&db, 3, line, 1, true).await {
        Err(StoreError::Rejected(_)) => {}
        other => panic!("an eleventh unit must be refused, got {other:?}"),
    }
    assert_eq!(
        progress(&db, 3).await,
        (10, 10_000),
        "the refusal wrote nothing"
    );
}

/// Another instance ships the same order in between: this instance's snapshot is out of date,
/// its write changes nothing, and it plans again from what that write found (no read of its
/// own): the reserve costs at most two round trips (the write that lost, the write that won),
/// as a read and a write did before, and takes the next number and the units that are left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_changed_by_another_instance_is_planned_again_from_what_the_write_found() {
    let Some((throwaway, proxy, db, _)) = order_through_a_proxy().await else {
        return;
    };
    let other = another_instance(&throwaway);
    let line = import(&db, 2, 10).await;
    // Warm up this instance's statements, and leave it a snapshot of order 2.
    ship(&db, 2, line, 1, false).await.expect("ship");
    ship(&db, 2, line, 1, false).await.expect("ship");
    let taken = ship(&other, 2, line, 3, false)
        .await
        .expect("the other instance ships");
    assert_eq!(taken.shipment.id.number, 3);
    let before = proxy.round_trips();
    let reservation = ship(&db, 2, line, 5, true).await.expect("ship");
    let trips = proxy.round_trips() - before;
    assert_eq!(
        reservation.shipment.id.number, 4,
        "the next number, not the snapshot's"
    );
    assert_eq!(reservation.attempt.expect("captured").amount.minor(), 5_000);
    eprintln!("round trips to reserve from an outdated snapshot: {trips}");
    assert!(
        trips <= 2,
        "{trips} round trips to reserve from an outdated snapshot"
    );
    assert_eq!(progress(&db, 2).await, (10, 5_000));
    // What is left is refused as a read would refuse it.
    match ship(&db, 2, line, 1, true).await {
        Err(StoreError::Rejected(_)) => {}
        other => panic!("an eleventh unit must be refused, got {other:?}"),
    }
}

/// A snapshot that says the order is fully shipped is not the database's word: after another
/// instance deletes a shipment, the units it released ship from here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_is_never_given_from_an_outdated_snapshot() {
    let Some((throwaway, _proxy, db, _)) = order_through_a_proxy().await else {
        return;
    };
    let other = another_instance(&throwaway);
    let line = import(&db, 2, 4).await;
    let first = ship(&db, 2, line, 4, false).await.expect("ship all four");
    other
        .delete_shipment(first.shipment.id, None, None, Timestamp(3))
        .await
        .expect("the other instance deletes it");
    let again = ship(&db, 2, line, 4, false)
        .await
        .expect("the released units ship");
    assert_eq!(again.shipment.id.number, 2);
    assert_eq!(progress(&db, 2).await.0, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settle_that_waits_for_its_attempt_writes_the_shipment_as_it_then_stands() {
    use diesel::connection::SimpleConnection;
    use diesel::{Connection, PgConnection};
    let Some((throwaway, _proxy, db, line)) = order_through_a_proxy().await else {
        return;
    };
    let id = reserve(&db, line, 2, false).await.shipment.id;
    let attempt = start_capture(&db, id, None).await;
    // Another transaction holds the attempt's row and changes a column of the shipment that
    // the settle keeps as it finds it (the tracking, since the waiting changes bring none).
    let mut other = PgConnection::establish(&throwaway.url).expect("a second connection");
    other
        .batch_execute(&format!(
            "BEGIN; \
             UPDATE capture_attempts SET passes = passes + 1 WHERE idempotency_key = '{}'; \
             UPDATE shipments SET tracking = 'set meanwhile' \
             WHERE order_id = {} AND number = {};",
            attempt.idempotency_key, id.order.0, id.number
        ))
        .expect("hold the attempt");
    let settling = {
        let db = db.clone();
        tokio::spawn(async move { settle(&db, &attempt).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!settling.is_finished(), "the settle waits for the attempt");
    other.batch_execute("COMMIT").expect("commit");
    let settled = settling.await.expect("settled");
    assert_eq!(settled.state, ShipmentState::Captured);
    assert!(settled.details.shipped);
    let stored = db.find_shipment(id).await.expect("read").expect("live");
    assert_eq!(
        stored.shipment.details.shipping.tracking, "set meanwhile",
        "the settle wrote the shipment as it stood once its attempt was free"
    );
}

/// A capture's start planned from a read that another transaction then makes stale writes
/// nothing: its compare-and-set finds the order's version moved, and the locked transaction
/// decides again from what was committed (here: the shipment deleted meanwhile).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capture_start_planned_from_a_stale_read_writes_nothing_and_decides_again() {
    use diesel::connection::SimpleConnection;
    use diesel::{Connection, PgConnection, RunQueryDsl};
    let Some((throwaway, _proxy, db, line)) = order_through_a_proxy().await else {
        return;
    };
    let id = reserve(&db, line, 2, false).await.shipment.id;
    assert_eq!(progress(&db, 1).await, (2, 0));
    // Another instance deletes the shipment; its transaction is open while the start reads.
    let mut other = PgConnection::establish(&throwaway.url).expect("a second connection");
    other
        .batch_execute(&format!(
            "BEGIN; \
             UPDATE orders SET version = version + 1 WHERE id = 1; \
             UPDATE shipments SET state = 'deleted' WHERE order_id = 1 AND number = {}; \
             UPDATE order_lines SET allocated = allocated - 2 WHERE order_id = 1 AND line_id = {};",
            id.number, line.0
        ))
        .expect("hold the order");
    let starting = {
        let db = db.clone();
        tokio::spawn(async move {
            db.begin_capture(
                id,
                None,
                Providers::any(),
                ShipmentChanges::default(),
                None,
                Timestamp(3),
            )
            .await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!starting.is_finished(), "the start waits for the order");
    other.batch_execute("COMMIT").expect("commit");
    match starting.await.expect("joined") {
        Err(StoreError::ShipmentNotFound(gone)) => assert_eq!(gone, id),
        other => panic!("a deleted shipment's capture must not start, got {other:?}"),
    }
    assert_eq!(progress(&db, 1).await, (0, 0), "nothing moved into capture");
    #[derive(diesel::QueryableByName)]
    struct Attempts {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let attempts: Attempts = diesel::sql_query(format!(
        "SELECT count(*) AS n FROM capture_attempts WHERE order_id = 1 AND number = {}",
        id.number
    ))
    .get_result(&mut other)
    .expect("count attempts");
    assert_eq!(attempts.n, 0, "no attempt recorded");
}
