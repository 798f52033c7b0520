//! The two transactions of the create-shipment saga (reserve, settle) and recovery's query.

use std::sync::Arc;

use consign_domain::{
    CaptureOrigin, Money, OrderId, PaymentAuthorization, Providers, Settlement, Shipment,
    ShipmentId, ShipmentRequest, ShipmentState,
};
use consign_ports::{
    CaptureAttempt, CaptureSettled, CaptureTally, FinalCaptureStanding, KeyedCapture, Reservation,
    SettleOutcome, ShipmentDetails, ShipmentView, Timestamp,
};
use diesel::prelude::*;

use crate::attempts::{
    provider_key, ATTEMPT_FAILED, ATTEMPT_NEEDS_REVIEW, ATTEMPT_OPEN, ATTEMPT_SUCCEEDED,
    ATTEMPT_UNKNOWN, OPEN_ATTEMPT,
};
use crate::connection::AnyConnection;
use crate::error::DbError;
use crate::kept_settle::{
    settle_as_reserved, settle_as_started, settled_with_changes, SettledWithChanges,
};
use crate::orders::{load_lines, load_shipment, lock_order, read_order};
use crate::persist::{apply_written, write_change, write_moves};
use crate::postgres::Reserved as PgReserved;
use crate::prepared::{returning_one, statement, Param};
use crate::reservation::{self, ReservationWrite};
use crate::reserved::ReservedRows;
use crate::rows::{
    flag, int, AttemptRow, LineRow, OrderRow, SettledAttempt, ShipmentLineRow, ShipmentRow,
};
use crate::schema::{capture_attempts, orders};
use crate::snapshots::{OrderSnapshots, Snapshot};

/// A shipment the domain planned from an order as read, ready to be written.
#[derive(Clone)]
struct Planned {
    row: ShipmentRow,
    lines: Vec<ShipmentLineRow>,
    in_capture: bool,
    committed: i64,
    carries_fee: bool,
    attempt: Option<CaptureAttempt>,
    attempt_row: Option<AttemptRow>,
    currency: consign_domain::Currency,
}

impl Planned {
    fn write(&self) -> ReservationWrite<'_> {
        ReservationWrite {
            shipment: &self.row,
            lines: &self.lines,
            in_capture: self.in_capture,
            committed: self.committed,
            carries_fee: self.carries_fee,
            attempt: self.attempt_row.clone(),
        }
    }

    /// What this instance keeps of the shipment: for its settle when reserved with capture,
    /// for its capture's start when not ([`crate::reserved`]).
    fn kept(&self) -> ReservedRows {
        ReservedRows {
            row: self.row.clone(),
            lines: self.lines.clone(),
            currency: self.currency,
            waiting: None,
        }
    }

    fn reservation(self) -> Result<Reservation, DbError> {
        Ok(Reservation {
            shipment: self.row.into_view(self.currency, &self.lines)?,
            attempt: self.attempt,
        })
    }
}

/// What the reserve step answers, and what the instance keeps of it once it is committed.
pub(crate) struct Reserved {
    pub(crate) reservation: Reservation,
    /// The order as the write left it, for the next shipment to be planned from.
    pub(crate) order_after: Option<Snapshot>,
    /// SQLite: the shipment's rows, for its settle to answer from (reserved with capture) or
    /// its capture's start to be decided from (reserved without).
    pub(crate) rows: Option<ReservedRows>,
}

/// The domain plans the shipment from the order as read; the rows to write follow from the plan.
#[allow(clippy::too_many_arguments)]
fn plan(
    installation: &str,
    order_row: &OrderRow,
    line_rows: &[LineRow],
    request: &ShipmentRequest,
    providers: &Providers,
    details: &ShipmentDetails,
    request_key: Option<&str>,
    now: Timestamp,
) -> Result<Planned, DbError> {
    let order = order_row.to_order(line_rows)?;
    let plan = order.plan_shipment_with(request, providers)?;
    let order_id = order_row.id;
    let number = int(plan.id().number);
    let state = if plan.capture().is_some() {
        ShipmentState::CapturePending
    } else {
        ShipmentState::Uncaptured
    };
    let shipped = details.shipped;
    let shipping = if shipped {
        details.shipping.clone()
    } else {
        Default::default()
    };
    let row = ShipmentRow {
        order_id,
        number,
        state: state.as_str().to_owned(),
        gtg: flag(details.gtg),
        shipped: flag(shipped),
        carrier: shipping.carrier,
        service: shipping.service,
        packages: int(shipping.packages),
        tracking: shipping.tracking,
        return_slip_tracking: shipping.return_slip_tracking,
        send_email: if shipped {
            details.send_email.map(flag)
        } else {
            None
        },
        capture_amount: plan.capture().map(|c| c.amount().minor()),
        carries_shipping_fee: flag(plan.capture().is_some_and(|c| c.carries_shipping_fee())),
        capture_reference: None,
        created_at: now.0,
        updated_at: now.0,
        shipped_at: shipped.then_some(now.0),
        needs_review: 0,
        request_key: request_key.map(str::to_owned),
        internal_comment: String::new(),
        refunded: 0,
    };
    let lines: Vec<ShipmentLineRow> = plan
        .lines()
        .iter()
        .map(|line| ShipmentLineRow {
            order_id,
            number,
            line_id: line.line_id.0,
            quantity: int(line.quantity),
        })
        .collect();
    let (committed, carries_fee) = plan.capture().map_or((0, false), |c| {
        (c.amount().minor(), c.carries_shipping_fee())
    });
    let attempt = match (plan.capture(), order.payment().cloned()) {
        (Some(capture), Some(authorization)) => Some(CaptureAttempt {
            shipment: plan.id(),
            authorization,
            amount: capture.amount(),
            idempotency_key: provider_key(installation, plan.id(), 1),
            final_capture: capture.completes_order(),
            created_at: now,
            changes_waiting: false,
        }),
        _ => None,
    };
    let attempt_row = attempt.as_ref().map(|a| {
        AttemptRow::pending(
            order_id,
            number,
            1,
            a.idempotency_key.clone(),
            a.amount.minor(),
            a.final_capture,
            true,
            None,
            now.0,
        )
    });
    Ok(Planned {
        row,
        lines,
        in_capture: plan.capture().is_some(),
        committed,
        carries_fee,
        attempt,
        attempt_row,
        currency: order.currency(),
    })
}

/// What a reservation is asked for: the port call's arguments, owned, so that the plan made
/// ahead and the write on the writer thread read the same values.
pub(crate) struct ReserveAsk {
    pub(crate) installation: String,
    pub(crate) order: OrderId,
    pub(crate) request: ShipmentRequest,
    pub(crate) providers: Providers,
    pub(crate) details: ShipmentDetails,
    pub(crate) request_key: Option<String>,
    pub(crate) now: Timestamp,
}

/// The ask's values, borrowed.
type AskParts<'a> = (
    &'a str,
    OrderId,
    &'a ShipmentRequest,
    &'a Providers,
    &'a ShipmentDetails,
    Option<&'a str>,
    Timestamp,
);

impl ReserveAsk {
    fn parts(&self) -> AskParts<'_> {
        (
            &self.installation,
            self.order,
            &self.request,
            &self.providers,
            &self.details,
            self.request_key.as_deref(),
            self.now,
        )
    }
}

/// A shipment planned from this instance's snapshot of its order before its turn at the writer
/// (SQLite): the writer only writes it, if the order is still at the snapshot's version.
pub(crate) struct PlannedAhead {
    planned: Planned,
    snapshot: Arc<Snapshot>,
}

/// Plans a shipment from the kept snapshot of its order on the calling thread (SQLite).
///
/// Why: SQLite's one writer thread bounds the embedded default's throughput, and reading the
/// order and planning there was about an eighth of its instructions per shipment (callgrind);
/// the caller's thread has time to spare. `None` when no snapshot is kept, when the snapshot
/// refuses (only the database's word may refuse) or when a confirmation must be queued too:
/// the writer then reads and plans itself, as before.
pub(crate) fn plan_ahead(snapshots: &OrderSnapshots, ask: &ReserveAsk) -> Option<PlannedAhead> {
    let (installation, order_id, request, providers, details, request_key, now) = ask.parts();
    if details.shipped && details.send_email == Some(true) {
        return None;
    }
    let snapshot = snapshots.get(order_id.0)?;
    let planned = plan(
        installation,
        &snapshot.order,
        &snapshot.lines,
        request,
        providers,
        details,
        request_key,
        now,
    )
    .ok()?;
    Some(PlannedAhead { planned, snapshot })
}

/// Times the unlocked path plans again after losing the compare-and-set to a concurrent writer
/// before it takes the order's lock instead (a hot order: the lock queues writers fairly).
const OPTIMISTIC_TRIES: usize = 4;

/// Reserve: plan with the domain, then write the shipment, its reserved units and the pending
/// capture attempt. A refusal writes nothing.
///
/// On PostgreSQL the decision is written by one statement that commits only if the order's
/// version is still the one planned from (every write that changes what a plan depends on bumps
/// it): no transaction held open. The order is planned from this instance's snapshot of it when
/// one is kept (`snapshots`: one round trip in all), else from one unlocked read (two). A
/// concurrent writer in between makes the write change nothing and answer the order's progress
/// as it found it, and the next try plans from that; after a few lost races, and whenever a
/// confirmation must be queued too, it takes the locked transaction below.
///
/// On SQLite a shipment planned ahead from the snapshot ([`plan_ahead`]) is written if the
/// order's version has not moved since; otherwise (and without one) the writer reads the order
/// and plans it here. Also answers the order as the write left it, for the caller to keep as
/// its snapshot once the write is committed.
pub(crate) fn reserve_shipment(
    conn: &mut AnyConnection,
    snapshots: &OrderSnapshots,
    ahead: Option<&PlannedAhead>,
    ask: &ReserveAsk,
) -> Result<Reserved, DbError> {
    let (installation, order_id, request, providers, details, request_key, now) = ask.parts();
    let queues_confirmation = details.shipped && details.send_email == Some(true);
    if let (AnyConnection::Sqlite(_), Some(ahead)) = (&mut *conn, ahead) {
        let write = ahead.planned.write();
        let version = ahead.snapshot.version;
        if conn.transaction(|conn| {
            reservation::write_reservation_if_unchanged(conn, &write, version)
        })? {
            let after = ahead.snapshot.after_reservation(&write, now.0);
            return Ok(Reserved {
                rows: Some(ahead.planned.kept()),
                reservation: ahead.planned.clone().reservation()?,
                order_after: Some(after),
            });
        }
        // Another write changed the order since the snapshot: read it and plan again below.
    }
    if let (AnyConnection::Postgresql(_), false) = (&mut *conn, queues_confirmation) {
        // What the order is planned from: this instance's snapshot (a guess), or what the
        // database said (a read, or the progress a lost write found), which alone may refuse.
        let mut known = snapshots.get(order_id.0).map(|s| (s, false));
        for _ in 0..OPTIMISTIC_TRIES {
            let (snapshot, authoritative) = match known.take() {
                Some(known) => known,
                None => {
                    let (order, lines, version) =
                        read_order(conn, order_id.0)?.ok_or(DbError::OrderNotFound(order_id))?;
                    (Arc::new(Snapshot::read(order, lines, version)), true)
                }
            };
            let planned = plan(
                installation,
                &snapshot.order,
                &snapshot.lines,
                request,
                providers,
                details,
                request_key,
                now,
            );
            let planned = match planned {
                // A snapshot may be out of date: a refusal is only given from the database's word.
                Err(_) if !authoritative => continue,
                planned => planned?,
            };
            let write = planned.write();
            if !write.lines_are_distinct() {
                break;
            }
            let AnyConnection::Postgresql(pg) = &mut *conn else {
                break; // matched above; the locked path below serves any other backend
            };
            match crate::postgres::write_reservation_if_unchanged(
                pg,
                &write,
                snapshot.version,
                now,
            )? {
                PgReserved::Written => {
                    let after = snapshot.after_reservation(&write, now.0);
                    return Ok(Reserved {
                        reservation: planned.reservation()?,
                        order_after: Some(after),
                        rows: None,
                    });
                }
                PgReserved::Lost(progress) => {
                    known = progress
                        .and_then(|p| snapshot.with_progress(&p))
                        .map(|s| (Arc::new(s), true));
                }
            }
        }
    }
    // The locked path below changes the order's version: a kept snapshot would not match.
    snapshots.forget(order_id.0);
    conn.transaction(|conn| {
        let (order_row, line_rows, version) = match conn {
            // SQLite's writes all run on its one writer thread, one at a time: nothing can
            // change the order between this read and the writes below, so it takes no lock
            // (and SQLite refuses a write whose transaction read a snapshot someone else has
            // since changed, so another process sharing the file cannot slip in either).
            AnyConnection::Sqlite(_) => {
                let (order, lines, version) =
                    read_order(conn, order_id.0)?.ok_or(DbError::OrderNotFound(order_id))?;
                (order, lines, Some(version))
            }
            // Writing the order row first takes its row lock: concurrent shipments of one
            // order queue here. Its lines are read by the next statement: one statement's
            // snapshot is taken before it waits for the lock, so lines read with it could
            // predate the shipment it waited for.
            AnyConnection::Postgresql(_) => {
                let order =
                    lock_order(conn, order_id.0, now)?.ok_or(DbError::OrderNotFound(order_id))?;
                (order, load_lines(conn, order_id.0)?, None)
            }
        };
        let planned = plan(
            installation,
            &order_row,
            &line_rows,
            request,
            providers,
            details,
            request_key,
            now,
        )?;
        let write = planned.write();
        match &mut *conn {
            AnyConnection::Postgresql(pg) if write.lines_are_distinct() => {
                crate::postgres::write_reservation(pg, &write)?
            }
            conn => reservation::write_reservation(conn, &write)?,
        }
        if queues_confirmation {
            crate::outbox::queue_confirmation(conn, order_id.0, planned.row.number, now)?;
        }
        // On SQLite, the order as this leaves it (the version read, bumped once by the write),
        // for the next shipment of it to be planned ahead, and the shipment's rows for its
        // settle. (PostgreSQL's lock bumped the version too.)
        let after = version.map(|version| {
            Snapshot::read(order_row, line_rows, version).after_reservation(&write, now.0)
        });
        let rows = version.map(|_| planned.kept());
        Ok(Reserved {
            reservation: planned.reservation()?,
            order_after: after,
            rows,
        })
    })
}

/// Records an open attempt's outcome (open: neither succeeded nor failed, written without
/// `IN (...)` so the statement stays prepared) and answers what the settle needs of it; a settled
/// attempt is left as it is and answers no row.
const SETTLE_ATTEMPT: &str = "UPDATE capture_attempts SET state = $1, \
     provider_reference = COALESCE($2, provider_reference), \
     decline_code = COALESCE($3, decline_code), decline_message = COALESCE($4, decline_message), \
     updated_at = $5 \
     WHERE order_id = $6 AND idempotency_key = $7 AND state <> $8 AND state <> $9 \
     RETURNING void_on_decline, on_capture";

/// [`SETTLE_ATTEMPT`] and, when it settled the attempt, the shipment as it stands: one
/// statement on PostgreSQL (`postgres::settle_attempt`), two on SQLite.
fn settle_attempt(
    conn: &mut AnyConnection,
    params: Vec<Param<'_>>,
    id: ShipmentId,
) -> Result<Option<(SettledAttempt, ShipmentRow, Vec<ShipmentLineRow>)>, DbError> {
    let (order_id, number, not_found) = (id.order.0, int(id.number), DbError::ShipmentNotFound(id));
    if let AnyConnection::Postgresql(pg) = &mut *conn {
        return crate::postgres::settle_attempt(pg, params, order_id, number);
    }
    let settled: Option<SettledAttempt> = returning_one(conn, statement!(SETTLE_ATTEMPT), params)?;
    let Some(settled) = settled else {
        return Ok(None);
    };
    let (row, lines) = load_shipment(conn, order_id, number)?.ok_or(not_found)?;
    Ok(Some((settled, row, lines)))
}

/// [`crate::persist::write_row`], the invoice of the capture it records
/// ([`crate::outbox::issue_invoice`]) and, when `confirm`, the shipment's confirmation
/// ([`crate::outbox::queue_confirmation`]): one statement on PostgreSQL, one each on SQLite.
fn write_row_and_invoice(
    conn: &mut AnyConnection,
    row: &ShipmentRow,
    decided_from: ShipmentState,
    amount: i64,
    confirm: bool,
    now: Timestamp,
) -> Result<(), DbError> {
    let AnyConnection::Postgresql(pg) = &mut *conn else {
        crate::persist::write_row(conn, row, decided_from)?;
        crate::outbox::issue_invoice(conn, row.order_id, row.number, amount, now)?;
        if confirm {
            crate::outbox::queue_confirmation(conn, row.order_id, row.number, now)?;
        }
        return Ok(());
    };
    let mut params = crate::reservation::shipment_params(row);
    params.extend([
        Param::Text(decided_from.as_str()),
        Param::BigInt(amount),
        Param::BigInt(now.0),
        Param::Integer(flag(confirm)),
        Param::Text(crate::outbox::SHIPPING_CONFIRMATION),
        Param::Text(crate::outbox::PENDING),
    ]);
    let (written, invoiced) = crate::postgres::write_row_and_invoice(pg, params)?;
    if written != 1 {
        return Err(DbError::Corrupt(format!(
            "shipment {}-{} changed under the order lock",
            row.order_id, row.number
        )));
    }
    if invoiced != 1 {
        return Err(DbError::Corrupt("no invoice_number counter".into()));
    }
    Ok(())
}

/// Settle: record the outcome; on a decline void the shipment and release what it held (or,
/// for a capture started by complete/capture, return it to uncaptured). On a capture, changes
/// that waited for it are applied. Only an open attempt is settled, so a second settle of the
/// same attempt changes nothing.
///
/// `reserved`, the shipment's rows as this instance reserved it (SQLite), lets a capture be
/// settled without reading the shipment first ([`settle_as_reserved`]).
pub(crate) fn settle_capture(
    conn: &mut AnyConnection,
    attempt: &CaptureAttempt,
    outcome: &SettleOutcome,
    reserved: Option<&ReservedRows>,
    now: Timestamp,
) -> Result<CaptureSettled, DbError> {
    settle_capture_here(conn, attempt, outcome, reserved, now).map(|(settled, _)| settled)
}

/// [`settle_capture`], and whether this settle is the one that moved the attempt out of its
/// open state (`false`: it was settled before, and nothing changed).
pub(crate) fn settle_capture_here(
    conn: &mut AnyConnection,
    attempt: &CaptureAttempt,
    outcome: &SettleOutcome,
    reserved: Option<&ReservedRows>,
    now: Timestamp,
) -> Result<(CaptureSettled, bool), DbError> {
    // The paths below that answer a view settled the open attempt themselves, as captured.
    let captured_here = |shipment| {
        let settled = CaptureSettled {
            shipment,
            attempt_captured: true,
        };
        (settled, true)
    };
    let order_id = attempt.shipment.order.0;
    let number = int(attempt.shipment.number);
    if let (AnyConnection::Sqlite(_), SettleOutcome::Captured { reference }, Some(reserved)) =
        (&mut *conn, outcome, reserved)
    {
        let settled = match reserved.waiting.as_deref() {
            None => settle_as_reserved(conn, attempt, reference, reserved, now)?,
            Some(waiting) => settle_as_started(conn, attempt, reference, reserved, waiting, now)?,
        };
        if let Some(view) = settled {
            return Ok(captured_here(view));
        }
    }
    // Changes wait for the capture: decided from one read, written by one statement if the
    // shipment and its attempt are still as read; otherwise the locked transaction decides.
    if let (AnyConnection::Postgresql(pg), SettleOutcome::Captured { reference }, true) =
        (&mut *conn, outcome, attempt.changes_waiting)
    {
        if let Some(view) = settle_with_changes_unlocked(pg, attempt, reference, now)? {
            return Ok(captured_here(view));
        }
    }
    // Its one statement changes nothing when changes wait for the capture: not sent then.
    if let (AnyConnection::Postgresql(pg), SettleOutcome::Captured { reference }, false) =
        (&mut *conn, outcome, attempt.changes_waiting)
    {
        let captured = crate::postgres::settle_captured(
            pg,
            order_id,
            attempt.shipment.number,
            &attempt.idempotency_key,
            attempt.amount.minor(),
            reference,
            now,
        )?;
        if let Some((row, lines)) = captured {
            return Ok(captured_here(
                row.into_view(attempt.amount.currency(), &lines)?,
            ));
        }
    }
    conn.transaction(|conn| {
        let (state, reference, code, message) = match outcome {
            SettleOutcome::Captured { reference } => {
                (ATTEMPT_SUCCEEDED, Some(reference.as_str()), None, None)
            }
            SettleOutcome::Declined { code, message } => (
                ATTEMPT_FAILED,
                None,
                Some(code.as_str()),
                Some(message.as_str()),
            ),
        };
        let settled = settle_attempt(
            conn,
            vec![
                Param::Text(state),
                Param::NullableText(reference),
                Param::NullableText(code),
                Param::NullableText(message),
                Param::BigInt(now.0),
                Param::BigInt(order_id),
                Param::Text(&attempt.idempotency_key),
                Param::Text(ATTEMPT_SUCCEEDED),
                Param::Text(ATTEMPT_FAILED),
            ],
            attempt.shipment,
        )?;
        if let Some((attempt_row, mut row, mut lines)) = settled {
            let mut invoiced = false;
            let shipment = row.to_shipment(attempt.amount.currency(), &lines)?;
            // An open attempt belongs to a capture-pending shipment; anything else is left as
            // it is, as the guarded statements always did.
            if shipment.state() == ShipmentState::CapturePending {
                let origin = if attempt_row.void_on_decline != 0 {
                    CaptureOrigin::AtCreation
                } else {
                    CaptureOrigin::Later
                };
                let (settlement, reference) = match outcome {
                    SettleOutcome::Captured { reference } => {
                        (Settlement::Captured, Some(reference.as_str()))
                    }
                    SettleOutcome::Declined { .. } => (Settlement::Declined, None),
                };
                let change = shipment.settle(settlement, origin)?;
                let waiting = match (attempt_row.on_capture.as_deref(), settlement) {
                    (Some(waiting), Settlement::Captured) => Some(crate::changes::decode(waiting)?),
                    _ => None,
                };
                match waiting {
                    // The settle and the complete that waited for it: the shipment's row is
                    // written once, with both.
                    Some(changes) => {
                        apply_written(&mut row, &mut lines, &change, reference, now);
                        let completed = crate::workflow::complete(
                            change.after(),
                            &mut row,
                            &mut lines,
                            &changes,
                            now,
                        )?;
                        // Only a capture applies waiting changes: its invoice (and the
                        // confirmation they make due) go with the row.
                        write_row_and_invoice(
                            conn,
                            &row,
                            change.before().state(),
                            attempt.amount.minor(),
                            completed.confirm,
                            now,
                        )?;
                        invoiced = true;
                        write_moves(conn, &change)?;
                        write_moves(conn, &completed.change)?;
                    }
                    None => {
                        write_change(conn, &change, reference, now)?;
                        apply_written(&mut row, &mut lines, &change, reference, now);
                    }
                }
                if change.takes_units_out_of_capture() {
                    crate::attempts::lower_open_final_captures(conn, order_id)?;
                }
            }
            if let (SettleOutcome::Captured { .. }, false) = (outcome, invoiced) {
                crate::outbox::issue_invoice(conn, order_id, number, attempt.amount.minor(), now)?;
            }
            // Answered from what was written: no read back.
            let settled = CaptureSettled {
                shipment: row.into_view(attempt.amount.currency(), &lines)?,
                attempt_captured: matches!(outcome, SettleOutcome::Captured { .. }),
            };
            return Ok((settled, true));
        }
        // Settled before (a replay, or a concurrent settle won): answered as stored, with how
        // the attempt itself was settled.
        let (row, lines) = load_shipment(conn, order_id, number)?
            .ok_or(DbError::ShipmentNotFound(attempt.shipment))?;
        let attempt_state: String = capture_attempts::table
            .filter(capture_attempts::order_id.eq(order_id))
            .filter(capture_attempts::idempotency_key.eq(&attempt.idempotency_key))
            .select(capture_attempts::state)
            .get_result(conn)?;
        let settled = CaptureSettled {
            shipment: row.into_view(attempt.amount.currency(), &lines)?,
            attempt_captured: attempt_state == ATTEMPT_SUCCEEDED,
        };
        Ok((settled, false))
    })
}

/// Settles a later capture that succeeded with the changes that waited for it, without a lock
/// (PostgreSQL): one statement reads the open attempt and its shipment, the domain settles the
/// shipment and applies the changes, and one statement writes the result only if the
/// shipment's row is still the version read and the attempt still open with the same changes
/// (`postgres::settle_with_changes_if_unchanged`): two round trips where the locked
/// transaction takes four. `None`, with nothing written, when the attempt is not open, the
/// shipment is not pending, the domain refuses, the decision moves an order's counters (the
/// locked transaction writes those), or something changed since the read: the locked
/// transaction then decides from what is committed.
fn settle_with_changes_unlocked(
    pg: &mut diesel::PgConnection,
    attempt: &CaptureAttempt,
    reference: &str,
    now: Timestamp,
) -> Result<Option<ShipmentView>, DbError> {
    let (order_id, number) = (attempt.shipment.order.0, int(attempt.shipment.number));
    let Some(read) =
        crate::postgres::read_open_attempt(pg, order_id, number, &attempt.idempotency_key)?
    else {
        return Ok(None);
    };
    let Some(waiting) = read.attempt.on_capture.as_deref() else {
        return Ok(None);
    };
    let currency = attempt.amount.currency();
    let origin = if read.attempt.void_on_decline != 0 {
        CaptureOrigin::AtCreation
    } else {
        CaptureOrigin::Later
    };
    let Some(SettledWithChanges {
        row,
        lines,
        decided_from,
        confirm,
    }) = settled_with_changes(
        read.shipment,
        read.lines,
        currency,
        origin,
        waiting,
        reference,
        now,
    )
    else {
        return Ok(None);
    };
    let mut params = crate::reservation::shipment_params(&row);
    params.extend([
        Param::Text(decided_from.as_str()),
        Param::BigInt(attempt.amount.minor()),
        Param::BigInt(now.0),
        Param::Integer(flag(confirm)),
        Param::Text(crate::outbox::SHIPPING_CONFIRMATION),
        Param::Text(crate::outbox::PENDING),
        Param::Text(&read.version),
        Param::Text(ATTEMPT_SUCCEEDED),
        Param::Text(ATTEMPT_FAILED),
        Param::Text(waiting),
        Param::Text(&attempt.idempotency_key),
    ]);
    match crate::postgres::settle_with_changes_if_unchanged(pg, params)? {
        (1, 1, 1) => Ok(Some(row.into_view(currency, &lines)?)),
        (0, 0, 0) => Ok(None),
        // The statement committed with a part missing. The attempt's update follows the row's
        // and every settle writes both (their row locks would deadlock, and one roll back, before
        // either committed alone); the invoice counter is created by the migrations.
        (written, settled, invoiced) => Err(DbError::Corrupt(format!(
            "the settle of {} wrote its row {written}, its attempt {settled} and its invoice \
             {invoiced} times",
            attempt.shipment
        ))),
    }
}

/// What an attempt needs from its order to be replayed: currency, provider, reference, amount.
pub(crate) type PaymentColumns = (String, Option<String>, Option<String>, i64);

/// Open attempts last touched before `before`, the least recently touched first, with what is
/// needed to replay them. Searched in the index of open attempts (the states as literals,
/// [`OPEN_ATTEMPT`]), so a pass costs what is open, not what the tables hold.
pub(crate) fn pending_captures(
    conn: &mut AnyConnection,
    before: Timestamp,
) -> Result<Vec<CaptureAttempt>, DbError> {
    let rows: Vec<(AttemptRow, PaymentColumns)> = capture_attempts::table
        .inner_join(orders::table.on(orders::id.eq(capture_attempts::order_id)))
        .filter(diesel::dsl::sql::<diesel::sql_types::Bool>(OPEN_ATTEMPT))
        .filter(capture_attempts::updated_at.lt(before.0))
        .order((
            capture_attempts::updated_at.asc(),
            capture_attempts::created_at.asc(),
        ))
        .limit(500)
        .select((
            AttemptRow::as_select(),
            (
                orders::currency,
                orders::payment_provider,
                orders::payment_reference,
                orders::authorized,
            ),
        ))
        .load(conn)?;
    rows.into_iter().map(attempt_from_row).collect()
}

/// An attempt row with its order's payment columns, as the port's [`CaptureAttempt`].
pub(crate) fn attempt_from_row(
    (a, (currency, provider, reference, authorized)): (AttemptRow, PaymentColumns),
) -> Result<CaptureAttempt, DbError> {
    let currency = currency
        .parse()
        .map_err(|_| DbError::Corrupt(format!("currency {currency:?}")))?;
    let (Some(provider), Some(reference)) = (provider, reference) else {
        return Err(DbError::Corrupt(format!(
            "capture attempt on order {} without payment",
            a.order_id
        )));
    };
    Ok(CaptureAttempt {
        shipment: ShipmentId {
            order: OrderId(a.order_id),
            number: u32::try_from(a.number).unwrap_or(0),
        },
        authorization: PaymentAuthorization {
            provider,
            reference,
            amount: Money::from_minor(authorized, currency),
        },
        amount: Money::from_minor(a.amount, currency),
        idempotency_key: a.idempotency_key,
        final_capture: a.final_capture != 0,
        created_at: Timestamp(a.created_at),
        changes_waiting: a.on_capture.is_some(),
    })
}

/// Which of a shipment's capture attempts to read.
enum AttemptOf<'a> {
    /// The open one (at most one is).
    Open,
    /// The one a request with this idempotency key started.
    Request(&'a str),
}

/// One capture attempt of `shipment`, with its order's payment columns.
fn attempt_of(
    conn: &mut AnyConnection,
    shipment: ShipmentId,
    which: AttemptOf<'_>,
) -> Result<Option<(AttemptRow, PaymentColumns)>, DbError> {
    let query = capture_attempts::table
        .inner_join(orders::table.on(orders::id.eq(capture_attempts::order_id)))
        .filter(capture_attempts::order_id.eq(shipment.order.0))
        .filter(capture_attempts::number.eq(int(shipment.number)))
        .select((
            AttemptRow::as_select(),
            (
                orders::currency,
                orders::payment_provider,
                orders::payment_reference,
                orders::authorized,
            ),
        ))
        .into_boxed();
    let query = match which {
        AttemptOf::Open => query.filter(capture_attempts::state.eq_any(ATTEMPT_OPEN)),
        AttemptOf::Request(key) => query.filter(capture_attempts::request_key.eq(key)),
    };
    Ok(query.first(conn).optional()?)
}

/// The open attempt of one shipment, if any.
pub(crate) fn open_attempt(
    conn: &mut AnyConnection,
    shipment: ShipmentId,
) -> Result<Option<CaptureAttempt>, DbError> {
    attempt_of(conn, shipment, AttemptOf::Open)?
        .map(attempt_from_row)
        .transpose()
}

/// The capture attempt of `shipment` that a request with `request_key` started, with where it
/// stands (its shipment's attempts, by the primary key's prefix: a handful at most).
pub(crate) fn capture_by_request_key(
    conn: &mut AnyConnection,
    shipment: ShipmentId,
    request_key: &str,
) -> Result<Option<KeyedCapture>, DbError> {
    let row = attempt_of(conn, shipment, AttemptOf::Request(request_key))?;
    let Some(row) = row else {
        return Ok(None);
    };
    Ok(Some(match row.0.state.as_str() {
        ATTEMPT_SUCCEEDED => KeyedCapture::Captured,
        ATTEMPT_FAILED => KeyedCapture::Declined,
        state if ATTEMPT_OPEN.contains(&state) => KeyedCapture::Open(attempt_from_row(row)?),
        state => {
            return Err(DbError::Corrupt(format!(
                "capture attempt of {shipment} in state {state:?}"
            )))
        }
    }))
}

/// Records that an attempt's outcome is still unknown. After `review_after` passes the attempt
/// and its shipment are flagged for review (recovery keeps replaying it). Answers whether it now
/// needs review.
/// Touches an open attempt that waited its turn (no pass counted): see
/// `OrderStore::record_waiting`.
pub(crate) fn record_waiting(
    conn: &mut AnyConnection,
    attempt: &CaptureAttempt,
    now: Timestamp,
) -> Result<(), DbError> {
    diesel::update(
        capture_attempts::table
            .filter(capture_attempts::order_id.eq(attempt.shipment.order.0))
            .filter(capture_attempts::idempotency_key.eq(&attempt.idempotency_key))
            .filter(capture_attempts::state.eq_any(ATTEMPT_OPEN)),
    )
    .set(capture_attempts::updated_at.eq(now.0))
    .execute(conn)?;
    Ok(())
}

pub(crate) fn record_unknown(
    conn: &mut AnyConnection,
    attempt: &CaptureAttempt,
    reason: &str,
    now: Timestamp,
    review_after: u32,
) -> Result<bool, DbError> {
    let order_id = attempt.shipment.order.0;
    conn.transaction(|conn| {
        let this = || {
            capture_attempts::table
                .filter(capture_attempts::order_id.eq(order_id))
                .filter(capture_attempts::idempotency_key.eq(&attempt.idempotency_key))
        };
        let changed = diesel::update(this().filter(capture_attempts::state.eq_any(ATTEMPT_OPEN)))
            .set((
                capture_attempts::passes.eq(capture_attempts::passes + 1),
                capture_attempts::last_error.eq(Some(reason)),
                capture_attempts::updated_at.eq(now.0),
            ))
            .execute(conn)?;
        if changed == 0 {
            return Ok(false); // settled meanwhile
        }
        let passes: i32 = this().select(capture_attempts::passes).first(conn)?;
        let (row, lines) = load_shipment(conn, order_id, int(attempt.shipment.number))?
            .ok_or(DbError::ShipmentNotFound(attempt.shipment))?;
        let shipment = row.to_shipment(attempt.amount.currency(), &lines)?;
        let passes = u32::try_from(passes).unwrap_or(0);
        // An open attempt belongs to a capture-pending shipment; anything else is left as it is
        // (as settling does), and only the attempt is counted.
        let change = (shipment.state() == ShipmentState::CapturePending)
            .then(|| shipment.capture_unknown(passes, review_after))
            .transpose()?;
        let review = change
            .as_ref()
            .map_or(Shipment::needs_review_after(passes, review_after), |c| {
                c.after().flags().needs_review
            });
        let state = if review {
            ATTEMPT_NEEDS_REVIEW
        } else {
            ATTEMPT_UNKNOWN
        };
        diesel::update(this())
            .set(capture_attempts::state.eq(state))
            .execute(conn)?;
        if let Some(change) = change.filter(|c| c.after().flags() != c.before().flags()) {
            write_change(conn, &change, None, now)?;
        }
        Ok(review)
    })
}

/// The order's other attempts settled as captured, added up in the attempt's currency, how
/// many others are open, and how many of those are final captures written after this attempt:
/// what an attempt past the key window is looked up against.
pub(crate) fn capture_tally(
    conn: &mut AnyConnection,
    attempt: &CaptureAttempt,
) -> Result<CaptureTally, DbError> {
    let others: Vec<(String, i64, i32, i64)> = capture_attempts::table
        .filter(capture_attempts::order_id.eq(attempt.shipment.order.0))
        .filter(capture_attempts::idempotency_key.ne(&attempt.idempotency_key))
        .select((
            capture_attempts::state,
            capture_attempts::amount,
            capture_attempts::final_capture,
            capture_attempts::created_at,
        ))
        .load(conn)?;
    let currency = attempt.amount.currency();
    let settled = others
        .iter()
        .filter(|(state, ..)| state == ATTEMPT_SUCCEEDED)
        .try_fold(Money::zero(currency), |sum, (_, minor, ..)| {
            sum.plus(Money::from_minor(*minor, currency))
        })
        .map_err(|e| {
            DbError::Corrupt(format!("captures of order {}: {e}", attempt.shipment.order))
        })?;
    let open: Vec<_> = others
        .iter()
        .filter(|(state, ..)| ATTEMPT_OPEN.contains(&state.as_str()))
        .collect();
    // Strictly later: two attempts written in the same millisecond count as possibly sent.
    let later_finals_open = open
        .iter()
        .filter(|(_, _, final_capture, created_at)| {
            *final_capture != 0 && *created_at > attempt.created_at.0
        })
        .count();
    Ok(CaptureTally {
        settled,
        others_open: open.len(),
        later_finals_open,
    })
}

/// Whether an attempt planned as final is still stored so, and how many other attempts on its
/// order are open: one statement, so a decline's transaction (which lowers the flag as it
/// settles its own attempt) is seen whole or not at all.
pub(crate) fn final_capture_standing(
    conn: &mut AnyConnection,
    attempt: &CaptureAttempt,
) -> Result<FinalCaptureStanding, DbError> {
    let rows: Vec<(String, i32, String)> = capture_attempts::table
        .filter(capture_attempts::order_id.eq(attempt.shipment.order.0))
        .filter(
            capture_attempts::state
                .eq_any(ATTEMPT_OPEN)
                .or(capture_attempts::idempotency_key.eq(&attempt.idempotency_key)),
        )
        .select((
            capture_attempts::idempotency_key,
            capture_attempts::final_capture,
            capture_attempts::state,
        ))
        .load(conn)?;
    let own = |key: &str| key == attempt.idempotency_key;
    Ok(FinalCaptureStanding {
        still_final: rows
            .iter()
            .any(|(key, final_capture, _)| own(key) && *final_capture != 0),
        others_open: rows
            .iter()
            .filter(|(key, _, state)| !own(key) && ATTEMPT_OPEN.contains(&state.as_str()))
            .count(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query_plans::{as_grown, plans_of};
    use crate::testing::Throwaway;
    use crate::Database;

    /// What `ANALYZE` recorded on a benchmark database of 21,200 orders and 131,043 capture
    /// attempts, nearly all settled: one state in almost every attempt, a handful of attempts
    /// per order.
    const GROWN_TABLES: &str = "INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES \
         ('capture_attempts', 'capture_attempts_by_order_state', '131043 7 7'), \
         ('capture_attempts', 'sqlite_autoindex_capture_attempts_1', '131043 7 1 1'), \
         ('capture_attempts', 'sqlite_autoindex_capture_attempts_2', '131043 7 1'), \
         ('orders', 'sqlite_autoindex_orders_1', '21200 1'), \
         ('orders', 'orders_by_created', '21200 1 1')";

    /// The recovery pass reads the open attempts every few seconds, from tables that only
    /// grow. Once the planner knows the tables, an index over every attempt's state looks
    /// useless to it, and it visits every order instead. The read must search the open
    /// attempts' own index and scan no table.
    #[tokio::test]
    async fn the_recovery_read_searches_the_open_attempts_and_scans_no_table() {
        let file = Throwaway::sqlite();
        let db = Database::open(&file.config).expect("open");
        let steps = db
            .run_write(|conn| {
                as_grown(conn, GROWN_TABLES)?;
                let plans = plans_of(conn, |conn| pending_captures(conn, Timestamp(i64::MAX)))?;
                Ok(plans
                    .into_iter()
                    .find(|(sql, _)| sql.contains("FROM (`capture_attempts`"))
                    .map(|(_, steps)| steps)
                    .unwrap_or_default())
            })
            .await
            .expect("the read's plan");
        assert!(
            steps.iter().any(|step| step
                .starts_with("SEARCH capture_attempts USING INDEX capture_attempts_open")),
            "{steps:?}"
        );
        assert!(
            !steps.iter().any(|step| step.starts_with("SCAN")),
            "{steps:?}"
        );
    }
}
