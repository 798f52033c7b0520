//! SQLite plans a shipment from this instance's snapshot of the order before its turn at the
//! writer thread, and the writer writes it only if the order is still at the snapshot's
//! version. A second instance on the same file makes the snapshot out of date: the write must
//! then be planned again from the database, never from the snapshot.

mod shipping;

use consign_db::testing::Throwaway;
use consign_db::Database;
use consign_domain::{ShipmentId, ShipmentState};
use consign_ports::*;
use shipping::{import, progress, ship};

/// This instance and a second one on the same file.
fn two_instances() -> (Throwaway, Database, Database) {
    let file = Throwaway::sqlite();
    let here = Database::open(&file.config).expect("open");
    let other = Database::open(&file.config).expect("a second instance");
    (file, here, other)
}

/// From this instance's snapshot, shipments are numbered in turn and every unit ships once;
/// after the other instance ships from the same order, the next shipment here takes the next
/// number and only the units left, and what is left beyond is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shipment_planned_from_an_outdated_snapshot_is_planned_again() {
    let (_file, here, other) = two_instances();
    let line = import(&here, 1, 10).await;
    for number in 1..=2 {
        let shipped = ship(&here, 1, line, 1, false).await.expect("ship");
        assert_eq!(shipped.shipment.id.number, number, "numbered in turn");
    }
    let taken = ship(&other, 1, line, 3, false)
        .await
        .expect("the other instance ships");
    assert_eq!(taken.shipment.id.number, 3);
    let reservation = ship(&here, 1, line, 5, true).await.expect("ship");
    assert_eq!(
        reservation.shipment.id.number, 4,
        "the next number, not the snapshot's"
    );
    let attempt = reservation.attempt.expect("captured");
    assert_eq!(attempt.amount.minor(), 5_000);
    assert_eq!(progress(&here, 1).await, (10, 5_000));
    match ship(&here, 1, line, 1, true).await {
        Err(StoreError::Rejected(_)) => {}
        other => panic!("an eleventh unit must be refused, got {other:?}"),
    }
    assert_eq!(
        progress(&here, 1).await,
        (10, 5_000),
        "the refusal wrote nothing"
    );
}

/// A snapshot that says the order is fully shipped is not the database's word: after the other
/// instance deletes a shipment, the units it released ship from here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_is_never_given_from_an_outdated_snapshot() {
    let (_file, here, other) = two_instances();
    let line = import(&here, 1, 4).await;
    let first = ship(&here, 1, line, 4, false).await.expect("ship all four");
    other
        .delete_shipment(first.shipment.id, None, None, Timestamp(3))
        .await
        .expect("the other instance deletes it");
    let again = ship(&here, 1, line, 4, false)
        .await
        .expect("the released units ship");
    assert_eq!(again.shipment.id.number, 2);
    assert_eq!(progress(&here, 1).await.0, 4);
}

/// Settles `reservation`'s capture on `db` as captured with `reference`.
async fn settle(db: &Database, reservation: &Reservation, reference: &str) -> ShipmentView {
    let attempt = reservation.attempt.as_ref().expect("captured");
    db.settle_capture(
        attempt,
        SettleOutcome::Captured {
            reference: reference.into(),
        },
        Timestamp(7),
    )
    .await
    .expect("settle")
    .shipment
}

/// The shipment as stored, read back.
async fn stored(db: &Database, reservation: &Reservation) -> ShipmentView {
    db.find_shipment(reservation.shipment.id)
        .await
        .expect("read")
        .expect("the shipment")
        .shipment
}

/// A capture settled from the rows this instance reserved (no read on the writer thread)
/// answers the shipment exactly as it is stored, captured with its reference, and issues its
/// invoice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capture_settled_from_its_reserved_rows_answers_what_is_stored() {
    let (_file, here, _other) = two_instances();
    let line = import(&here, 1, 10).await;
    for units in [3, 2] {
        let reservation = ship(&here, 1, line, units, true).await.expect("ship");
        let settled = settle(&here, &reservation, "cap-1").await;
        assert_eq!(settled, stored(&here, &reservation).await);
        assert_eq!(settled.state, ShipmentState::Captured);
        assert_eq!(settled.capture_reference.as_deref(), Some("cap-1"));
        assert!(here
            .find_invoice(reservation.shipment.id)
            .await
            .expect("read")
            .is_some());
    }
}

/// A capture another instance settled first is not settled again from the rows kept here: the
/// settle answers what is stored, and the shipment keeps its one invoice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capture_settled_elsewhere_is_not_settled_again_from_its_reserved_rows() {
    let (_file, here, other) = two_instances();
    let line = import(&here, 1, 10).await;
    let reservation = ship(&here, 1, line, 3, true).await.expect("ship");
    let first = settle(&other, &reservation, "cap-other").await;
    let invoice = other
        .find_invoice(reservation.shipment.id)
        .await
        .expect("read")
        .expect("invoiced");
    let again = settle(&here, &reservation, "cap-here").await;
    assert_eq!(again, first, "answered as the first settle left it");
    assert_eq!(again, stored(&here, &reservation).await);
    assert_eq!(
        here.find_invoice(reservation.shipment.id)
            .await
            .expect("read"),
        Some(invoice)
    );
}

/// Starts the capture of the uncaptured shipment `id` on `db`, with changes that ship it with
/// a tracking number and its confirmation on, waiting for the capture.
async fn start_capture(db: &Database, id: ShipmentId) -> CaptureAttempt {
    let changes = ShipmentChanges {
        shipped: true,
        send_email: Some(true),
        shipping: ShippingUpdate {
            tracking: Some("T-1".into()),
            ..ShippingUpdate::default()
        },
        ..ShipmentChanges::default()
    };
    shipping::start_capture(db, id, changes).await
}

/// Settles a later capture on `db` as captured with `reference`; answers the shipment and
/// the statements the settle sent.
async fn settle_started(
    db: &Database,
    attempt: &CaptureAttempt,
    reference: &str,
) -> (ShipmentView, u64) {
    let before = db.statements_sent();
    let settled = db
        .settle_capture(
            attempt,
            SettleOutcome::Captured {
                reference: reference.into(),
            },
            Timestamp(7),
        )
        .await
        .expect("settle")
        .shipment;
    (settled, db.statements_sent() - before)
}

/// The confirmations due, by shipment.
async fn confirmations(db: &Database) -> Vec<ShipmentId> {
    db.claim_outbox(Timestamp(10), 1, 100)
        .await
        .expect("claim")
        .into_iter()
        .filter(|m| m.kind == OutboxKind::ShippingConfirmation)
        .map(|m| m.shipment)
        .collect()
}

/// A later capture whose start this instance wrote is settled from the rows the start left
/// (no read on the writer thread, fewer statements than a settle that reads them): it answers
/// the shipment exactly as stored, captured and shipped with the changes that waited for it,
/// with its invoice and one confirmation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_capture_settled_from_its_started_rows_answers_what_is_stored() {
    let (_file, here, other) = two_instances();
    let line = import(&here, 1, 10).await;
    // Twice each way: the first settles of each kind also prepare their statements.
    let mut shipped = Vec::new();
    for round in 0..2 {
        let kept = ship(&here, 1, line, 3 - round, false).await.expect("ship");
        let read = ship(&here, 1, line, 2, false).await.expect("ship");
        let kept_attempt = start_capture(&here, kept.shipment.id).await;
        // Started by the other instance: this one keeps no rows of it and reads them.
        let read_attempt = start_capture(&other, read.shipment.id).await;
        let kept_settle = settle_started(&here, &kept_attempt, "cap-kept").await;
        let read_settle = settle_started(&here, &read_attempt, "cap-read").await;
        shipped.push((kept, kept_settle, read, read_settle));
    }
    let (kept, (settled, from_rows), read, (settled_read, from_read)) =
        shipped.pop().expect("the second round");
    assert!(
        from_rows < from_read,
        "settled from its rows in {from_rows} statements, from a read in {from_read}"
    );
    for (settled, reservation, reference) in [
        (settled, &kept, "cap-kept"),
        (settled_read, &read, "cap-read"),
    ] {
        assert_eq!(settled, stored(&here, reservation).await);
        assert_eq!(settled.state, ShipmentState::Captured);
        assert_eq!(settled.capture_reference.as_deref(), Some(reference));
        assert!(settled.details.shipped);
        assert_eq!(settled.details.shipping.tracking, "T-1");
        assert!(here
            .find_invoice(reservation.shipment.id)
            .await
            .expect("read")
            .is_some());
    }
    assert_eq!(progress(&here, 1).await, (9, 9_000));
    let confirmed = confirmations(&here).await;
    assert_eq!(confirmed.len(), 4, "one confirmation each: {confirmed:?}");
    assert!(confirmed.contains(&kept.shipment.id) && confirmed.contains(&read.shipment.id));
}

/// A later capture another instance settled first is not settled again from the rows this
/// instance's start kept: answered as stored, with its one invoice and one confirmation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_capture_settled_elsewhere_is_not_settled_again_from_its_started_rows() {
    let (_file, here, other) = two_instances();
    let line = import(&here, 1, 10).await;
    let reservation = ship(&here, 1, line, 3, false).await.expect("ship");
    let attempt = start_capture(&here, reservation.shipment.id).await;
    let (first, _) = settle_started(&other, &attempt, "cap-other").await;
    let invoice = other
        .find_invoice(reservation.shipment.id)
        .await
        .expect("read")
        .expect("invoiced");
    let (again, _) = settle_started(&here, &attempt, "cap-here").await;
    assert_eq!(again, first, "answered as the first settle left it");
    assert_eq!(again, stored(&here, &reservation).await);
    assert_eq!(again.capture_reference.as_deref(), Some("cap-other"));
    assert_eq!(
        here.find_invoice(reservation.shipment.id)
            .await
            .expect("read"),
        Some(invoice)
    );
    assert_eq!(confirmations(&here).await, vec![reservation.shipment.id]);
    assert_eq!(progress(&here, 1).await, (3, 3_000));
}

/// Starts the capture of the uncaptured shipment `id` on `db`, with no changes waiting;
/// answers the attempt and the statements the start sent.
async fn start_counted(db: &Database, id: ShipmentId) -> (CaptureAttempt, u64) {
    let before = db.statements_sent();
    let attempt = shipping::start_capture(db, id, ShipmentChanges::default()).await;
    (attempt, db.statements_sent() - before)
}

/// A capture's start of a shipment this instance reserved without capture is decided from the
/// rows it kept and the order's snapshot: one statement fewer than a start that reads the
/// shipment (reserved by the other instance, so none is kept here), and the same attempt and
/// stored shipment as the read gives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_capture_started_from_the_rows_its_reservation_kept_reads_nothing() {
    let (_file, here, other) = two_instances();
    let line = import(&here, 1, 10).await;
    // Twice: the first starts of each kind also prepare their statements.
    let mut started = Vec::new();
    for round in 0..2 {
        // Reserved elsewhere first: the reservation here then learns the order from a read.
        let read = ship(&other, 1, line, 2, false).await.expect("ship");
        let kept = ship(&here, 1, line, 3 - round, false).await.expect("ship");
        let (kept_attempt, from_rows) = start_counted(&here, kept.shipment.id).await;
        let (read_attempt, from_read) = start_counted(&here, read.shipment.id).await;
        started.push((kept, kept_attempt, from_rows, read, read_attempt, from_read));
    }
    let (kept, kept_attempt, from_rows, read, read_attempt, from_read) =
        started.pop().expect("the second round");
    assert!(
        from_rows < from_read,
        "started from its rows in {from_rows} statements, from a read in {from_read}"
    );
    assert_eq!(kept_attempt.amount.minor(), 2_000);
    assert_eq!(read_attempt.amount.minor(), 2_000);
    for reservation in [&kept, &read] {
        let stored = stored(&here, reservation).await;
        assert_eq!(stored.state, ShipmentState::CapturePending);
        assert_eq!(stored.capture_amount.map(|m| m.minor()), Some(2_000));
    }
    assert_eq!(progress(&here, 1).await, (9, 9_000));
}

/// Rows kept of a shipment that the other instance has since changed are not decided from,
/// even once this instance's snapshot of the order is up to date again (learned from a read
/// after the change): the start captures the units the shipment has now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_capture_is_never_started_from_rows_changed_elsewhere() {
    let (_file, here, other) = two_instances();
    let line = import(&here, 1, 10).await;
    let shipment = ship(&here, 1, line, 3, false).await.expect("ship");
    let id = shipment.shipment.id;
    other
        .update_shipment(
            id,
            None,
            Some(vec![consign_domain::ShipmentLine {
                line_id: line,
                quantity: 1,
            }]),
            None,
            Timestamp(3),
        )
        .await
        .expect("the other instance takes two units off");
    // Planned from the snapshot, lost to the change, read again: the snapshot is current.
    let next = ship(&here, 1, line, 1, false).await.expect("ship");
    assert_eq!(next.shipment.id.number, 2);
    let attempt = shipping::start_capture(&here, id, ShipmentChanges::default()).await;
    assert_eq!(attempt.amount.minor(), 1_000, "the one unit it ships now");
    let stored = stored(&here, &shipment).await;
    assert_eq!(stored.capture_amount.map(|m| m.minor()), Some(1_000));
    assert_eq!(stored.lines[0].quantity, 1);
    assert_eq!(progress(&here, 1).await, (2, 1_000));
}

/// Reserves `quantity` units of order 1's `line` on `db`; answers the reservation and the
/// statements it sent.
async fn ship_counted(
    db: &Database,
    line: consign_domain::LineId,
    quantity: u32,
    capture: bool,
) -> (Reservation, u64) {
    let before = db.statements_sent();
    let shipped = ship(db, 1, line, quantity, capture).await.expect("ship");
    (shipped, db.statements_sent() - before)
}

/// After a capture's start this instance wrote as decided, the next shipment of the order is
/// planned from the snapshot the start left (fewer statements than after a start written by
/// the other instance, which makes this instance read the order again), and what it plans is
/// what the database holds: the units and amount the start moved are counted, so the last
/// capture is the final one, for the exact remainder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_shipment_is_planned_from_the_order_a_capture_start_left() {
    let (_file, here, other) = two_instances();
    let line = import(&here, 1, 10).await;
    // Prepares this instance's statements for both reserves.
    let (first, _) = ship_counted(&here, line, 1, false).await;
    shipping::start_capture(&other, first.shipment.id, ShipmentChanges::default()).await;
    let (_, _) = ship_counted(&here, line, 1, true).await;
    let (second, _) = ship_counted(&here, line, 1, false).await;
    shipping::start_capture(&other, second.shipment.id, ShipmentChanges::default()).await;
    let (_, after_elsewhere) = ship_counted(&here, line, 1, true).await;
    let (third, _) = ship_counted(&here, line, 2, false).await;
    let started =
        shipping::start_capture(&here, third.shipment.id, ShipmentChanges::default()).await;
    assert_eq!(started.amount.minor(), 2_000);
    assert!(!started.final_capture);
    let (captured, after_here) = ship_counted(&here, line, 2, true).await;
    assert!(
        after_here < after_elsewhere,
        "planned from the snapshot the start left: {after_here} statements, \
         against {after_elsewhere} after a start elsewhere"
    );
    let attempt = captured.attempt.expect("captured");
    assert_eq!(attempt.amount.minor(), 2_000);
    assert!(!attempt.final_capture, "two units are left");
    let (last, _) = ship_counted(&here, line, 2, false).await;
    let last = shipping::start_capture(&here, last.shipment.id, ShipmentChanges::default()).await;
    assert!(last.final_capture, "the last units complete the order");
    assert_eq!(last.amount.minor(), 2_000, "the exact remainder");
    assert_eq!(progress(&here, 1).await, (10, 10_000));
    match ship(&here, 1, line, 1, true).await {
        Err(StoreError::Rejected(_)) => {}
        other => panic!("an eleventh unit must be refused, got {other:?}"),
    }
}
