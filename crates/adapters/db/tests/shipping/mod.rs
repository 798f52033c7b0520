//! An order of one line, imported and shipped through the store's port: what the snapshot
//! tests of both backends (`round_trips.rs`, `sqlite_snapshots.rs`) drive.

use consign_db::Database;
use consign_domain::*;
use consign_ports::*;

pub fn sek() -> Currency {
    "SEK".parse().unwrap()
}

/// Imports order `id`: one line of `quantity` units at 10.00, authorized in full, no fee.
pub async fn import(db: &Database, id: i64, quantity: u32) -> LineId {
    let imported = db
        .import_order(
            OrderImport {
                id: Some(OrderId(id)),
                currency: sek(),
                customer: Customer {
                    email: "s@example.com".into(),
                    ..Customer::default()
                },
                lines: vec![LineImport {
                    sku: "B".into(),
                    name: "B".into(),
                    unit_price: Money::from_minor(1_000, sek()),
                    tax_rate: TaxRate(2500),
                    quantity,
                }],
                shipping_fee: Money::zero(sek()),
                payment: Some(PaymentAuthorization {
                    provider: "sandbox".into(),
                    reference: "auth".into(),
                    amount: Money::from_minor(1_000 * i64::from(quantity), sek()),
                }),
            },
            Timestamp(1),
        )
        .await
        .expect("import");
    imported.order.lines()[0].line_id()
}

/// Ships `quantity` units of order `id`'s `line`, captured or not.
pub async fn ship(
    db: &Database,
    id: i64,
    line: LineId,
    quantity: u32,
    capture: bool,
) -> Result<Reservation, StoreError> {
    db.reserve_shipment(
        OrderId(id),
        ShipmentRequest {
            lines: vec![ShipmentLine {
                line_id: line,
                quantity,
            }],
            capture,
            deduct_previous_costs: false,
        },
        Providers::any(),
        ShipmentDetails::default(),
        None,
        Timestamp(2),
    )
    .await
}

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
