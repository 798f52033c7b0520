//! The idempotency keys of deletes: recorded with the delete, so that a retry whose first run
//! committed and then died before its answer was stored is answered as that delete was.

use consign_domain::ShipmentId;
use consign_ports::{ShipmentView, Timestamp};
use diesel::prelude::*;

use crate::connection::AnyConnection;
use crate::error::DbError;
use crate::orders::{load_shipment, order_currency};
use crate::rows::int;
use crate::schema::shipment_deletions;

/// Records, in the delete's transaction, that the request with `key` deleted `id`.
pub(crate) fn record_deletion(
    conn: &mut AnyConnection,
    id: ShipmentId,
    key: &str,
    now: Timestamp,
) -> Result<(), DbError> {
    diesel::insert_into(shipment_deletions::table)
        .values((
            shipment_deletions::order_id.eq(id.order.0),
            shipment_deletions::number.eq(int(id.number)),
            shipment_deletions::request_key.eq(key),
            shipment_deletions::deleted_at.eq(now.0),
        ))
        .execute(conn)?;
    Ok(())
}

/// The shipment the request with `key` deleted, as it stands (deleted is final), or `None` if
/// that request did not delete `id`.
pub(crate) fn deleted_by_key(
    conn: &mut AnyConnection,
    id: ShipmentId,
    key: &str,
) -> Result<Option<ShipmentView>, DbError> {
    let (order, number) = (id.order.0, int(id.number));
    let recorded: Option<i64> = shipment_deletions::table
        .filter(shipment_deletions::order_id.eq(order))
        .filter(shipment_deletions::number.eq(number))
        .filter(shipment_deletions::request_key.eq(key))
        .select(shipment_deletions::deleted_at)
        .first(conn)
        .optional()?;
    if recorded.is_none() {
        return Ok(None);
    }
    let (row, lines) = load_shipment(conn, order, number)?
        .ok_or_else(|| DbError::Corrupt(format!("deleted shipment {id} vanished")))?;
    row.into_view(order_currency(conn, order)?, &lines)
        .map(Some)
}
