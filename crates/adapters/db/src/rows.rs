//! Row types: how each table reads and writes, and how rows become the model.

use consign_domain::{
    Currency, LineId, Money, Order, OrderError, OrderId, OrderLine, OrderProgress,
    PaymentAuthorization, Shipment, ShipmentFlags, ShipmentId, ShipmentLine, ShipmentState,
    TaxRate,
};
use consign_ports::{Address, Customer, ShipmentDetails, ShipmentView, ShippingInfo, Timestamp};
use diesel::prelude::*;

use crate::error::DbError;
use crate::schema::*;

#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Insertable)]
#[diesel(table_name = orders)]
pub struct OrderRow {
    pub id: i64,
    pub currency: String,
    pub customer_id: i64,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub address: String,
    pub zipcode: String,
    pub city: String,
    pub country: String,
    pub shipping_fee: i64,
    pub payment_provider: Option<String>,
    pub payment_reference: Option<String>,
    pub authorized: i64,
    pub committed: i64,
    pub shipping_fee_committed: i32,
    pub next_shipment_number: i32,
    pub created_at: i64,
    pub updated_at: i64,
    pub refunded: i64,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = order_lines)]
pub struct LineRow {
    pub order_id: i64,
    pub line_id: i64,
    pub position: i32,
    pub sku: String,
    pub name: String,
    pub unit_price: i64,
    pub tax_rate: i32,
    pub quantity: i32,
    pub allocated: i32,
    pub in_capture: i32,
    pub returned: i32,
}

#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Insertable)]
#[diesel(table_name = shipments)]
pub struct ShipmentRow {
    pub order_id: i64,
    pub number: i32,
    pub state: String,
    pub gtg: i32,
    pub shipped: i32,
    pub carrier: String,
    pub service: String,
    pub packages: i32,
    pub tracking: String,
    pub return_slip_tracking: String,
    pub send_email: Option<i32>,
    pub capture_amount: Option<i64>,
    pub carries_shipping_fee: i32,
    pub capture_reference: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub shipped_at: Option<i64>,
    pub needs_review: i32,
    pub request_key: Option<String>,
    pub internal_comment: String,
    pub refunded: i64,
}

/// A [`ShipmentRow`]'s columns, in its fields' order: a statement that reads shipments by
/// position names them with this (a test checks the two agree). With a table alias,
/// `shipment_row_columns!("s.")`.
macro_rules! shipment_row_columns {
    () => {
        $crate::rows::shipment_row_columns!("")
    };
    ($alias:literal) => {
        $crate::rows::columns!($alias; order_id, number, state, gtg, shipped, carrier, service,
            packages, tracking, return_slip_tracking, send_email, capture_amount,
            carries_shipping_fee, capture_reference, created_at, updated_at, shipped_at,
            needs_review, request_key, internal_comment, refunded)
    };
}

/// `alias` before each name, the names separated by `, `.
macro_rules! columns {
    ($alias:literal; $first:ident $(, $name:ident)*) => {
        concat!($alias, stringify!($first) $(, ", ", $alias, stringify!($name))*)
    };
}
pub(crate) use columns;
pub(crate) use shipment_row_columns;

/// The SQL types of [`shipment_row_columns!`], in order: what such a statement answers.
pub(crate) type ShipmentRowSql =
    diesel::dsl::SqlTypeOf<<ShipmentRow as Selectable<diesel::pg::Pg>>::SelectExpression>;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = shipment_lines)]
pub struct ShipmentLineRow {
    pub order_id: i64,
    pub number: i32,
    pub line_id: i64,
    pub quantity: i32,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = capture_attempts)]
pub struct AttemptRow {
    pub order_id: i64,
    pub number: i32,
    pub attempt: i32,
    pub idempotency_key: String,
    pub amount: i64,
    pub final_capture: i32,
    pub state: String,
    pub provider_reference: Option<String>,
    pub decline_code: Option<String>,
    pub decline_message: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub passes: i32,
    pub last_error: Option<String>,
    pub void_on_decline: i32,
    pub on_capture: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = api_keys)]
pub struct ApiKeyRow {
    pub id: i64,
    pub label: String,
    pub prefix: String,
    pub key_hash: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

/// `values` sorted, each once: the ids a batch read asks for.
pub(crate) fn distinct<T: Ord>(values: impl Iterator<Item = T>) -> Vec<T> {
    let mut values: Vec<T> = values.collect();
    values.sort_unstable();
    values.dedup();
    values
}

fn count(value: i32, what: &str) -> Result<u32, DbError> {
    u32::try_from(value).map_err(|_| DbError::Corrupt(format!("negative {what}: {value}")))
}

impl OrderRow {
    pub fn currency(&self) -> Result<Currency, DbError> {
        self.currency
            .parse()
            .map_err(|_| DbError::Corrupt(format!("currency {:?}", self.currency)))
    }

    pub fn payment(&self) -> Result<Option<PaymentAuthorization>, DbError> {
        let currency = self.currency()?;
        Ok(match (&self.payment_provider, &self.payment_reference) {
            (Some(provider), Some(reference)) => Some(PaymentAuthorization {
                provider: provider.clone(),
                reference: reference.clone(),
                amount: Money::from_minor(self.authorized, currency),
            }),
            _ => None,
        })
    }

    pub fn customer(&self) -> Customer {
        Customer {
            email: self.email.clone(),
            first_name: self.first_name.clone(),
            last_name: self.last_name.clone(),
            address: Address {
                address: self.address.clone(),
                zipcode: self.zipcode.clone(),
                city: self.city.clone(),
                country: self.country.clone(),
            },
        }
    }

    /// The domain order, with its lines in import order. A row the domain refuses (counters
    /// no sequence of shipments can produce) is reported as corrupt, never used.
    pub fn to_order(&self, lines: &[LineRow]) -> Result<Order, DbError> {
        let currency = self.currency()?;
        let lines = lines
            .iter()
            .map(|l| {
                Ok(OrderLine::new(
                    LineId(l.line_id),
                    l.sku.clone(),
                    l.name.clone(),
                    Money::from_minor(l.unit_price, currency),
                    TaxRate(count(l.tax_rate, "tax rate")?),
                    count(l.quantity, "quantity")?,
                )
                .with_progress(
                    count(l.allocated, "allocated")?,
                    count(l.in_capture, "in_capture")?,
                ))
            })
            .collect::<Result<Vec<_>, DbError>>()?;
        let corrupt = |e: OrderError| DbError::Corrupt(format!("order {}: {e}", self.id));
        let next_shipment_number = count(self.next_shipment_number, "shipment number")?;
        Order::new(
            OrderId(self.id),
            currency,
            lines,
            Money::from_minor(self.shipping_fee, currency),
            self.payment()?,
        )
        .and_then(|order| {
            order.with_progress(OrderProgress {
                committed: Money::from_minor(self.committed, currency),
                shipping_fee_committed: self.shipping_fee_committed != 0,
                next_shipment_number,
            })
        })
        .map_err(corrupt)
    }
}

impl ShipmentRow {
    pub fn id(&self) -> Result<ShipmentId, DbError> {
        Ok(ShipmentId {
            order: OrderId(self.order_id),
            number: count(self.number, "shipment number")?,
        })
    }

    /// The domain shipment, for the domain to decide a change of it.
    pub fn to_shipment(
        &self,
        currency: Currency,
        lines: &[ShipmentLineRow],
    ) -> Result<Shipment, DbError> {
        let id = self.id()?;
        Shipment::new(
            id,
            self.state()?,
            shipment_lines(lines)?,
            self.capture_amount.map(|m| Money::from_minor(m, currency)),
            self.carries_shipping_fee != 0,
            ShipmentFlags {
                good_to_go: self.gtg != 0,
                shipped: self.shipped != 0,
                needs_review: self.needs_review != 0,
            },
        )
        .map_err(|e| DbError::Corrupt(format!("shipment {id}: {e}")))
    }

    /// Its state, as the domain names it.
    pub fn state(&self) -> Result<ShipmentState, DbError> {
        ShipmentState::from_name(&self.state)
            .ok_or_else(|| DbError::Corrupt(format!("shipment state {:?}", self.state)))
    }

    pub fn into_view(
        self,
        currency: Currency,
        lines: &[ShipmentLineRow],
    ) -> Result<ShipmentView, DbError> {
        let state = self.state()?;
        let lines = shipment_lines(lines)?;
        Ok(ShipmentView {
            id: self.id()?,
            state,
            lines,
            details: ShipmentDetails {
                gtg: self.gtg != 0,
                shipped: self.shipped != 0,
                shipping: ShippingInfo {
                    carrier: self.carrier,
                    service: self.service,
                    packages: count(self.packages, "packages")?,
                    tracking: self.tracking,
                    return_slip_tracking: self.return_slip_tracking,
                },
                send_email: self.send_email.map(|v| v != 0),
            },
            capture_amount: self.capture_amount.map(|m| Money::from_minor(m, currency)),
            carries_shipping_fee: self.carries_shipping_fee != 0,
            capture_reference: self.capture_reference,
            created_at: Timestamp(self.created_at),
            shipped_at: self.shipped_at.map(Timestamp),
            needs_review: self.needs_review != 0,
            refunded: Money::from_minor(self.refunded, currency),
        })
    }
}

/// Shipment line rows as the model's lines.
pub fn shipment_lines(lines: &[ShipmentLineRow]) -> Result<Vec<ShipmentLine>, DbError> {
    lines
        .iter()
        .map(|l| {
            Ok(ShipmentLine {
                line_id: LineId(l.line_id),
                quantity: count(l.quantity, "shipment quantity")?,
            })
        })
        .collect()
}

/// 0/1 for the INTEGER columns that hold flags.
pub fn flag(value: bool) -> i32 {
    i32::from(value)
}

/// A count from the model as an INTEGER column.
pub fn int(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

/// What settling an open capture attempt answers of it (`shipments::SETTLE_ATTEMPT`); read by
/// name there, by position (these two columns first) on PostgreSQL.
#[derive(Queryable, QueryableByName)]
pub struct SettledAttempt {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub void_on_decline: i32,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub on_capture: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_columns_read_by_position_are_the_shipment_rows_fields_in_order() {
        let query = shipments::table.select(ShipmentRow::as_select());
        let sql = diesel::debug_query::<diesel::pg::Pg, _>(&query).to_string();
        let selected: Vec<&str> = sql
            .trim_start_matches("SELECT ")
            .split(" FROM ")
            .next()
            .unwrap_or("")
            .split(", ")
            .map(|column| column.rsplit('.').next().unwrap_or("").trim_matches('"'))
            .collect();
        let named: Vec<&str> = shipment_row_columns!().split(',').map(str::trim).collect();
        assert_eq!(named, selected, "{sql}");
        let aliased: Vec<String> = named.iter().map(|name| format!("s.{name}")).collect();
        assert_eq!(shipment_row_columns!("s."), aliased.join(", "));
    }
}
