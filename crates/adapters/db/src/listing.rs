//! `GET shipments` and `GET shipments/<id>`: live shipments with their orders.

use consign_domain::{OrderId, ShipmentId};
use consign_ports::{ShipmentListing, ShipmentQuery, ShipmentStatus};
use diesel::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;

use crate::connection::AnyConnection;
use crate::consistent_read::in_one_snapshot;
use crate::error::DbError;
use crate::orders::{
    load_shipment, order_summary, read_order, shipment_with_order, shipments_with_orders,
    ShipmentWithOrder, LIVE,
};
use crate::rows::{distinct, int, LineRow, OrderRow, ShipmentLineRow, ShipmentRow};
use crate::schema::{order_lines, orders, shipment_lines, shipments};

/// A shipment as read (row and lines) with its order: one more statement, the order with its
/// lines.
fn listing(
    conn: &mut AnyConnection,
    row: ShipmentRow,
    lines: &[ShipmentLineRow],
) -> Result<ShipmentListing, DbError> {
    let (order_row, line_rows, _) = read_order(conn, row.order_id)?.ok_or_else(|| {
        DbError::Corrupt(format!("order {} vanished while listing", row.order_id))
    })?;
    assemble(row, lines, order_row, &line_rows)
}

/// A shipment and its order, as read, as the port's listing.
fn assemble(
    row: ShipmentRow,
    lines: &[ShipmentLineRow],
    order_row: OrderRow,
    line_rows: &[LineRow],
) -> Result<ShipmentListing, DbError> {
    let order = order_summary(order_row, line_rows)?;
    let shipment = row.into_view(order.order.currency(), lines)?;
    Ok(ShipmentListing {
        order: Arc::new(order),
        shipment,
    })
}

pub(crate) fn find_shipment(
    conn: &mut AnyConnection,
    id: ShipmentId,
) -> Result<Option<ShipmentListing>, DbError> {
    // Read by key and checked here: a filter on the states (`IN (...)`) is never kept prepared.
    // One statement for all of it; the two below only when it finds nothing, to tell why.
    if let Some(found) = shipment_with_order(conn, id.order.0, int(id.number))? {
        if !found.shipment.state()?.is_live() {
            return Ok(None);
        }
        return assemble(found.shipment, &found.shipped, found.order, &found.lines).map(Some);
    }
    match load_shipment(conn, id.order.0, int(id.number))? {
        Some((row, lines)) if row.state()?.is_live() => listing(conn, row, &lines).map(Some),
        _ => Ok(None),
    }
}

/// The live ones of `ids` with their orders, in the order asked, each once: what
/// [`find_shipment`] answers for each, in one statement on PostgreSQL.
pub(crate) fn find_shipments(
    conn: &mut AnyConnection,
    ids: &[ShipmentId],
) -> Result<Vec<ShipmentListing>, DbError> {
    let mut wanted: Vec<ShipmentId> = Vec::with_capacity(ids.len());
    for id in ids {
        if !wanted.contains(id) {
            wanted.push(*id);
        }
    }
    let mut found: HashMap<(i64, i32), ShipmentWithOrder> = shipments_with_orders(conn, &wanted)?
        .into_iter()
        .map(|entry| ((entry.shipment.order_id, entry.shipment.number), entry))
        .collect();
    let mut listed = Vec::with_capacity(wanted.len());
    for id in wanted {
        let Some(entry) = found.remove(&(id.order.0, int(id.number))) else {
            continue;
        };
        if entry.shipment.state()?.is_live() {
            listed.push(assemble(
                entry.shipment,
                &entry.shipped,
                entry.order,
                &entry.lines,
            )?);
        }
    }
    Ok(listed)
}

/// A page of live shipments with their orders, read as of one moment: a shipment that changes
/// state meanwhile is listed as the filter found it, and each listed order's counters agree
/// with the shipments listed beside it.
pub(crate) fn list_shipments(
    conn: &mut AnyConnection,
    query: &ShipmentQuery,
) -> Result<Vec<ShipmentListing>, DbError> {
    in_one_snapshot(conn, |conn| list_shipments_in(conn, query))
}

/// [`list_shipments`], its statements.
fn list_shipments_in(
    conn: &mut AnyConnection,
    query: &ShipmentQuery,
) -> Result<Vec<ShipmentListing>, DbError> {
    let mut select = shipments::table
        .inner_join(orders::table.on(orders::id.eq(shipments::order_id)))
        .filter(shipments::state.eq_any(LIVE))
        .select(ShipmentRow::as_select())
        .into_boxed();
    select = match query.status {
        ShipmentStatus::GoodToGo => select
            .filter(shipments::gtg.eq(1))
            .filter(shipments::shipped.eq(0)),
        ShipmentStatus::InProgress => select
            .filter(shipments::gtg.eq(0))
            .filter(shipments::shipped.eq(0)),
        ShipmentStatus::Completed => select.filter(shipments::shipped.eq(1)),
    };
    if let Some(OrderId(id)) = query.order {
        select = select.filter(shipments::order_id.eq(id));
    }
    if let Some(customer) = query.customer_id {
        select = select.filter(orders::customer_id.eq(customer));
    }
    if let Some(since) = query.newer_than {
        select = select.filter(shipments::created_at.ge(since.0));
    }
    if let Some(before) = query.older_than {
        select = select.filter(shipments::created_at.lt(before.0));
    }
    let rows: Vec<ShipmentRow> = select
        .order((
            shipments::created_at.asc(),
            shipments::order_id.asc(),
            shipments::number.asc(),
        ))
        .limit(i64::from(query.limit))
        .offset(i64::from(query.offset))
        .load(conn)?;
    page_listings(conn, rows)
}

/// The page's shipments with their orders, in the page's order: two more statements whatever
/// the page holds (the orders with their lines, the shipments' lines), each order read and held
/// once however many of the page's shipments are its own. Read joined (a row per shipment and
/// order line, each carrying the shipment's and the order's whole rows), a page of 100
/// shipments of an order of 1,000 lines was 100,000 rows, and 100 copies of the order.
fn page_listings(
    conn: &mut AnyConnection,
    rows: Vec<ShipmentRow>,
) -> Result<Vec<ShipmentListing>, DbError> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let order_ids = distinct(rows.iter().map(|r| r.order_id));
    let numbers = distinct(rows.iter().map(|r| r.number));
    // Each order with its lines: a row per line, each carrying its order's row once.
    let mut orders_read: Vec<(OrderRow, Vec<LineRow>)> = Vec::with_capacity(order_ids.len());
    for (order, line) in orders::table
        .inner_join(order_lines::table.on(order_lines::order_id.eq(orders::id)))
        .filter(orders::id.eq_any(&order_ids))
        .order((orders::id.asc(), order_lines::position.asc()))
        .select((OrderRow::as_select(), LineRow::as_select()))
        .load::<(OrderRow, LineRow)>(conn)?
    {
        match orders_read.last_mut() {
            Some((read, lines)) if read.id == order.id => lines.push(line),
            _ => orders_read.push((order, vec![line])),
        }
    }
    // The page's orders and numbers cross: a line of another shipment of these orders may be
    // read and left here, never the lines of every shipment of a busy order.
    let mut shipped_of: HashMap<(i64, i32), Vec<ShipmentLineRow>> = HashMap::new();
    for line in shipment_lines::table
        .filter(shipment_lines::order_id.eq_any(&order_ids))
        .filter(shipment_lines::number.eq_any(&numbers))
        .order((
            shipment_lines::order_id.asc(),
            shipment_lines::number.asc(),
            shipment_lines::line_id.asc(),
        ))
        .select(ShipmentLineRow::as_select())
        .load::<ShipmentLineRow>(conn)?
    {
        shipped_of
            .entry((line.order_id, line.number))
            .or_default()
            .push(line);
    }
    let mut views: HashMap<i64, Arc<consign_ports::OrderView>> =
        HashMap::with_capacity(orders_read.len());
    for (row, lines) in orders_read {
        views.insert(row.id, Arc::new(order_summary(row, &lines)?));
    }
    rows.into_iter()
        .map(|row| {
            let order = views.get(&row.order_id).cloned().ok_or_else(|| {
                DbError::Corrupt(format!("order {} vanished while listing", row.order_id))
            })?;
            let lines = shipped_of
                .get(&(row.order_id, row.number))
                .map_or(&[][..], Vec::as_slice);
            let shipment = row.into_view(order.order.currency(), lines)?;
            Ok(ShipmentListing { order, shipment })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query_plans::{as_grown, plans_of};
    use crate::testing::Throwaway;
    use crate::Database;

    /// What `ANALYZE` records on a database of 200,000 shipments, half of them shipped: two
    /// values of `shipped`, four states, a handful of shipments per order.
    const GROWN_TABLES: &str = "INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES \
         ('shipments', 'sqlite_autoindex_shipments_1', '200000 5 1'), \
         ('shipments', 'shipments_by_state', '200000 50000 1'), \
         ('shipments', 'shipments_by_flags', '200000 100000 1 1 1'), \
         ('shipments', 'shipments_by_request_key', '200000 1'), \
         ('orders', 'sqlite_autoindex_orders_1', '40000 1'), \
         ('orders', 'orders_by_created', '40000 1 1')";

    /// A page of each status filter reads shipments in the page's order and stops: it sorts
    /// none of them whole. `completed` (shipped, good to go or not) sorted every completed
    /// shipment there ever was for each page.
    #[tokio::test]
    async fn a_page_of_each_status_reads_in_order_and_sorts_nothing_whole() {
        let file = Throwaway::sqlite();
        let db = Database::open(&file.config).expect("open");
        for status in [
            ShipmentStatus::Completed,
            ShipmentStatus::GoodToGo,
            ShipmentStatus::InProgress,
        ] {
            let steps = db
                .run_write(move |conn| {
                    as_grown(conn, GROWN_TABLES)?;
                    let query = ShipmentQuery {
                        status,
                        order: None,
                        customer_id: None,
                        newer_than: None,
                        older_than: None,
                        limit: 20,
                        offset: 0,
                    };
                    let plans = plans_of(conn, |conn| list_shipments_in(conn, &query))?;
                    Ok(plans
                        .into_iter()
                        .find(|(sql, _)| sql.contains("ORDER BY `shipments`.`created_at`"))
                        .map(|(_, steps)| steps)
                        .unwrap_or_default())
                })
                .await
                .expect("the page's plan");
            assert!(
                steps
                    .iter()
                    .any(|step| step.contains("USING INDEX shipments_by_flags")),
                "{status:?}: {steps:?}"
            );
            assert!(
                !steps
                    .iter()
                    .any(|step| step.contains("TEMP B-TREE FOR ORDER BY")),
                "{status:?}: {steps:?}"
            );
        }
    }
}
