//! A canonical text dump of every table, for tests that prove a refused request changed nothing
//! and for operators comparing two databases.

use diesel::prelude::*;

use crate::database::Database;
use crate::error::DbError;
use crate::returns::{RefundAttemptRow, ReturnLineRow, ReturnRow};
use crate::rows::{ApiKeyRow, AttemptRow, LineRow, OrderRow, ShipmentLineRow, ShipmentRow};
use crate::schema::*;

/// An outbox row as dumped: id, order, shipment number, kind, state, attempts, last error.
type OutboxDump = (i64, i64, i32, String, String, i32, Option<String>);

impl Database {
    /// Every row of every business table, one line each, in primary-key order. API keys are
    /// left out (their table changes only through the CLI).
    pub async fn dump(&self) -> Result<Vec<String>, DbError> {
        self.run(|conn| {
            let mut out = Vec::new();
            let rows: Vec<(String, i64)> = counters::table.order(counters::name).load(conn)?;
            out.extend(rows.iter().map(|r| format!("counters {r:?}")));
            let rows: Vec<(i64, String)> = customers::table.order(customers::id).load(conn)?;
            out.extend(rows.iter().map(|r| format!("customers {r:?}")));
            let rows: Vec<OrderRow> = orders::table
                .order(orders::id)
                .select(OrderRow::as_select())
                .load(conn)?;
            out.extend(rows.iter().map(|r| format!("orders {r:?}")));
            let rows: Vec<LineRow> = order_lines::table
                .order((order_lines::order_id, order_lines::line_id))
                .select(LineRow::as_select())
                .load(conn)?;
            out.extend(rows.iter().map(|r| format!("order_lines {r:?}")));
            let rows: Vec<ShipmentRow> = shipments::table
                .order((shipments::order_id, shipments::number))
                .select(ShipmentRow::as_select())
                .load(conn)?;
            out.extend(rows.iter().map(|r| format!("shipments {r:?}")));
            let rows: Vec<ShipmentLineRow> = shipment_lines::table
                .order((
                    shipment_lines::order_id,
                    shipment_lines::number,
                    shipment_lines::line_id,
                ))
                .select(ShipmentLineRow::as_select())
                .load(conn)?;
            out.extend(rows.iter().map(|r| format!("shipment_lines {r:?}")));
            let rows: Vec<(AttemptRow, Option<String>)> = capture_attempts::table
                .order((
                    capture_attempts::order_id,
                    capture_attempts::number,
                    capture_attempts::attempt,
                ))
                .select((AttemptRow::as_select(), capture_attempts::request_key))
                .load(conn)?;
            out.extend(rows.iter().map(|r| format!("capture_attempts {r:?}")));
            let rows: Vec<(i64, i64, i32, i64, i64)> =
                invoices::table.order(invoices::number).load(conn)?;
            out.extend(rows.iter().map(|r| format!("invoices {r:?}")));
            let rows: Vec<OutboxDump> = outbox::table
                .order(outbox::id)
                .select((
                    outbox::id,
                    outbox::order_id,
                    outbox::number,
                    outbox::kind,
                    outbox::state,
                    outbox::attempts,
                    outbox::last_error,
                ))
                .load(conn)?;
            out.extend(rows.iter().map(|(id, order, number, kind, state, attempts, error)| {
                format!("outbox ({id}, {order}, {number}, {kind:?}, {state:?}, attempts: {attempts}, {error:?})")
            }));
            let rows: Vec<(i64, i32, i64, i64, i32, Option<i64>)> = shipments::table
                .order((shipments::order_id, shipments::number))
                .select((
                    shipments::order_id,
                    shipments::number,
                    shipments::refund_held,
                    shipments::refunded,
                    shipments::shipping_fee_returned,
                    shipments::row_id,
                ))
                .load(conn)?;
            out.extend(rows.iter().map(|r| format!("shipment_refunds {r:?}")));
            let rows: Vec<(i64, i32, i64, i32, Option<i64>)> = shipment_lines::table
                .order((
                    shipment_lines::order_id,
                    shipment_lines::number,
                    shipment_lines::line_id,
                ))
                .select((
                    shipment_lines::order_id,
                    shipment_lines::number,
                    shipment_lines::line_id,
                    shipment_lines::returned,
                    shipment_lines::row_id,
                ))
                .load(conn)?;
            out.extend(rows.iter().map(|r| format!("shipment_line_returns {r:?}")));
            let rows: Vec<(i64, i32, String, i64)> = shipment_deletions::table
                .order((shipment_deletions::order_id, shipment_deletions::number))
                .load(conn)?;
            out.extend(rows.iter().map(|r| format!("shipment_deletions {r:?}")));
            let rows: Vec<(i64, String, i32, String, String, String, i64)> =
                hand_settlements::table
                    .order((
                        hand_settlements::order_id,
                        hand_settlements::idempotency_key,
                    ))
                    .load(conn)?;
            out.extend(rows.iter().map(|r| format!("hand_settlements {r:?}")));
            let rows: Vec<ReturnRow> = returns::table
                .order(returns::id)
                .select(ReturnRow::as_select())
                .load(conn)?;
            out.extend(rows.iter().map(|r| format!("returns {r:?}")));
            let rows: Vec<ReturnLineRow> = return_lines::table
                .order((return_lines::return_id, return_lines::line_id))
                .select(ReturnLineRow::as_select())
                .load(conn)?;
            out.extend(rows.iter().map(|r| format!("return_lines {r:?}")));
            let rows: Vec<RefundAttemptRow> = refund_attempts::table
                .order((refund_attempts::return_id, refund_attempts::attempt))
                .select(RefundAttemptRow::as_select())
                .load(conn)?;
            out.extend(rows.iter().map(|r| format!("refund_attempts {r:?}")));
            let rows: Vec<(i64, i64, i64, i64)> =
                credit_notes::table.order(credit_notes::number).load(conn)?;
            out.extend(rows.iter().map(|r| format!("credit_notes {r:?}")));
            let rows: Vec<(i64, String, String, String, String, i64)> =
                refund_hand_settlements::table
                    .order(refund_hand_settlements::idempotency_key)
                    .load(conn)?;
            out.extend(
                rows.iter()
                    .map(|r| format!("refund_hand_settlements {r:?}")),
            );
            Ok(out)
        })
        .await
    }

    /// Number of stored API keys, active or not.
    pub async fn api_key_count(&self) -> Result<usize, DbError> {
        self.run(|conn| {
            let rows: Vec<ApiKeyRow> = api_keys::table.select(ApiKeyRow::as_select()).load(conn)?;
            Ok(rows.len())
        })
        .await
    }
}
