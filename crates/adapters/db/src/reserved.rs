//! The rows of the shipments this instance reserved, or whose capture it started later, on
//! SQLite, kept until the next step that decides from them:
//!
//! - a shipment reserved with capture, or whose capture started later, until its settle: a
//!   captured settle then writes and answers from them instead of reading the shipment back
//!   on SQLite's one writer thread (`kept_settle::settle_as_reserved`,
//!   `kept_settle::settle_as_started`);
//! - a shipment reserved without capture, until its capture starts (complete, capture): the
//!   start is then decided from them and the order's snapshot instead of a read
//!   (`workflow::decide_from_kept`).
//!
//! What is kept is a guess, like an order's snapshot: each write decided from it takes effect
//! only if what it relied on still holds, and otherwise changes nothing and the step reads.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use consign_domain::{Currency, ShipmentId};

use crate::rows::{int, ShipmentLineRow, ShipmentRow};

/// The most shipments kept of each kind. Each is removed by the step that uses it, so this
/// bounds only those whose step never came here (a capture left to recovery, a caller gone, a
/// shipment completed elsewhere or much later): past it, all of that kind are dropped, and
/// their steps read the shipment as before.
const CAPACITY: usize = 4_096;

/// A shipment's rows as its reservation (or its capture's start) wrote them, in the order's
/// currency.
#[derive(Debug, Clone)]
pub(crate) struct ReservedRows {
    pub(crate) row: ShipmentRow,
    pub(crate) lines: Vec<ShipmentLineRow>,
    pub(crate) currency: Currency,
    /// A capture started after the shipment was created: the changes its attempt carries,
    /// encoded as written (`changes::encode`), to be applied with the capture. `None` for a
    /// shipment reserved with capture, whose attempt carries none.
    pub(crate) waiting: Option<String>,
}

/// An uncaptured shipment's rows as its reservation wrote them, and the order's version that
/// reservation left. They are still the database's while the order's kept snapshot was
/// learned at or before that version (`Snapshot::learned_at`) and the order is still at the
/// snapshot's version: every write that changes an uncaptured shipment bumps its order's
/// version, and the versions in between are this instance's own reservations of others.
#[derive(Debug, Clone)]
pub(crate) struct UncapturedRows {
    pub(crate) rows: ReservedRows,
    pub(crate) version: i64,
}

/// Kept rows by shipment (order, number), until the step that uses them takes them.
#[derive(Debug)]
pub(crate) struct KeptShipments<T> {
    rows: Mutex<HashMap<(i64, i32), T>>,
}

impl<T> Default for KeptShipments<T> {
    fn default() -> Self {
        KeptShipments {
            rows: Mutex::new(HashMap::new()),
        }
    }
}

/// Shipments reserved with capture, or whose capture started later, until their settle.
pub(crate) type ReservedShipments = KeptShipments<ReservedRows>;

/// Shipments reserved without capture, until their capture starts.
pub(crate) type UncapturedShipments = KeptShipments<UncapturedRows>;

/// What a kept value is kept by: its shipment's (order, number).
pub(crate) trait OfShipment {
    fn key(&self) -> (i64, i32);
}

impl OfShipment for ReservedRows {
    fn key(&self) -> (i64, i32) {
        (self.row.order_id, self.row.number)
    }
}

impl OfShipment for UncapturedRows {
    fn key(&self) -> (i64, i32) {
        self.rows.key()
    }
}

impl<T: OfShipment> KeptShipments<T> {
    /// Keeps a shipment's rows once the write that left them is committed.
    pub(crate) fn put(&self, kept: T) {
        let mut rows = self.rows.lock().unwrap_or_else(PoisonError::into_inner);
        if rows.len() >= CAPACITY {
            rows.clear();
        }
        rows.insert(kept.key(), kept);
    }

    /// Takes a shipment's rows out, if they are kept.
    pub(crate) fn take(&self, shipment: ShipmentId) -> Option<T> {
        self.rows
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&(shipment.order.0, int(shipment.number)))
    }
}
