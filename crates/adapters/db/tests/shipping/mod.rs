//! An order of one line, imported and shipped through the store's port (`consign_db::testing`),
//! and its progress: what the snapshot tests of both backends (`round_trips.rs`,
//! `sqlite_snapshots.rs`) drive.

use consign_db::Database;
use consign_domain::*;
use consign_ports::*;

pub use consign_db::testing::{import_one_line_order as import, ship_from_one_line as ship};

/// (allocated, committed minor units) of order `id`, as read from the database.
pub async fn progress(db: &Database, id: i64) -> (u32, i64) {
    let orders = db.list_orders(OrderQuery::default()).await.expect("list");
    let order = &orders
        .iter()
        .find(|o| o.order.id() == OrderId(id))
        .expect("the order")
        .order;
    (order.lines()[0].allocated(), order.committed().minor())
}

/// Starts the capture of the uncaptured shipment `id` on `db`, `changes` waiting for it.
pub async fn start_capture(
    db: &Database,
    id: ShipmentId,
    changes: ShipmentChanges,
) -> CaptureAttempt {
    let started = db
        .begin_capture(id, None, Providers::any(), changes, None, Timestamp(3))
        .await
        .expect("begin capture");
    let BeginCapture::Started(attempt) = started else {
        panic!("an uncaptured shipment starts its capture");
    };
    attempt
}
