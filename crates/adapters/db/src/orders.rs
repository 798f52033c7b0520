//! Importing and listing orders.

use consign_domain::{OrderId, ShipmentId, ShipmentState};
use consign_ports::{ImportedOrder, OrderImport, OrderQuery, OrderView, Timestamp};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use std::collections::HashMap;

use crate::connection::{on_backend, AnyConnection};
use crate::consistent_read::in_one_snapshot;
use crate::error::DbError;
use crate::prepared::{returning_one, statement, Param};
use crate::rows::{int, LineRow, OrderRow, ShipmentLineRow, ShipmentRow};
use crate::schema::{customers, order_imports, order_lines, orders, shipment_lines, shipments};
use crate::snapshots::Snapshot;

/// Adds `by` to a counter and answers its new value. As the first statement of a transaction it
/// also takes the write lock, so SQLite queues writers instead of failing them mid-transaction.
pub(crate) fn bump_counter(conn: &mut AnyConnection, name: &str, by: i64) -> Result<i64, DbError> {
    #[derive(QueryableByName)]
    struct Value {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        value: i64,
    }
    let bumped: Option<Value> = returning_one(
        conn,
        statement!("UPDATE counters SET value = value + $1 WHERE name = $2 RETURNING value"),
        vec![Param::BigInt(by), Param::Text(name)],
    )?;
    bumped
        .map(|b| b.value)
        .ok_or_else(|| DbError::Corrupt(format!("no counter {name}")))
}

/// Locks an order for the rest of the transaction and reads it, in one round trip: the row lock
/// on PostgreSQL, the write lock on SQLite. `None` when there is no such order. It also bumps the
/// order's version, so a shipment planned from an unlocked read before this transaction is not
/// written over what it changes.
pub(crate) fn lock_order(
    conn: &mut AnyConnection,
    id: i64,
    now: Timestamp,
) -> Result<Option<OrderRow>, DbError> {
    // Columns named, not `*`: a kept-prepared `*` fails once a migration adds a column.
    Ok(returning_one(
        conn,
        statement!(
            "UPDATE orders SET updated_at = $1, version = version + 1 WHERE id = $2 RETURNING id, \
         currency, customer_id, \
         email, first_name, last_name, address, zipcode, city, country, shipping_fee, \
         payment_provider, payment_reference, authorized, committed, shipping_fee_committed, \
         next_shipment_number, created_at, updated_at, refunded"
        ),
        vec![Param::BigInt(now.0), Param::BigInt(id)],
    )?)
}

/// The order, its lines (in import order) and its version, in one statement and without a
/// lock: what PostgreSQL's compare-and-set reserve plans from, and what SQLite's reserve plans
/// from inside its writer's transaction (the only writer, so nothing can change in between).
pub(crate) fn read_order(
    conn: &mut AnyConnection,
    id: i64,
) -> Result<Option<(OrderRow, Vec<LineRow>, i64)>, DbError> {
    let rows: Vec<(OrderRow, LineRow, i64)> = on_backend!(conn, |c| orders::table
        .inner_join(order_lines::table.on(order_lines::order_id.eq(orders::id)))
        .filter(orders::id.eq(id))
        .order(order_lines::position.asc())
        .select((OrderRow::as_select(), LineRow::as_select(), orders::version))
        .load(c))?;
    let Some((order, _, version)) = rows.first().cloned() else {
        return Ok(None);
    };
    Ok(Some((
        order,
        rows.into_iter().map(|(_, line, _)| line).collect(),
        version,
    )))
}

/// A shipment's row and lines, its order's row, lines and version, as [`shipment_with_order`]
/// reads them.
pub(crate) struct ShipmentWithOrder {
    pub(crate) shipment: ShipmentRow,
    /// The shipment's lines, by line id.
    pub(crate) shipped: Vec<ShipmentLineRow>,
    pub(crate) order: OrderRow,
    /// The order's lines, in import order.
    pub(crate) lines: Vec<LineRow>,
    /// The order's version when read (what a compare-and-set write checks).
    pub(crate) version: i64,
}

/// One row of the join below: a shipment, its order, one line of the order, the shipment's
/// quantity of that line when it has one, and the order's version.
type JoinedRow = (ShipmentRow, OrderRow, LineRow, Option<i32>, i64);

/// Shipments joined with their orders and the orders' lines, each order line joined with the
/// shipment's quantity of it (a shipment line always names a line of its order: the foreign
/// key). Filtered, ordered and loaded by the caller.
macro_rules! shipments_joined_with_orders {
    () => {
        shipments::table
            .inner_join(orders::table.on(orders::id.eq(shipments::order_id)))
            .inner_join(order_lines::table.on(order_lines::order_id.eq(shipments::order_id)))
            .left_join(
                shipment_lines::table.on(shipment_lines::order_id
                    .eq(shipments::order_id)
                    .and(shipment_lines::number.eq(shipments::number))
                    .and(shipment_lines::line_id.eq(order_lines::line_id))),
            )
            .select((
                ShipmentRow::as_select(),
                OrderRow::as_select(),
                LineRow::as_select(),
                shipment_lines::quantity.nullable(),
                orders::version,
            ))
    };
}

/// Joined rows, ordered by shipment and then by line position, as one entry per shipment with
/// its lines in the order `load_shipment` answers them.
fn group_joined(rows: Vec<JoinedRow>) -> Vec<ShipmentWithOrder> {
    let mut grouped: Vec<ShipmentWithOrder> = Vec::new();
    for (shipment, order, line, quantity, version) in rows {
        let next = grouped.last().is_none_or(|g| {
            (g.shipment.order_id, g.shipment.number) != (shipment.order_id, shipment.number)
        });
        if next {
            grouped.push(ShipmentWithOrder {
                shipment,
                shipped: Vec::new(),
                order,
                lines: Vec::new(),
                version,
            });
        }
        let Some(entry) = grouped.last_mut() else {
            continue;
        };
        if let Some(quantity) = quantity {
            entry.shipped.push(ShipmentLineRow {
                order_id: entry.shipment.order_id,
                number: entry.shipment.number,
                line_id: line.line_id,
                quantity,
            });
        }
        entry.lines.push(line);
    }
    for entry in &mut grouped {
        entry.shipped.sort_by_key(|l| l.line_id);
    }
    grouped
}

/// A shipment with its lines, its order and the order's lines (in import order), in one
/// statement: a row per order line. `None` when there is no such shipment, or its order has no
/// line: [`load_shipment`] and [`read_order`] then say which.
pub(crate) fn shipment_with_order(
    conn: &mut AnyConnection,
    order_id: i64,
    number: i32,
) -> Result<Option<ShipmentWithOrder>, DbError> {
    let rows: Vec<JoinedRow> = on_backend!(conn, |c| shipments_joined_with_orders!()
        .filter(shipments::order_id.eq(order_id))
        .filter(shipments::number.eq(number))
        .order(order_lines::position.asc())
        .load(c))?;
    Ok(group_joined(rows).into_iter().next())
}

/// What [`shipment_with_order`] reads, for several shipments, each found once, in no
/// particular order. One statement on PostgreSQL whatever their number (the pairs are passed as
/// two arrays); SQLite reads them one by one, which costs no round trips.
pub(crate) fn shipments_with_orders(
    conn: &mut AnyConnection,
    ids: &[ShipmentId],
) -> Result<Vec<ShipmentWithOrder>, DbError> {
    use diesel::dsl::sql;
    use diesel::sql_types::{Array, BigInt, Bool, Integer};
    match conn {
        AnyConnection::Postgresql(c) => {
            let order_ids: Vec<i64> = ids.iter().map(|id| id.order.0).collect();
            let numbers: Vec<i32> = ids.iter().map(|id| int(id.number)).collect();
            let wanted =
                sql::<Bool>("(shipments.order_id, shipments.number) IN (SELECT * FROM unnest(")
                    .bind::<Array<BigInt>, _>(order_ids)
                    .sql(", ")
                    .bind::<Array<Integer>, _>(numbers)
                    .sql("))");
            let rows: Vec<JoinedRow> = shipments_joined_with_orders!()
                .filter(wanted)
                .order((
                    shipments::order_id.asc(),
                    shipments::number.asc(),
                    order_lines::position.asc(),
                ))
                .load(c)?;
            Ok(group_joined(rows))
        }
        conn => {
            let mut found = Vec::with_capacity(ids.len());
            for id in ids {
                found.extend(shipment_with_order(conn, id.order.0, int(id.number))?);
            }
            Ok(found)
        }
    }
}

/// The states of listed shipments (voided and deleted ones are kept for audit, never listed).
pub(crate) const LIVE: [&str; 3] = [
    ShipmentState::Uncaptured.as_str(),
    ShipmentState::CapturePending.as_str(),
    ShipmentState::Captured.as_str(),
];

/// An order's currency, read alone.
pub(crate) fn order_currency(
    conn: &mut AnyConnection,
    id: i64,
) -> Result<consign_domain::Currency, DbError> {
    let currency: String = orders::table
        .find(id)
        .select(orders::currency)
        .first(conn)?;
    currency
        .parse()
        .map_err(|_| DbError::Corrupt(format!("currency {currency:?}")))
}

/// An order's lines, in import order.
pub(crate) fn load_lines(conn: &mut AnyConnection, id: i64) -> Result<Vec<LineRow>, DbError> {
    Ok(order_lines::table
        .filter(order_lines::order_id.eq(id))
        .order(order_lines::position.asc())
        .select(LineRow::as_select())
        .load(conn)?)
}

pub(crate) fn import_order(
    conn: &mut AnyConnection,
    import: &OrderImport,
    request_key: Option<&str>,
    now: Timestamp,
) -> Result<(ImportedOrder, Snapshot), DbError> {
    conn.transaction(|conn| {
        if let Some(key) = request_key {
            if let Some(found) = imported_with_key(conn, key)? {
                return Ok(found);
            }
        }
        let last_line = bump_counter(conn, "line_id", import.lines.len() as i64)?;
        let first_line = last_line - import.lines.len() as i64 + 1;
        let id = match import.id {
            Some(id) => {
                if order_exists(conn, id.0)? {
                    return Err(DbError::OrderExists(id));
                }
                id.0
            }
            None => {
                // Assigned ids skip any id imported explicitly.
                let mut id = bump_counter(conn, "order_id", 1)?;
                while order_exists(conn, id)? {
                    id = bump_counter(conn, "order_id", 1)?;
                }
                id
            }
        };
        let email = import.customer.email.trim().to_lowercase();
        let customer_id = match customers::table
            .filter(customers::email.eq(&email))
            .select(customers::id)
            .first::<i64>(conn)
            .optional()?
        {
            Some(existing) => existing,
            None => {
                let new_id = bump_counter(conn, "customer_id", 1)?;
                diesel::insert_into(customers::table)
                    .values((customers::id.eq(new_id), customers::email.eq(&email)))
                    .execute(conn)?;
                new_id
            }
        };
        let customer = &import.customer;
        let payment = import.payment.as_ref();
        let row = OrderRow {
            id,
            currency: import.currency.code().to_owned(),
            customer_id,
            email: customer.email.clone(),
            first_name: customer.first_name.clone(),
            last_name: customer.last_name.clone(),
            address: customer.address.address.clone(),
            zipcode: customer.address.zipcode.clone(),
            city: customer.address.city.clone(),
            country: customer.address.country.clone(),
            shipping_fee: import.shipping_fee.minor(),
            payment_provider: payment.map(|p| p.provider.clone()),
            payment_reference: payment.map(|p| p.reference.clone()),
            authorized: payment.map_or(0, |p| p.amount.minor()),
            committed: 0,
            shipping_fee_committed: 0,
            next_shipment_number: 1,
            created_at: now.0,
            updated_at: now.0,
            refunded: 0,
        };
        diesel::insert_into(orders::table)
            .values(row.clone())
            .execute(conn)
            .map_err(|e| match e {
                DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                    DbError::OrderExists(OrderId(id))
                }
                e => e.into(),
            })?;
        let lines: Vec<LineRow> = import
            .lines
            .iter()
            .enumerate()
            .map(|(i, l)| LineRow {
                order_id: id,
                line_id: first_line + i as i64,
                position: i as i32,
                sku: l.sku.clone(),
                name: l.name.clone(),
                unit_price: l.unit_price.minor(),
                tax_rate: int(l.tax_rate.0),
                quantity: int(l.quantity),
                allocated: 0,
                in_capture: 0,
                returned: 0,
            })
            .collect();
        for line in &lines {
            diesel::insert_into(order_lines::table)
                .values(line.clone())
                .execute(conn)?;
        }
        if let Some(key) = request_key {
            // Two imports with one key at once (a takeover while the first still runs): the
            // second waits on the key's row and fails here, unavailable; its client's retry is
            // answered with the first's order.
            diesel::insert_into(order_imports::table)
                .values((
                    order_imports::request_key.eq(key),
                    order_imports::order_id.eq(id),
                    order_imports::imported_at.eq(now.0),
                ))
                .execute(conn)
                .map_err(|e| match e {
                    DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                        DbError::ImportKeyTaken
                    }
                    e => e.into(),
                })?;
        }
        let imported = ImportedOrder {
            order: row.to_order(&lines)?,
            customer_id,
        };
        // A new order's version is the column's default, 0 (migration 000006).
        Ok((imported, Snapshot::read(row, lines, 0)))
    })
}

/// The order an import with `key` made, as it is now, if one did.
fn imported_with_key(
    conn: &mut AnyConnection,
    key: &str,
) -> Result<Option<(ImportedOrder, Snapshot)>, DbError> {
    let Some(id) = order_imports::table
        .find(key)
        .select(order_imports::order_id)
        .first::<i64>(conn)
        .optional()?
    else {
        return Ok(None);
    };
    let (row, lines, version) = read_order(conn, id)?
        .ok_or_else(|| DbError::Corrupt(format!("order {id} of an import key is gone")))?;
    let imported = ImportedOrder {
        order: row.to_order(&lines)?,
        customer_id: row.customer_id,
    };
    Ok(Some((imported, Snapshot::read(row, lines, version))))
}

fn order_exists(conn: &mut AnyConnection, id: i64) -> Result<bool, DbError> {
    Ok(orders::table
        .find(id)
        .select(orders::id)
        .first::<i64>(conn)
        .optional()?
        .is_some())
}

/// A shipment row with its lines.
pub(crate) fn load_shipment(
    conn: &mut AnyConnection,
    order_id: i64,
    number: i32,
) -> Result<Option<(ShipmentRow, Vec<ShipmentLineRow>)>, DbError> {
    // One statement for the row and its lines (a shipment whose lines were all removed still
    // answers its row, with no line).
    let rows: Vec<(ShipmentRow, Option<(i64, i32)>)> = on_backend!(conn, |c| shipments::table
        .left_join(
            shipment_lines::table.on(shipment_lines::order_id
                .eq(shipments::order_id)
                .and(shipment_lines::number.eq(shipments::number))),
        )
        .filter(shipments::order_id.eq(order_id))
        .filter(shipments::number.eq(number))
        .order(shipment_lines::line_id.asc())
        .select((
            ShipmentRow::as_select(),
            (shipment_lines::line_id, shipment_lines::quantity).nullable(),
        ))
        .load(c))?;
    let lines = rows
        .iter()
        .filter_map(|(_, line)| *line)
        .map(|(line_id, quantity)| ShipmentLineRow {
            order_id,
            number,
            line_id,
            quantity,
        })
        .collect();
    Ok(rows.into_iter().next().map(|(row, _)| (row, lines)))
}

/// A part of `GET orders`, read as of one moment: each order's allocated units are the units of
/// its listed shipments.
pub(crate) fn list_orders(
    conn: &mut AnyConnection,
    query: &OrderQuery,
) -> Result<Vec<OrderView>, DbError> {
    in_one_snapshot(conn, |conn| {
        Ok(list_orders_in(conn, query, Past::Read)?.unwrap_or_default())
    })
}

/// [`list_orders`] for a part bounded by `shipments_at_most`, where a read of any size would
/// hold up others (an HTTP worker): `None`, with only the orders' rows and their counts read,
/// when the part's first order alone holds more live shipments than the bound.
pub(crate) fn list_orders_within_bound(
    conn: &mut AnyConnection,
    query: &OrderQuery,
) -> Result<Option<Vec<OrderView>>, DbError> {
    in_one_snapshot(conn, |conn| list_orders_in(conn, query, Past::Refused))
}

/// What a bounded part does with a first order past its bound.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Past {
    /// Reads it: an order is never split.
    Read,
    /// Reads nothing more and answers `None`.
    Refused,
}

/// [`list_orders`], its statements; `None` only when `past` refuses the first order.
fn list_orders_in(
    conn: &mut AnyConnection,
    query: &OrderQuery,
    past: Past,
) -> Result<Option<Vec<OrderView>>, DbError> {
    let mut select = orders::table.select(OrderRow::as_select()).into_boxed();
    if let Some(id) = query.order {
        select = select.filter(orders::id.eq(id.0));
    }
    if let Some(customer) = query.customer_id {
        select = select.filter(orders::customer_id.eq(customer));
    }
    if let Some(since) = query.newer_than {
        select = select.filter(orders::created_at.ge(since.0));
    }
    if let Some(before) = query.older_than {
        select = select.filter(orders::created_at.lt(before.0));
    }
    if let Some((at, id)) = query.after {
        // (created_at, id) > (at, id), written so that the index on (created_at, id) bounds it.
        select = select.filter(
            orders::created_at
                .ge(at.0)
                .and(orders::created_at.gt(at.0).or(orders::id.gt(id.0))),
        );
    }
    let mut rows: Vec<OrderRow> = select
        .order((orders::created_at.asc(), orders::id.asc()))
        .limit(i64::from(query.limit))
        .offset(i64::from(query.offset))
        .load(conn)?;
    if let Some(most) = query.shipments_at_most {
        let Some(within) = orders_within(conn, &rows, most, past)? else {
            return Ok(None);
        };
        rows.truncate(within);
    }
    order_views(conn, rows).map(Some)
}

/// How many of `rows`, from the first, hold at most `most` live shipments together: one
/// statement counting them, so a part of a page is bounded before its shipments are read. The
/// first order counts whatever its own (an order is never split), or, when `past` refuses it
/// and it holds more than `most`, `None`.
fn orders_within(
    conn: &mut AnyConnection,
    rows: &[OrderRow],
    most: u32,
    past: Past,
) -> Result<Option<usize>, DbError> {
    if rows.is_empty() || (rows.len() == 1 && past == Past::Read) {
        return Ok(Some(rows.len()));
    }
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let counts: HashMap<i64, i64> = shipments::table
        .filter(shipments::order_id.eq_any(&ids))
        .filter(shipments::state.eq_any(LIVE))
        .group_by(shipments::order_id)
        .select((shipments::order_id, diesel::dsl::count_star()))
        .load::<(i64, i64)>(conn)?
        .into_iter()
        .collect();
    let held_by = |row: &OrderRow| counts.get(&row.id).copied().unwrap_or(0);
    if past == Past::Refused && held_by(&rows[0]) > i64::from(most) {
        return Ok(None);
    }
    let mut held = 0_i64;
    let within = rows
        .iter()
        .take_while(|row| {
            held += held_by(row);
            held <= i64::from(most)
        })
        .count();
    Ok(Some(within.max(1)))
}

/// An order with its lines, without its shipments, from rows already read.
pub(crate) fn order_summary(row: OrderRow, lines: &[LineRow]) -> Result<OrderView, DbError> {
    let order = row.to_order(lines)?;
    Ok(OrderView {
        refunded: consign_domain::Money::from_minor(row.refunded, order.currency()),
        returned: returned_units(lines),
        customer_id: row.customer_id,
        customer: row.customer(),
        created_at: Timestamp(row.created_at),
        order,
        shipments: Vec::new(),
    })
}

/// The units returned on each line that has any.
fn returned_units(lines: &[LineRow]) -> Vec<(consign_domain::LineId, u32)> {
    lines
        .iter()
        .filter(|l| l.returned > 0)
        .map(|l| (consign_domain::LineId(l.line_id), l.returned.unsigned_abs()))
        .collect()
}

/// Orders with their lines and their live shipments, in the order of `rows`: four statements
/// whatever their number (the lines, the live shipments and their lines, each for all the
/// orders at once), where it was three an order.
fn order_views(conn: &mut AnyConnection, rows: Vec<OrderRow>) -> Result<Vec<OrderView>, DbError> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let lines: Vec<LineRow> = order_lines::table
        .filter(order_lines::order_id.eq_any(&ids))
        .order((order_lines::order_id.asc(), order_lines::position.asc()))
        .select(LineRow::as_select())
        .load(conn)?;
    let shipment_rows: Vec<ShipmentRow> = shipments::table
        .filter(shipments::order_id.eq_any(&ids))
        .filter(shipments::state.eq_any(LIVE))
        .order((shipments::order_id.asc(), shipments::number.asc()))
        .select(ShipmentRow::as_select())
        .load(conn)?;
    let shipped: Vec<ShipmentLineRow> = shipment_lines::table
        .filter(shipment_lines::order_id.eq_any(&ids))
        .order((
            shipment_lines::order_id.asc(),
            shipment_lines::number.asc(),
            shipment_lines::line_id.asc(),
        ))
        .select(ShipmentLineRow::as_select())
        .load(conn)?;
    let mut lines_of: HashMap<i64, Vec<LineRow>> = HashMap::new();
    for line in lines {
        lines_of.entry(line.order_id).or_default().push(line);
    }
    let mut shipments_of: HashMap<i64, Vec<ShipmentRow>> = HashMap::new();
    for shipment in shipment_rows {
        shipments_of
            .entry(shipment.order_id)
            .or_default()
            .push(shipment);
    }
    let mut shipped_of: HashMap<(i64, i32), Vec<ShipmentLineRow>> = HashMap::new();
    for line in shipped {
        shipped_of
            .entry((line.order_id, line.number))
            .or_default()
            .push(line);
    }
    rows.into_iter()
        .map(|row| {
            let id = row.id;
            let mut view = order_summary(row, lines_of.get(&id).map_or(&[], Vec::as_slice))?;
            let currency = view.order.currency();
            view.shipments = shipments_of
                .remove(&id)
                .unwrap_or_default()
                .into_iter()
                .map(|s| {
                    let its = shipped_of
                        .get(&(id, s.number))
                        .map_or(&[][..], Vec::as_slice);
                    s.into_view(currency, its)
                })
                .collect::<Result<Vec<_>, DbError>>()?;
            Ok(view)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use consign_ports::OrderQuery;

    use crate::testing::{import_one_line_order, ship_from_one_line, Throwaway};
    use crate::Database;

    /// A part read where a long read would hold up others is refused when its first order
    /// alone holds more live shipments than the part's bound, alone or with others after it,
    /// and read as [`super::list_orders`] reads it otherwise; both backends.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_bounded_part_whose_first_order_is_past_the_bound_is_refused_unread() {
        let sqlite = Throwaway::sqlite();
        let postgres = Throwaway::postgres();
        if let Err(why) = &postgres {
            assert!(!crate::testing::postgres_required(), "{why}");
        }
        for throwaway in std::iter::once(&sqlite).chain(postgres.as_ref().ok()) {
            let db = Database::open(&throwaway.config).unwrap();
            // Order 1 holds three shipments, order 2 one.
            for (id, shipments) in [(1, 3), (2, 1)] {
                let line = import_one_line_order(&db, id, 5).await;
                for _ in 0..shipments {
                    ship_from_one_line(&db, id, line, 1, false).await.unwrap();
                }
            }
            let part = |limit: u32, most: u32| {
                let db = db.clone();
                async move {
                    let query = OrderQuery {
                        limit,
                        shipments_at_most: Some(most),
                        ..OrderQuery::default()
                    };
                    let bounded = query.clone();
                    let here = db
                        .run_short_read(move |conn| super::list_orders_within_bound(conn, &bounded))
                        .await
                        .unwrap()
                        .map(|part| part.iter().map(|v| v.order.id().0).collect::<Vec<_>>());
                    let anywhere = db
                        .run_short_read(move |conn| super::list_orders(conn, &query))
                        .await
                        .unwrap()
                        .iter()
                        .map(|v| v.order.id().0)
                        .collect::<Vec<_>>();
                    (here, anywhere)
                }
            };
            let url = &throwaway.url;
            assert_eq!(part(1, 2).await, (None, vec![1]), "{url}: alone");
            assert_eq!(part(10, 2).await, (None, vec![1]), "{url}: with another");
            assert_eq!(part(1, 3).await, (Some(vec![1]), vec![1]), "{url}");
            assert_eq!(part(10, 3).await, (Some(vec![1]), vec![1]), "{url}");
            assert_eq!(part(10, 4).await, (Some(vec![1, 2]), vec![1, 2]), "{url}");
        }
    }
}
