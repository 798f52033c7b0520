//! Orders as this instance last wrote them, so that the next shipment of a known order is
//! planned without reading it first (PostgreSQL: one round trip fewer).
//!
//! A snapshot is only a guess. The reservation that is planned from it is written by one
//! statement that commits only if the order's version is still the snapshot's (every write that
//! changes an order or its lines bumps the version, on every instance), so a snapshot another
//! writer has since outdated makes the write change nothing, and the order is read and planned
//! again. Equal versions mean equal rows: what the domain decides from a snapshot is what it
//! would decide from a read.
//!
//! A snapshot is put here only from what this instance wrote itself: the rows an import inserted,
//! the rows a won compare-and-set left, derived from the rows it was planned from and the
//! statement's own changes (`tests/round_trips.rs` ships an order out unit by unit from its
//! snapshots and checks numbers, final capture and refusal against the database), and on
//! SQLite the rows a capture's start written as decided left, derived the same way
//! (`tests/sqlite_snapshots.rs` ships an order out through such starts). A snapshot's
//! columns that no plan reads (refunded and returned units, timestamps) may lag the database's;
//! nothing reads them from here.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use crate::reservation::ReservationWrite;
use consign_domain::ShipmentChange;

use crate::rows::{flag, LineRow, OrderRow};

/// How many orders are kept (oldest put first out): about half a KiB each.
const CAPACITY: usize = 2_048;

/// An order's row, its lines in import order and the version they had.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    pub(crate) order: OrderRow,
    pub(crate) lines: Vec<LineRow>,
    pub(crate) version: i64,
    /// The version at which this instance last learned the order from the database (a read,
    /// its import, a lost compare-and-set's progress): every version after it, up to
    /// `version`, is a write this instance made itself that changed no shipment but its own (a
    /// reservation of a new shipment, or a capture's start, which takes the kept rows of its
    /// shipment first). Rows this instance kept of an uncaptured shipment at a version from
    /// here on are still the database's while the order is at `version`
    /// (`reserved::UncapturedRows`).
    pub(crate) learned_at: i64,
}

impl Snapshot {
    /// The order as read from the database at `version`.
    pub(crate) fn read(order: OrderRow, lines: Vec<LineRow>, version: i64) -> Snapshot {
        Snapshot {
            order,
            lines,
            version,
            learned_at: version,
        }
    }

    /// The order as the compare-and-set write of `write` leaves it when it wins
    /// (`postgres::write_reservation_if_unchanged`, whose `SET` clauses this follows): the next
    /// shipment number, the committed amount and the fee's flag, the version, when it changed,
    /// and each line's allocated and in-capture units.
    pub(crate) fn after_reservation(&self, write: &ReservationWrite, now: i64) -> Snapshot {
        let mut order = self.order.clone();
        order.next_shipment_number = write.shipment.number + 1;
        order.committed += write.committed;
        if write.carries_fee {
            order.shipping_fee_committed = 1;
        }
        order.updated_at = now;
        let mut lines = self.lines.clone();
        let in_capture = i32::from(write.in_capture);
        for shipped in write.lines {
            if let Some(line) = lines.iter_mut().find(|l| l.line_id == shipped.line_id) {
                line.allocated += shipped.quantity;
                line.in_capture += shipped.quantity * in_capture;
            }
        }
        Snapshot {
            order,
            lines,
            version: self.version + 1,
            learned_at: self.learned_at,
        }
    }
}

impl Snapshot {
    /// The order as a capture's start that wrote `change` on top of it leaves it
    /// (`persist::write_moves`, whose statements this follows): each line's allocated and
    /// in-capture units, the committed amount and the fee's flag moved, and the version bumped
    /// when any of them moved. `None` for a change of the shipment's lines (not a capture's
    /// start), or of a line this snapshot does not have.
    pub(crate) fn after_change(&self, change: &ShipmentChange) -> Option<Snapshot> {
        if change.lines_changed() {
            return None;
        }
        let mut after = self.clone();
        for moved in change.line_moves() {
            let line = after
                .lines
                .iter_mut()
                .find(|line| line.line_id == moved.line_id.0)?;
            line.allocated = line
                .allocated
                .checked_add(i32::try_from(moved.allocated).ok()?)?;
            line.in_capture = line
                .in_capture
                .checked_add(i32::try_from(moved.in_capture).ok()?)?;
        }
        let (committed, fee) = (change.committed_change(), change.shipping_fee_committed());
        after.order.committed = after.order.committed.checked_add(committed)?;
        if let Some(fee) = fee {
            after.order.shipping_fee_committed = flag(fee);
        }
        if !change.line_moves().is_empty() || committed != 0 || fee.is_some() {
            after.version += 1;
        }
        Some(after)
    }

    /// This order with the progress a lost compare-and-set found
    /// (`postgres::write_reservation_if_unchanged`): `version,committed,fee,next;` then
    /// `line:allocated:in_capture` for each line in import order. Only those change after an
    /// import (nothing updates an order's lines, prices, fee or payment), so the rest is kept.
    /// `None` when the text does not name exactly this order's lines.
    pub(crate) fn with_progress(&self, progress: &str) -> Option<Snapshot> {
        let (order, lines) = progress.split_once(';')?;
        let mut counters = order.split(',').map(str::parse::<i64>);
        let mut next = || counters.next()?.ok();
        let (version, committed) = (next()?, next()?);
        let (fee, number) = (next()?, next()?);
        let mut snapshot = self.clone();
        snapshot.version = version;
        snapshot.learned_at = version;
        snapshot.order.committed = committed;
        snapshot.order.shipping_fee_committed = i32::try_from(fee).ok()?;
        snapshot.order.next_shipment_number = i32::try_from(number).ok()?;
        let mut found = lines.split(',').filter(|l| !l.is_empty());
        for line in &mut snapshot.lines {
            let mut parts = found.next()?.split(':').map(str::parse::<i64>);
            let mut part = || parts.next()?.ok();
            if part()? != line.line_id {
                return None;
            }
            line.allocated = i32::try_from(part()?).ok()?;
            line.in_capture = i32::try_from(part()?).ok()?;
        }
        found.next().is_none().then_some(snapshot)
    }
}

/// Snapshots by order id, bounded; shared by the threads of one [`crate::Database`].
#[derive(Default)]
pub(crate) struct OrderSnapshots {
    inner: Mutex<Kept>,
}

#[derive(Default)]
struct Kept {
    by_order: HashMap<i64, Arc<Snapshot>>,
    /// Order ids in the order they were first put, for eviction.
    arrival: VecDeque<i64>,
}

impl OrderSnapshots {
    /// The snapshot of `order`, if one is kept.
    pub(crate) fn get(&self, order: i64) -> Option<Arc<Snapshot>> {
        let kept = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        kept.by_order.get(&order).cloned()
    }

    /// Keeps `snapshot` unless a later version of its order is kept already. The customer's
    /// email, name and address and the lines' SKUs and names are not kept: no plan reads them
    /// (a confirmation, which does, takes the locked path and reads the order).
    pub(crate) fn put(&self, mut snapshot: Snapshot) {
        for line in &mut snapshot.lines {
            line.sku = String::new();
            line.name = String::new();
        }
        let order = &mut snapshot.order;
        for unread in [
            &mut order.email,
            &mut order.first_name,
            &mut order.last_name,
            &mut order.address,
            &mut order.zipcode,
            &mut order.city,
            &mut order.country,
        ] {
            *unread = String::new();
        }
        let id = snapshot.order.id;
        let mut kept = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        match kept.by_order.get(&id) {
            Some(existing) if existing.version >= snapshot.version => {}
            Some(_) => {
                kept.by_order.insert(id, Arc::new(snapshot));
            }
            None => {
                while kept.by_order.len() >= CAPACITY {
                    let Some(oldest) = kept.arrival.pop_front() else {
                        break;
                    };
                    kept.by_order.remove(&oldest);
                }
                kept.by_order.insert(id, Arc::new(snapshot));
                kept.arrival.push_back(id);
            }
        }
    }

    /// Forgets `order` (its snapshot did not match: the next shipment reads it).
    pub(crate) fn forget(&self, order: i64) {
        let mut kept = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if kept.by_order.remove(&order).is_some() {
            kept.arrival.retain(|id| *id != order);
        }
    }

    /// How many orders are kept.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .by_order
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(id: i64) -> OrderRow {
        OrderRow {
            id,
            currency: "SEK".into(),
            customer_id: 1,
            email: String::new(),
            first_name: String::new(),
            last_name: String::new(),
            address: String::new(),
            zipcode: String::new(),
            city: String::new(),
            country: String::new(),
            shipping_fee: 0,
            payment_provider: None,
            payment_reference: None,
            authorized: 0,
            committed: 0,
            shipping_fee_committed: 0,
            next_shipment_number: 1,
            created_at: 0,
            updated_at: 0,
            refunded: 0,
        }
    }

    fn snapshot(id: i64, version: i64) -> Snapshot {
        Snapshot::read(order(id), Vec::new(), version)
    }

    fn line(line_id: i64, allocated: i32) -> LineRow {
        LineRow {
            order_id: 1,
            line_id,
            position: 0,
            sku: String::new(),
            name: String::new(),
            unit_price: 100,
            tax_rate: 0,
            quantity: 10,
            allocated,
            in_capture: allocated,
            returned: 0,
        }
    }

    #[test]
    fn progress_found_by_a_lost_write_replaces_only_what_changes() {
        let mut known = snapshot(1, 3);
        known.lines = vec![line(7, 1), line(9, 0)];
        let now = known
            .with_progress("5,2500,1,4;7:2:1,9:3:3")
            .expect("parsed");
        assert_eq!(now.version, 5);
        assert_eq!(
            (
                now.order.committed,
                now.order.shipping_fee_committed,
                now.order.next_shipment_number
            ),
            (2500, 1, 4)
        );
        let progress: Vec<_> = now
            .lines
            .iter()
            .map(|l| (l.line_id, l.allocated, l.in_capture, l.quantity))
            .collect();
        assert_eq!(progress, [(7, 2, 1, 10), (9, 3, 3, 10)]);
        // Not this order's lines, or not all of them: planned from a read instead.
        assert!(known.with_progress("5,0,0,4;7:2:1").is_none());
        assert!(known.with_progress("5,0,0,4;7:2:1,9:3:3,11:0:0").is_none());
        assert!(known.with_progress("5,0,0,4;9:3:3,7:2:1").is_none());
        assert!(known.with_progress("5,0,0;7:2:1,9:3:3").is_none());
        assert!(known.with_progress("garbage").is_none());
    }

    #[test]
    fn a_kept_snapshot_is_replaced_only_by_a_later_version() {
        let kept = OrderSnapshots::default();
        let mut first = snapshot(1, 3);
        first.order.email = "someone@example.com".into();
        kept.put(first);
        assert_eq!(
            kept.get(1).map(|s| s.order.email.clone()),
            Some(String::new())
        );
        kept.put(snapshot(1, 2));
        assert_eq!(kept.get(1).map(|s| s.version), Some(3));
        kept.put(snapshot(1, 4));
        assert_eq!(kept.get(1).map(|s| s.version), Some(4));
        kept.forget(1);
        assert!(kept.get(1).is_none());
    }

    #[test]
    fn the_oldest_order_goes_first_when_full() {
        let kept = OrderSnapshots::default();
        for id in 0..=CAPACITY as i64 {
            kept.put(snapshot(id, 0));
        }
        assert_eq!(kept.len(), CAPACITY);
        assert!(kept.get(0).is_none(), "the first order put went first");
        assert!(kept.get(1).is_some() && kept.get(CAPACITY as i64).is_some());
        // Forgetting one makes room without evicting another.
        kept.forget(5);
        kept.put(snapshot(-1, 0));
        assert!(kept.get(1).is_some() && kept.get(-1).is_some());
    }
}
