//! The calls after create: start a capture (complete, capture), apply complete's changes, edit
//! and delete uncaptured shipments. Each is one transaction that locks the order row first (the
//! same lock as the saga's reserve step), loads the order and the shipment as the domain sees
//! them, lets the domain decide, and writes the decided change (`persist.rs`). A capture's
//! start first tries without the lock: decided from one unlocked read (on SQLite, from the rows
//! this instance kept of the shipment when it can), written only if the order's version and the
//! shipment's state are still as read.

use consign_domain::{
    CaptureStart, Completion, Order, OrderId, Providers, Shipment, ShipmentChange, ShipmentId,
    ShipmentLine,
};
use consign_ports::{
    BeginCapture, CaptureAttempt, ShipmentChanges, ShipmentListing, ShipmentView, Timestamp,
};
use diesel::prelude::*;

use crate::changes;
use crate::connection::AnyConnection;
use crate::deletions::record_deletion;
use crate::error::DbError;
use crate::orders::{load_lines, load_shipment, lock_order, order_currency};
use crate::persist::{apply_written, write_change, write_moves, write_row};
use crate::postgres::CaptureStartWrite;
use crate::prepared::{returning_one, statement, Param};
use crate::reserved::{ReservedRows, UncapturedRows};
use crate::rows::{flag, int, OrderRow, ShipmentLineRow, ShipmentRow};
use crate::schema::shipments;
use crate::snapshots::Snapshot;

/// One live shipment with its locked order, as rows and as the domain's shipment.
struct Located {
    order: OrderRow,
    row: ShipmentRow,
    lines: Vec<ShipmentLineRow>,
    shipment: Shipment,
}

impl Located {
    /// The domain's order (its lines are read only by the calls that need them). Read after the
    /// lock, by a statement of its own: a statement's snapshot predates the lock it waits for,
    /// so lines read with the lock could miss the change it waited for.
    fn order(&self, conn: &mut AnyConnection) -> Result<Order, DbError> {
        let lines = load_lines(conn, self.order.id)?;
        self.order.to_order(&lines)
    }
}

/// Locks the order and loads one live shipment of it; `order`, when given, must be its order.
fn locate(
    conn: &mut AnyConnection,
    id: ShipmentId,
    order: Option<OrderId>,
    now: Timestamp,
) -> Result<Located, DbError> {
    let not_found = || DbError::ShipmentNotFound(id);
    if order.is_some_and(|o| o != id.order) {
        return Err(not_found());
    }
    let order = lock_order(conn, id.order.0, now)?.ok_or_else(not_found)?;
    let (row, lines) = load_shipment(conn, id.order.0, int(id.number))?.ok_or_else(not_found)?;
    if !row.state()?.is_live() {
        return Err(not_found());
    }
    let shipment = row.to_shipment(order.currency()?, &lines)?;
    Ok(Located {
        order,
        row,
        lines,
        shipment,
    })
}

impl Located {
    /// Writes `change` and answers the shipment as it now stands, from what was written.
    fn write(
        mut self,
        conn: &mut AnyConnection,
        change: &ShipmentChange,
        now: Timestamp,
    ) -> Result<Self, DbError> {
        write_change(conn, change, None, now)?;
        apply_written(&mut self.row, &mut self.lines, change, None, now);
        Ok(self)
    }

    /// The shipment as the domain's callers see it.
    fn into_view(self) -> Result<ShipmentView, DbError> {
        let currency = self.order.currency()?;
        self.row.into_view(currency, &self.lines)
    }
}

/// Starts the capture of an uncaptured shipment: the domain plans it and moves its units into
/// capture; the attempt is written with the changes that wait for it.
///
/// On PostgreSQL it first tries without a lock, as the reserve does: one statement reads the
/// shipment with its order, the domain decides, and one statement writes the decision only if
/// the order's version is still the one read ([`crate::postgres::start_capture_if_unchanged`]):
/// two round trips instead of six. When the order changed in between, or the change does not
/// fit one statement, the locked transaction below decides again from what is then committed.
/// SQLite does the same in two steps, the read off its writer thread ([`read_capture_start`],
/// then [`begin_decided_capture`] on it).
fn begin_capture(
    conn: &mut AnyConnection,
    installation: &str,
    id: ShipmentId,
    order: Option<OrderId>,
    providers: &Providers,
    ask: StartAsk<'_>,
    now: Timestamp,
) -> Result<BeginCapture, DbError> {
    if let AnyConnection::Postgresql(_) = conn {
        if let Some(started) =
            begin_capture_unlocked(conn, installation, id, order, providers, ask, now)?
        {
            return Ok(started);
        }
    }
    begin_capture_locked(conn, installation, id, order, providers, ask, now)
}

/// [`begin_capture`]'s compare-and-set: `None` when it wrote nothing and the locked
/// transaction is to decide (the order changed since the read, the shipment or its order was
/// not found as expected, or the change does not fit one statement). A refusal or an
/// already-captured shipment is answered from the read: a committed state, as the locked read
/// would have seen it an instant earlier.
fn begin_capture_unlocked(
    conn: &mut AnyConnection,
    installation: &str,
    id: ShipmentId,
    order: Option<OrderId>,
    providers: &Providers,
    ask: StartAsk<'_>,
    now: Timestamp,
) -> Result<Option<BeginCapture>, DbError> {
    let decided = match read_capture_start(conn, installation, id, order, providers, ask)? {
        CaptureStartRead::Answered(answer) => return Ok(Some(answer)),
        CaptureStartRead::Undecided(_) => return Ok(None),
        CaptureStartRead::Decided(decided) => decided,
    };
    let write = decided.start.write(now);
    let AnyConnection::Postgresql(pg) = conn else {
        return Ok(None);
    };
    if !write.fits_one_statement() {
        return Ok(None);
    }
    let Some(key) = crate::postgres::start_capture_if_unchanged(pg, &write, decided.version())?
    else {
        return Ok(None);
    };
    Ok(Some(BeginCapture::Started(decided.start.attempt(key, now))))
}

/// What one unlocked read of a shipment with its order says of starting its capture.
pub(crate) enum CaptureStartRead {
    /// Answered from the read: the shipment is captured already.
    Answered(BeginCapture),
    /// The domain's decision, to be written only if nothing it relied on has changed.
    Decided(DecidedCaptureStart),
    /// Not decided from a read (PostgreSQL decides in [`begin_capture`]), or nothing to decide
    /// from (no such shipment, or an order without lines): the locked transaction finds out.
    Undecided(ShipmentId),
}

/// A capture's start decided from an unlocked read, and what that read saw: the order's
/// version (bumped by every write that changes the order or its lines, and by every locked
/// change of one of its shipments) and the shipment's state.
#[derive(Clone)]
pub(crate) struct DecidedCaptureStart {
    start: DecidedStart,
    /// The order as decided from, at the version the write checks.
    order: Box<Snapshot>,
    /// The shipment's rows as read, for its settle to decide from once the start is written.
    read: Box<ReservedRows>,
}

/// What a capture's start wrote, for the store to keep once it is committed.
#[derive(Debug)]
pub(crate) struct CaptureStarted {
    pub(crate) begun: BeginCapture,
    /// With a start written as decided, the shipment's rows as it left them, for its settle
    /// ([`crate::reserved`]).
    pub(crate) rows: Option<ReservedRows>,
    /// With a start written as decided, the order as it left it, for the next shipment of it
    /// to be planned from ([`crate::snapshots`]).
    pub(crate) order_after: Option<Snapshot>,
}

impl CaptureStarted {
    fn decided_elsewhere(begun: BeginCapture) -> CaptureStarted {
        CaptureStarted {
            begun,
            rows: None,
            order_after: None,
        }
    }
}

impl DecidedCaptureStart {
    /// The order's version the decision was made from.
    fn version(&self) -> i64 {
        self.order.version
    }

    /// The shipment's rows as the start, written as decided at `now`, leaves them.
    fn started_rows(&self, now: Timestamp) -> ReservedRows {
        let mut rows = (*self.read).clone();
        apply_written(
            &mut rows.row,
            &mut rows.lines,
            &self.start.change,
            None,
            now,
        );
        rows.waiting = Some(self.start.on_capture.clone());
        rows
    }
}

/// Reads the shipment with its order in one statement, without a lock, and lets the domain
/// decide its capture's start. A refusal is an error, as the locked path would give it.
pub(crate) fn read_capture_start(
    conn: &mut AnyConnection,
    installation: &str,
    id: ShipmentId,
    order: Option<OrderId>,
    providers: &Providers,
    ask: StartAsk<'_>,
) -> Result<CaptureStartRead, DbError> {
    if order.is_some_and(|o| o != id.order) {
        return Err(DbError::ShipmentNotFound(id));
    }
    let Some(read) = crate::orders::shipment_with_order(conn, id.order.0, int(id.number))? else {
        return Ok(CaptureStartRead::Undecided(id));
    };
    if !read.shipment.state()?.is_live() {
        return Err(DbError::ShipmentNotFound(id));
    }
    let order = Snapshot::read(read.order, read.lines, read.version);
    decide_capture_start(
        read.shipment,
        read.shipped,
        order,
        installation,
        id,
        providers,
        ask,
    )
}

/// Decides a capture's start from a shipment of SQLite's that this instance reserved without
/// capture, with the rows it kept of it and the order's snapshot, instead of a read (the read
/// runs on a reader connection, whose page cache SQLite empties after every commit). `None`
/// when the rows may not be the database's any more (the snapshot was learned from the database
/// after they were kept, or is older than they are), or when the domain refuses: only the
/// database's word may refuse, so the read decides then.
///
/// The write checks, as for a read, that the order is still at the snapshot's version and the
/// shipment still uncaptured ([`begin_decided_capture`]). Every write that changes an
/// uncaptured shipment bumps its order's version, and the snapshot's versions after it was
/// learned are this instance's reservations of other shipments: so at the snapshot's version
/// the kept rows are the shipment's.
pub(crate) fn decide_from_kept(
    kept: UncapturedRows,
    snapshot: &Snapshot,
    installation: &str,
    id: ShipmentId,
    providers: &Providers,
    ask: StartAsk<'_>,
) -> Option<CaptureStartRead> {
    if kept.version < snapshot.learned_at || kept.version > snapshot.version {
        return None;
    }
    let mut shipped = kept.rows.lines;
    // As the read answers them.
    shipped.sort_by_key(|line| line.line_id);
    let order = snapshot.clone();
    match decide_capture_start(
        kept.rows.row,
        shipped,
        order,
        installation,
        id,
        providers,
        ask,
    ) {
        Ok(decided @ CaptureStartRead::Decided(_)) => Some(decided),
        _ => None,
    }
}

/// Lets the domain decide a capture's start from the shipment's rows (`row`, `shipped`, its
/// lines by line id) and its order.
fn decide_capture_start(
    row: ShipmentRow,
    shipped: Vec<ShipmentLineRow>,
    order: Snapshot,
    installation: &str,
    id: ShipmentId,
    providers: &Providers,
    ask: StartAsk<'_>,
) -> Result<CaptureStartRead, DbError> {
    let currency = order.order.currency()?;
    let shipment = row.to_shipment(currency, &shipped)?;
    let domain_order = order.order.to_order(&order.lines)?;
    let (plan, change) = match shipment.begin_capture_with(&domain_order, providers)? {
        CaptureStart::AlreadyCaptured => {
            return Ok(CaptureStartRead::Answered(BeginCapture::AlreadyCaptured(
                row.into_view(currency, &shipped)?,
            )))
        }
        CaptureStart::Started { plan, change } => (plan, change),
    };
    let start = DecidedStart::new(&domain_order, plan, change, installation, id, ask)?;
    Ok(CaptureStartRead::Decided(DecidedCaptureStart {
        start,
        order: Box::new(order),
        read: Box::new(ReservedRows {
            row,
            lines: shipped,
            currency,
            waiting: None,
        }),
    }))
}

/// SQLite's writer thread: writes a capture's start decided off it ([`read_capture_start`])
/// if the order is still at the version read and the shipment in the state read, so the
/// writer, which every other write waits for, neither locks nor reads the order. Otherwise
/// (or undecided) the locked transaction decides from what is committed; PostgreSQL's
/// undecided start tries its compare-and-set first. With a start written as decided, the
/// shipment's rows and the order as it left them.
pub(crate) fn begin_decided_capture(
    conn: &mut AnyConnection,
    installation: &str,
    read: &CaptureStartRead,
    order: Option<OrderId>,
    providers: &Providers,
    ask: StartAsk<'_>,
    now: Timestamp,
) -> Result<CaptureStarted, DbError> {
    let decided = match read {
        CaptureStartRead::Decided(decided) => decided,
        CaptureStartRead::Answered(answer) => {
            return Ok(CaptureStarted::decided_elsewhere(answer.clone()))
        }
        CaptureStartRead::Undecided(id) => {
            let begun = begin_capture(conn, installation, *id, order, providers, ask, now)?;
            return Ok(CaptureStarted::decided_elsewhere(begun));
        }
    };
    let start = &decided.start;
    let key = conn.transaction(|conn| {
        if !still_as_read(conn, start.id, decided.version(), &start.change)? {
            return Ok(None);
        }
        write_change(conn, &start.change, None, now)?;
        let key = crate::attempts::insert_next_attempt(
            conn,
            installation,
            start.id,
            start.plan.amount().minor(),
            start.plan.completes_order(),
            &start.on_capture,
            start.request_key.as_deref(),
            now.0,
        )?;
        Ok::<_, DbError>(Some(key))
    })?;
    match key {
        Some(key) => Ok(CaptureStarted {
            begun: BeginCapture::Started(start.attempt(key, now)),
            rows: Some(decided.started_rows(now)),
            order_after: decided.order.after_change(&start.change),
        }),
        None => {
            let begun =
                begin_capture_locked(conn, installation, start.id, order, providers, ask, now)?;
            Ok(CaptureStarted::decided_elsewhere(begun))
        }
    }
}

/// Whether the order is at `version` and the shipment in the state `change` starts from.
fn still_as_read(
    conn: &mut AnyConnection,
    id: ShipmentId,
    version: i64,
    change: &ShipmentChange,
) -> Result<bool, DbError> {
    #[derive(QueryableByName)]
    struct Found {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        found: i64,
    }
    let found = returning_one::<Found, _>(
        conn,
        statement!(
            "SELECT count(*) AS found FROM orders JOIN shipments ON shipments.order_id = orders.id \
             WHERE orders.id = $1 AND orders.version = $2 AND shipments.number = $3 \
             AND shipments.state = $4"
        ),
        vec![
            Param::BigInt(id.order.0),
            Param::BigInt(version),
            Param::Integer(int(id.number)),
            Param::Text(change.before().state().as_str()),
        ],
    )?;
    Ok(found.is_some_and(|f| f.found == 1))
}

/// What a capture's start carries besides the domain's decision: the changes that wait for it,
/// and the idempotency key of the request that started it (`OrderStore::begin_capture`).
#[derive(Clone, Copy)]
pub(crate) struct StartAsk<'a> {
    pub(crate) on_capture: &'a ShipmentChanges,
    pub(crate) request_key: Option<&'a str>,
}

impl<'a> StartAsk<'a> {
    pub(crate) fn new(on_capture: &'a ShipmentChanges, request_key: Option<&'a str>) -> Self {
        StartAsk {
            on_capture,
            request_key,
        }
    }
}

/// A capture's start as the domain decided it, with what its write and its attempt carry.
#[derive(Clone)]
struct DecidedStart {
    id: ShipmentId,
    plan: consign_domain::CapturePlan,
    change: ShipmentChange,
    authorization: consign_domain::PaymentAuthorization,
    /// The changes that wait for the capture, encoded.
    on_capture: String,
    /// The idempotency key of the request that started it.
    request_key: Option<String>,
    key_prefix: String,
}

impl DecidedStart {
    fn new(
        order: &Order,
        plan: consign_domain::CapturePlan,
        change: ShipmentChange,
        installation: &str,
        id: ShipmentId,
        ask: StartAsk<'_>,
    ) -> Result<Self, DbError> {
        let authorization = order.payment().cloned().ok_or_else(|| {
            DbError::Corrupt(format!("capture of {id} planned without an authorisation"))
        })?;
        Ok(DecidedStart {
            id,
            plan,
            change,
            authorization,
            on_capture: changes::encode(ask.on_capture),
            request_key: ask.request_key.map(str::to_owned),
            key_prefix: crate::attempts::provider_key_prefix(installation, id),
        })
    }

    fn write(&self, now: Timestamp) -> CaptureStartWrite<'_> {
        CaptureStartWrite {
            change: &self.change,
            key_prefix: &self.key_prefix,
            amount: self.plan.amount().minor(),
            final_capture: self.plan.completes_order(),
            on_capture: &self.on_capture,
            request_key: self.request_key.as_deref(),
            now,
        }
    }

    /// The attempt written under `idempotency_key`, as the saga carries it to the provider.
    fn attempt(&self, idempotency_key: String, now: Timestamp) -> CaptureAttempt {
        CaptureAttempt {
            shipment: self.id,
            authorization: self.authorization.clone(),
            amount: self.plan.amount(),
            idempotency_key,
            final_capture: self.plan.completes_order(),
            created_at: now,
            // Written with `on_capture` always (the changes, or none, encoded).
            changes_waiting: true,
        }
    }
}

/// [`begin_capture`] under the order's lock, in one transaction.
fn begin_capture_locked(
    conn: &mut AnyConnection,
    installation: &str,
    id: ShipmentId,
    order: Option<OrderId>,
    providers: &Providers,
    ask: StartAsk<'_>,
    now: Timestamp,
) -> Result<BeginCapture, DbError> {
    conn.transaction(|conn| {
        let located = locate(conn, id, order, now)?;
        let order = located.order(conn)?;
        let (plan, change) = match located.shipment.begin_capture_with(&order, providers)? {
            CaptureStart::AlreadyCaptured => {
                return Ok(BeginCapture::AlreadyCaptured(located.into_view()?))
            }
            CaptureStart::Started { plan, change } => (plan, change),
        };
        let start = DecidedStart::new(&order, plan, change, installation, id, ask)?;
        let write = start.write(now);
        let key = match &mut *conn {
            // One statement instead of one per row (the round trips are what cost there).
            AnyConnection::Postgresql(pg) if write.fits_one_statement() => {
                crate::postgres::start_capture(pg, &write)?
            }
            conn => {
                write_change(conn, &start.change, None, now)?;
                crate::attempts::insert_next_attempt(
                    conn,
                    installation,
                    id,
                    write.amount,
                    write.final_capture,
                    &start.on_capture,
                    start.request_key.as_deref(),
                    now.0,
                )?
            }
        };
        Ok(BeginCapture::Started(start.attempt(key, now)))
    })
}

/// Complete's changes on a shipment whose capture is not in flight (the domain refuses them
/// otherwise).
pub(crate) fn apply_changes(
    conn: &mut AnyConnection,
    id: ShipmentId,
    order: Option<OrderId>,
    changes: &ShipmentChanges,
    now: Timestamp,
) -> Result<ShipmentView, DbError> {
    conn.transaction(|conn| {
        let mut located = locate(conn, id, order, now)?;
        let completed = complete(
            &located.shipment,
            &mut located.row,
            &mut located.lines,
            changes,
            now,
        )?;
        write_row(conn, &located.row, completed.change.before().state())?;
        write_moves(conn, &completed.change)?;
        if completed.confirm {
            crate::outbox::queue_confirmation(conn, id.order.0, int(id.number), now)?;
        }
        located.into_view()
    })
}

/// Complete's changes as decided: what the caller writes.
pub(crate) struct Completed {
    /// The domain's change (its counters go to [`crate::persist::write_moves`]).
    pub(crate) change: ShipmentChange,
    /// Whether the shipment's confirmation is to be queued
    /// ([`crate::outbox::queue_confirmation`]) in the same transaction.
    pub(crate) confirm: bool,
}

/// Complete's changes, decided: the domain moves the flags forward, and the carrier details,
/// the comment and the shipped time go beside them into `row` (the shipment as read, or as an
/// earlier change of the same transaction left it), which the caller writes with
/// [`write_row`]. A shipping confirmation is due when the shipment becomes shipped and its
/// email is on.
pub(crate) fn complete(
    shipment: &Shipment,
    row: &mut ShipmentRow,
    lines: &mut Vec<ShipmentLineRow>,
    changes: &ShipmentChanges,
    now: Timestamp,
) -> Result<Completed, DbError> {
    let change = shipment.complete(Completion {
        good_to_go: changes.gtg,
        shipped: changes.shipped,
    })?;
    apply_written(row, lines, &change, None, now);
    let confirm = details(&change, row, changes, now);
    Ok(Completed { change, confirm })
}

/// The non-money part of complete's changes: carrier details are kept once the shipment is (or
/// becomes) shipped. Answers whether a shipping confirmation is due: it becomes shipped with
/// its email on.
fn details(
    change: &ShipmentChange,
    row: &mut ShipmentRow,
    changes: &ShipmentChanges,
    now: Timestamp,
) -> bool {
    let shipped = change.after().flags().shipped;
    let send_email = changes.send_email.or(row.send_email.map(|v| v != 0));
    let confirm = change.becomes_shipped() && send_email == Some(true);
    let s = &changes.shipping;
    let keep = |new: &'_ Option<String>, old: &'_ String| -> String {
        match new {
            Some(value) if shipped => value.clone(),
            _ => old.clone(),
        }
    };
    let (carrier, service) = (
        keep(&s.carrier, &row.carrier),
        keep(&s.service, &row.service),
    );
    let tracking = keep(&s.tracking, &row.tracking);
    let return_slip = keep(&s.return_slip_tracking, &row.return_slip_tracking);
    let packages = match s.packages {
        Some(p) if shipped => int(p),
        _ => row.packages,
    };
    let comment = changes
        .internal_comment
        .clone()
        .unwrap_or_else(|| row.internal_comment.clone());
    row.send_email = changes.send_email.map(flag).or(row.send_email);
    row.shipped_at = row.shipped_at.or(shipped.then_some(now.0));
    row.carrier = carrier;
    row.service = service;
    row.packages = packages;
    row.tracking = tracking;
    row.return_slip_tracking = return_slip;
    row.internal_comment = comment;
    confirm
}

/// Update shipment: new quantities and/or good-to-go, as the domain decides.
pub(crate) fn update_shipment(
    conn: &mut AnyConnection,
    id: ShipmentId,
    order: Option<OrderId>,
    lines: Option<&[ShipmentLine]>,
    gtg: Option<bool>,
    now: Timestamp,
) -> Result<ShipmentListing, DbError> {
    conn.transaction(|conn| {
        let located = locate(conn, id, order, now)?;
        let order = located.order(conn)?;
        let change = located.shipment.update(&order, lines, gtg == Some(true))?;
        located.write(conn, &change, now)?;
        // The answer as written, read under the locks this transaction holds.
        crate::listing::find_shipment(conn, id)?
            .ok_or_else(|| DbError::Corrupt(format!("shipment {id} vanished in its update")))
    })
}

/// Delete shipment, as the domain decides: an uncaptured one is deleted and its units released.
/// The request's idempotency key, if any, is recorded with the delete (`deletions.rs`).
pub(crate) fn delete_shipment(
    conn: &mut AnyConnection,
    id: ShipmentId,
    order: Option<OrderId>,
    request_key: Option<&str>,
    now: Timestamp,
) -> Result<ShipmentView, DbError> {
    conn.transaction(|conn| {
        let located = locate(conn, id, order, now)?;
        let change = located.shipment.delete()?;
        let deleted = located.write(conn, &change, now)?;
        if let Some(key) = request_key {
            record_deletion(conn, id, key, now)?;
        }
        deleted.into_view()
    })
}

/// The shipment a request with this key created.
pub(crate) fn find_by_request_key(
    conn: &mut AnyConnection,
    key: &str,
) -> Result<Option<ShipmentView>, DbError> {
    let found: Option<(i64, i32)> = shipments::table
        .filter(shipments::request_key.eq(key))
        .select((shipments::order_id, shipments::number))
        .first(conn)
        .optional()?;
    let Some((order, number)) = found else {
        return Ok(None);
    };
    let (row, lines) = load_shipment(conn, order, number)?
        .ok_or_else(|| DbError::Corrupt(format!("shipment {order}-{number} vanished")))?;
    row.into_view(order_currency(conn, order)?, &lines)
        .map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{import_one_line_order, ship_from_one_line, Throwaway};
    use crate::Database;

    /// SQLite decides a capture's start from a read off its writer thread. When another
    /// shipment of the order starts its capture between that read and the write, the decision
    /// is out of date: the first shipment's capture has become the one that completes the order
    /// (the final capture, for the exact remainder). The write must see that and decide again,
    /// never write the decision made from the read.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_capture_start_decided_before_another_capture_of_the_order_is_decided_again() {
        let file = Throwaway::sqlite();
        let db = Database::open(&file.config).expect("open");
        let line = import_one_line_order(&db, 1, 2).await;
        let first = ship_from_one_line(&db, 1, line, 1, false)
            .await
            .expect("ship one unit uncaptured")
            .shipment
            .id;
        let read = db
            .run_short_read(move |conn| {
                read_capture_start(
                    conn,
                    "test",
                    first,
                    None,
                    &Providers::any(),
                    StartAsk::new(&ShipmentChanges::default(), None),
                )
            })
            .await
            .expect("read");
        let CaptureStartRead::Decided(decided) = read else {
            panic!("an uncaptured shipment's capture is decided from the read");
        };
        assert!(
            !decided.start.plan.completes_order(),
            "as read, the other unit is not in capture yet"
        );
        let second = ship_from_one_line(&db, 1, line, 1, true)
            .await
            .expect("ship the other unit captured");
        assert!(
            !second.attempt.expect("captured").final_capture,
            "the first unit is not in capture yet"
        );
        let started = db
            .run_write(move |conn| {
                begin_decided_capture(
                    conn,
                    "test",
                    &CaptureStartRead::Decided(decided.clone()),
                    None,
                    &Providers::any(),
                    StartAsk::new(&ShipmentChanges::default(), None),
                    Timestamp(3),
                )
            })
            .await
            .expect("start the capture");
        let CaptureStarted {
            begun: BeginCapture::Started(attempt),
            rows: kept,
            order_after,
        } = started
        else {
            panic!("the capture starts: {started:?}");
        };
        assert!(
            attempt.final_capture,
            "the first shipment's capture now completes the order"
        );
        assert_eq!(attempt.amount.minor(), 1_000, "the exact remainder");
        assert!(
            kept.is_none(),
            "rows guessed from the out-of-date read are not kept for the settle"
        );
        assert!(
            order_after.is_none(),
            "nor is the order derived from it kept as its snapshot"
        );
    }
}
