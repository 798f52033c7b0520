//! The rows of the shipments this instance reserved with capture, or whose capture it started
//! later, on SQLite, kept until their settle: a captured settle then writes and answers from
//! them instead of reading the shipment back on SQLite's one writer thread
//! (`kept_settle::settle_as_reserved`, `kept_settle::settle_as_started`).
//!
//! What is kept is a guess, like an order's snapshot: the settle's write takes effect only if
//! the shipment is still pending as it was reserved (its state and when it last changed) and
//! its attempt is still open, and otherwise changes nothing and the settle reads the shipment.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use consign_domain::{Currency, ShipmentId};

use crate::rows::{int, ShipmentLineRow, ShipmentRow};

/// The most shipments kept. Each is removed by its settle, so this bounds only those whose
/// settle never came here (a capture left to recovery, a caller gone): past it, all are
/// dropped, and their settles read the shipment as before.
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

/// Reserved shipments by (order, number), until their settle takes them.
#[derive(Debug, Default)]
pub(crate) struct ReservedShipments {
    rows: Mutex<HashMap<(i64, i32), ReservedRows>>,
}

impl ReservedShipments {
    /// Keeps a shipment's rows once its reservation is committed.
    pub(crate) fn put(&self, reserved: ReservedRows) {
        let mut rows = self.rows.lock().unwrap_or_else(PoisonError::into_inner);
        if rows.len() >= CAPACITY {
            rows.clear();
        }
        rows.insert((reserved.row.order_id, reserved.row.number), reserved);
    }

    /// Takes a shipment's rows out, if they are kept.
    pub(crate) fn take(&self, shipment: ShipmentId) -> Option<ReservedRows> {
        self.rows
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&(shipment.order.0, int(shipment.number)))
    }
}
