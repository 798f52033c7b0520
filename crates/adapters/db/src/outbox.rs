//! The outbox of shipping and refund confirmations, and the invoices issued on capture.

use consign_domain::{OrderId, ReturnId, ShipmentId};
use consign_ports::{Invoice, OutboxKind, OutboxMessage, RefusedMessage, Timestamp};
use diesel::prelude::*;

use crate::connection::AnyConnection;
use crate::error::DbError;
use crate::prepared::{execute, statement, Param, Prepared};
use crate::rows::int;
use crate::schema::{invoices, outbox};

pub(crate) const SHIPPING_CONFIRMATION: &str = "shipping_confirmation";
/// Followed by `:<return id>`: one per return (the table keeps one row per shipment and kind).
const REFUND_CONFIRMATION: &str = "refund_confirmation";
pub(crate) const PENDING: &str = "pending";
pub(crate) const SENDING: &str = "sending";
const SENT: &str = "sent";
/// Refused for good by the mail server: never claimed again.
pub(crate) const REFUSED: &str = "refused";

/// Queues the shipping confirmation of a shipment (once per shipment), inside the caller's
/// transaction, so it exists exactly when the change that shipped the shipment does.
pub(crate) fn queue_confirmation(
    conn: &mut AnyConnection,
    order_id: i64,
    number: i32,
    now: Timestamp,
) -> Result<(), DbError> {
    if let AnyConnection::Postgresql(pg) = conn {
        return crate::postgres::queue_once(
            pg,
            order_id,
            number,
            (SHIPPING_CONFIRMATION, PENDING),
            now,
        );
    }
    queue(conn, order_id, number, SHIPPING_CONFIRMATION, now)
}

/// Writes one message of `kind` for the shipment, due now, unless it has one already (SQLite;
/// PostgreSQL's is `postgres::queue_once`). Two kept-prepared statements, as an invoice is
/// issued: the counter is bumped only when the shipment has no such message, and the row takes
/// its id from the counter's row, which the same transaction has just written.
fn queue(
    conn: &mut AnyConnection,
    order_id: i64,
    number: i32,
    kind: &str,
    now: Timestamp,
) -> Result<(), DbError> {
    let message = || {
        vec![
            Param::BigInt(order_id),
            Param::Integer(number),
            Param::Text(kind),
            Param::Text(OUTBOX_ID),
        ]
    };
    let bumped = execute(
        conn,
        statement!(
            "UPDATE counters SET value = value + 1 WHERE name = $4 AND NOT EXISTS \
             (SELECT 1 FROM outbox WHERE order_id = $1 AND number = $2 AND kind = $3)"
        ),
        message(),
    )?;
    if bumped == 0 {
        // Queued before, or no counter to number it by.
        let queued: i64 = outbox::table
            .filter(outbox::order_id.eq(order_id))
            .filter(outbox::number.eq(number))
            .filter(outbox::kind.eq(kind))
            .count()
            .get_result(conn)?;
        return match queued {
            0 => Err(DbError::Corrupt(format!("no counter {OUTBOX_ID}"))),
            _ => Ok(()),
        };
    }
    let mut params = message();
    params.extend([Param::Text(PENDING), Param::BigInt(now.0)]);
    let written = execute(
        conn,
        statement!(
            "INSERT INTO outbox (id, order_id, number, kind, state, attempts, due_at, created_at) \
             SELECT value, $1, $2, $3, $5, 0, $6, $6 FROM counters WHERE name = $4"
        ),
        params,
    )?;
    if written != 1 {
        return Err(DbError::Corrupt(format!("no counter {OUTBOX_ID}")));
    }
    Ok(())
}

/// The counter that numbers the outbox's messages.
const OUTBOX_ID: &str = "outbox_id";

/// Queues the refund confirmation of a return, inside the transaction that records its refund
/// (once per return).
pub(crate) fn queue_refund_confirmation(
    conn: &mut AnyConnection,
    order_id: i64,
    number: i32,
    return_id: i64,
    now: Timestamp,
) -> Result<(), DbError> {
    let kind = format!("{REFUND_CONFIRMATION}:{return_id}");
    queue(conn, order_id, number, &kind, now)
}

/// What a stored kind names.
fn kind_of(kind: &str) -> Result<OutboxKind, DbError> {
    if kind == SHIPPING_CONFIRMATION {
        return Ok(OutboxKind::ShippingConfirmation);
    }
    kind.strip_prefix(REFUND_CONFIRMATION)
        .and_then(|rest| rest.strip_prefix(':'))
        .and_then(|id| id.parse().ok())
        .map(|id| OutboxKind::RefundConfirmation(ReturnId(id)))
        .ok_or_else(|| DbError::Corrupt(format!("outbox kind {kind:?}")))
}

/// Issues the invoice of a captured shipment, inside the settle transaction: the counter and
/// the row commit or roll back together, so numbers have no gaps or duplicates.
pub(crate) fn issue_invoice(
    conn: &mut AnyConnection,
    order_id: i64,
    number: i32,
    amount: i64,
    now: Timestamp,
) -> Result<(), DbError> {
    if let AnyConnection::Postgresql(pg) = conn {
        return crate::postgres::issue_invoice(pg, order_id, number, amount, now);
    }
    // No `RETURNING` on SQLite, where it costs more than the read it saves (it runs on the one
    // writer thread for every captured shipment): the counter is bumped, and the invoice takes
    // its number from the counter's row, which the same transaction has just written.
    let bumped = execute(
        conn,
        statement!("UPDATE counters SET value = value + 1 WHERE name = $1"),
        vec![Param::Text(INVOICE_NUMBER)],
    )?;
    let written = execute(
        conn,
        statement!(
            "INSERT INTO invoices (number, order_id, shipment_number, amount, issued_at) \
             SELECT value, $1, $2, $3, $4 FROM counters WHERE name = $5"
        ),
        vec![
            Param::BigInt(order_id),
            Param::Integer(number),
            Param::BigInt(amount),
            Param::BigInt(now.0),
            Param::Text(INVOICE_NUMBER),
        ],
    )?;
    if (bumped, written) != (1, 1) {
        return Err(DbError::Corrupt(format!("no counter {INVOICE_NUMBER}")));
    }
    Ok(())
}

/// The counter that numbers invoices.
const INVOICE_NUMBER: &str = "invoice_number";

pub(crate) fn find_invoice(
    conn: &mut AnyConnection,
    shipment: ShipmentId,
) -> Result<Option<Invoice>, DbError> {
    let row: Option<(i64, i64)> = invoices::table
        .filter(invoices::order_id.eq(shipment.order.0))
        .filter(invoices::shipment_number.eq(int(shipment.number)))
        .select((invoices::number, invoices::issued_at))
        .first(conn)
        .optional()?;
    Ok(row.map(|(number, issued_at)| Invoice {
        number,
        issued_at: Timestamp(issued_at),
    }))
}

/// A due message (pending, or sending with a lapsed lease) as a claim leases it.
#[derive(QueryableByName)]
struct Claimed {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    id: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    order_id: i64,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    number: i32,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    attempts: i32,
    #[diesel(sql_type = diesel::sql_types::Text)]
    kind: String,
}

/// The earliest due messages, leased to this caller: one statement that picks and leases
/// them (a transaction of a read and an update per message before), so a claim is one round
/// trip on PostgreSQL and one write on SQLite's writer however many messages it takes.
///
/// On PostgreSQL, rows another claimer has locked are skipped, not waited for: each message is
/// leased by one claimer. On SQLite the statement is one write, and writes are serial.
pub(crate) fn claim(
    conn: &mut AnyConnection,
    now: Timestamp,
    lease_millis: i64,
    limit: u32,
) -> Result<Vec<OutboxMessage>, DbError> {
    let params = vec![
        Param::Text(PENDING),
        Param::Text(SENDING),
        Param::BigInt(now.0),
        Param::BigInt(i64::from(limit)),
        Param::BigInt(now.0 + lease_millis),
    ];
    let mut rows: Vec<Claimed> = match conn {
        AnyConnection::Postgresql(c) => Prepared::new(
            statement!(
                "UPDATE outbox SET state = $2, due_at = $5 \
                 WHERE id IN (SELECT id FROM outbox \
                   WHERE (state = $1 OR state = $2) AND due_at <= $3 \
                   ORDER BY due_at LIMIT $4 FOR UPDATE SKIP LOCKED) \
                 RETURNING id, order_id, number, attempts, kind"
            ),
            params,
        )
        .load(c)?,
        AnyConnection::Sqlite(c) => Prepared::new(
            statement!(
                "UPDATE outbox SET state = $2, due_at = $5 \
                 WHERE id IN (SELECT id FROM outbox \
                   WHERE (state = $1 OR state = $2) AND due_at <= $3 \
                   ORDER BY due_at LIMIT $4) \
                 RETURNING id, order_id, number, attempts, kind"
            ),
            params,
        )
        .load(c)?,
    };
    // `RETURNING` answers in no set order: queued first, sent first.
    rows.sort_by_key(|r| r.id);
    rows.into_iter()
        .map(|r| message_of(r.id, r.order_id, r.number, r.attempts, &r.kind))
        .collect()
}

/// A message as its row holds it.
fn message_of(
    id: i64,
    order_id: i64,
    number: i32,
    attempts: i32,
    kind: &str,
) -> Result<OutboxMessage, DbError> {
    Ok(OutboxMessage {
        id,
        kind: kind_of(kind)?,
        shipment: ShipmentId {
            order: OrderId(order_id),
            number: u32::try_from(number).unwrap_or(0),
        },
        attempts: u32::try_from(attempts).unwrap_or(0),
    })
}

/// A refused message's row: id, order, shipment number, attempts, kind, the server's answer,
/// when it was refused.
type RefusedRow = (i64, i64, i32, i32, String, Option<String>, i64);

/// The messages refused for good, oldest refusal first (a refusal's `due_at` is when it was
/// refused), read through the outbox's index by state.
pub(crate) fn refused(
    conn: &mut AnyConnection,
    limit: u32,
) -> Result<Vec<RefusedMessage>, DbError> {
    let rows: Vec<RefusedRow> = outbox::table
        .filter(outbox::state.eq(REFUSED))
        .order((outbox::due_at.asc(), outbox::id.asc()))
        .limit(i64::from(limit))
        .select((
            outbox::id,
            outbox::order_id,
            outbox::number,
            outbox::attempts,
            outbox::kind,
            outbox::last_error,
            outbox::due_at,
        ))
        .load(conn)?;
    rows.into_iter()
        .map(|(id, order, number, attempts, kind, error, refused_at)| {
            Ok(RefusedMessage {
                message: message_of(id, order, number, attempts, &kind)?,
                error: error.unwrap_or_default(),
                refused_at: Timestamp(refused_at),
            })
        })
        .collect()
}

/// Queues a refused message again, due at `now`, its failed sends forgotten (its backoff starts
/// over); `false` when `id` is no refused message.
pub(crate) fn resend(conn: &mut AnyConnection, id: i64, now: Timestamp) -> Result<bool, DbError> {
    let queued = diesel::update(outbox::table.find(id).filter(outbox::state.eq(REFUSED)))
        .set((
            outbox::state.eq(PENDING),
            outbox::attempts.eq(0),
            outbox::due_at.eq(now.0),
        ))
        .execute(conn)?;
    Ok(queued == 1)
}

/// Marks messages sent: one statement on PostgreSQL (the ids as an array), one per message on
/// SQLite (no round trips there), in one transaction either way.
pub(crate) fn mark_sent(
    conn: &mut AnyConnection,
    ids: &[i64],
    now: Timestamp,
) -> Result<(), DbError> {
    match conn {
        AnyConnection::Postgresql(_) => {
            execute(
                conn,
                statement!("UPDATE outbox SET state = $1, sent_at = $2 WHERE id = ANY($3)"),
                vec![Param::Text(SENT), Param::BigInt(now.0), Param::BigInts(ids)],
            )?;
        }
        AnyConnection::Sqlite(_) => conn.transaction(|conn| {
            for id in ids {
                execute(
                    conn,
                    statement!("UPDATE outbox SET state = $1, sent_at = $2 WHERE id = $3"),
                    vec![Param::Text(SENT), Param::BigInt(now.0), Param::BigInt(*id)],
                )?;
            }
            Ok::<_, DbError>(())
        })?,
    }
    Ok(())
}

/// Puts a message that waits for something else off until `due_at`: released to pending, its
/// failed sends not counted (so the backoff of a real failure later starts where it should).
pub(crate) fn put_off(
    conn: &mut AnyConnection,
    id: i64,
    why: &str,
    due_at: Timestamp,
) -> Result<(), DbError> {
    release(conn, id, PENDING, why, due_at, false)
}

/// Records a failed send: the message is due again at `retry_at`.
pub(crate) fn mark_failed(
    conn: &mut AnyConnection,
    id: i64,
    error: &str,
    retry_at: Timestamp,
) -> Result<(), DbError> {
    release(conn, id, PENDING, error, retry_at, true)
}

/// Gives a message up: the mail server refused it for good, so it is never claimed again (the
/// claim takes pending and sending messages only). Its attempt counts, its refusal is kept.
pub(crate) fn mark_refused(
    conn: &mut AnyConnection,
    id: i64,
    error: &str,
    now: Timestamp,
) -> Result<(), DbError> {
    release(conn, id, REFUSED, error, now, true)
}

/// Leaves a claimed message in `state`, due at `due_at`, with `note` (what the mail server
/// said, or why it waits), its attempt counted when it was a send that did not go through. A
/// message sent or refused meanwhile (by a pass whose lease outlived a slow one's) stays so: a
/// late failure does not queue it again.
fn release(
    conn: &mut AnyConnection,
    id: i64,
    state: &str,
    note: &str,
    due_at: Timestamp,
    attempted: bool,
) -> Result<(), DbError> {
    diesel::update(
        outbox::table
            .find(id)
            .filter(outbox::state.ne_all([SENT, REFUSED])),
    )
    .set((
        outbox::state.eq(state),
        outbox::attempts.eq(outbox::attempts + i32::from(attempted)),
        outbox::due_at.eq(due_at.0),
        outbox::last_error.eq(Some(note)),
    ))
    .execute(conn)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Throwaway;
    use crate::Database;

    /// A message is queued once per shipment and kind: queued again it is skipped, and the
    /// counter that numbers messages moves once for each message written.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_message_queued_twice_is_written_once() {
        let file = Throwaway::sqlite();
        let db = Database::open(&file.config).expect("open");
        let queued = db
            .run_write(|conn| {
                conn.transaction(|conn| {
                    for _ in 0..2 {
                        queue_confirmation(conn, 7, 1, Timestamp(1))?;
                        queue_refund_confirmation(conn, 7, 1, 3, Timestamp(1))?;
                    }
                    queue_confirmation(conn, 7, 2, Timestamp(1))?;
                    let rows: Vec<(i64, i32, String)> = outbox::table
                        .select((outbox::id, outbox::number, outbox::kind))
                        .order(outbox::id)
                        .load(conn)?;
                    Ok::<_, DbError>(rows)
                })
            })
            .await
            .expect("queue");
        let kinds: Vec<(i32, &str)> = queued.iter().map(|(_, n, k)| (*n, k.as_str())).collect();
        assert_eq!(
            kinds,
            [
                (1, SHIPPING_CONFIRMATION),
                (1, "refund_confirmation:3"),
                (2, SHIPPING_CONFIRMATION)
            ]
        );
        let ids: Vec<i64> = queued.iter().map(|(id, _, _)| *id).collect();
        assert_eq!(
            ids,
            [ids[0], ids[0] + 1, ids[0] + 2],
            "numbered without gaps"
        );
    }
}
