//! The request of every call as a type: bodies and query strings, built from the lenient values
//! in `lenient.rs`, with unknown fields refused. The parser and the OpenAPI document are both
//! derived from these types.

use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::edge::lenient::{
    Amount, Comment, Count, CurrencyCode, EditProducts, Flag, Id, Percent, Quantity, ShipProducts,
    ShipmentRef, Text,
};

/// What every call that writes may carry besides its fields: answers in XML with `xml`.
pub trait Request: serde::de::DeserializeOwned {
    /// The fields an error answer echoes as the request sent them (`order`, `shipment`).
    const ECHO: &'static [&'static str];
}

/// `POST <base>/shipments`: every field Centra documents, plus `deductPreviousCosts` and
/// `createAlways`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(
    deny_unknown_fields,
    rename_all = "camelCase",
    expecting = "a JSON object"
)]
pub struct CreateShipment {
    /// The order to ship from.
    pub order: Id,
    /// lineId -> quantity.
    pub products: ShipProducts,
    /// Good to go (default false).
    pub gtg: Option<Flag>,
    /// Capture the shipment's amount now (default true).
    pub capture: Option<Flag>,
    /// Sent already (default false); carrier details are kept only then.
    pub shipped: Option<Flag>,
    /// Carrier.
    pub carrier: Option<Text>,
    /// Service level.
    pub service: Option<Text>,
    /// Number of packages.
    pub packages: Option<Count>,
    /// Tracking number.
    pub tracking: Option<Text>,
    /// Return slip tracking number.
    pub return_slip_tracking: Option<Text>,
    /// Send the shipping confirmation (default: the store setting).
    pub send_email: Option<Flag>,
    /// Leave the shipping fee out of this capture.
    pub deduct_previous_costs: Option<Flag>,
    /// Accepted for Centra's clients; Consign never merges shipments, so it changes nothing.
    #[allow(dead_code)]
    pub create_always: Option<Flag>,
    /// Answer in XML. Validated here; `Body` reads it before parsing, so that a refusal of
    /// another field is answered as asked.
    #[allow(dead_code)]
    pub xml: Option<Flag>,
}

impl Request for CreateShipment {
    const ECHO: &'static [&'static str] = &["order"];
}

/// `PUT <base>/shipment`: complete a shipment.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(
    deny_unknown_fields,
    rename_all = "camelCase",
    expecting = "a JSON object"
)]
pub struct CompleteShipment {
    /// The shipment.
    pub shipment: ShipmentRef,
    /// Its order, when given, must be the shipment's.
    pub order: Option<Id>,
    /// Capture it if it is not captured (default true).
    pub capture: Option<Flag>,
    /// Good to go (default true).
    pub gtg: Option<Flag>,
    /// Shipped (default true).
    pub shipped: Option<Flag>,
    /// Carrier.
    pub carrier: Option<Text>,
    /// Service level.
    pub service: Option<Text>,
    /// Number of packages.
    pub packages: Option<Count>,
    /// Tracking number.
    pub tracking: Option<Text>,
    /// Tracking number, Centra's other spelling (give one of the two).
    pub tracking_number: Option<Text>,
    /// Return slip tracking number.
    pub return_slip_tracking: Option<Text>,
    /// Send the shipping confirmation.
    pub send_email: Option<Flag>,
    /// A note for the back office.
    pub internal_comment: Option<Comment>,
    /// Answer in XML. Validated here; `Body` reads it before parsing, so that a refusal of
    /// another field is answered as asked.
    #[allow(dead_code)]
    pub xml: Option<Flag>,
}

impl Request for CompleteShipment {
    const ECHO: &'static [&'static str] = &["order", "shipment"];
}

/// `PUT <base>/capture`: capture an uncaptured shipment.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(
    deny_unknown_fields,
    rename_all = "camelCase",
    expecting = "a JSON object"
)]
pub struct CaptureShipment {
    /// The shipment.
    pub shipment: ShipmentRef,
    /// Its order, when given, must be the shipment's.
    pub order: Option<Id>,
    /// Answer in XML. Validated here; `Body` reads it before parsing, so that a refusal of
    /// another field is answered as asked.
    #[allow(dead_code)]
    pub xml: Option<Flag>,
}

impl Request for CaptureShipment {
    const ECHO: &'static [&'static str] = &["order", "shipment"];
}

/// `PUT <base>/shipments/<shipment>`: new line quantities and/or good to go.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(
    deny_unknown_fields,
    rename_all = "camelCase",
    expecting = "a JSON object"
)]
pub struct UpdateShipment {
    /// Its order, when given, must be the shipment's.
    pub order: Option<Id>,
    /// lineId -> new quantity (0 removes the line); lines not named stay.
    pub products: Option<EditProducts>,
    /// Mark it good to go.
    pub gtg: Option<Flag>,
    /// Answer in XML. Validated here; `Body` reads it before parsing, so that a refusal of
    /// another field is answered as asked.
    #[allow(dead_code)]
    pub xml: Option<Flag>,
}

impl Request for UpdateShipment {
    const ECHO: &'static [&'static str] = &["order"];
}

/// `POST <base>/order`: an order with its payment authorisation.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(
    deny_unknown_fields,
    rename_all = "camelCase",
    expecting = "a JSON object"
)]
pub struct ImportOrder {
    /// The order id to use (one is assigned when absent).
    pub order: Option<Id>,
    /// Currency of every amount.
    pub currency: CurrencyCode,
    /// The buyer's email.
    pub email: Text,
    /// First name.
    pub first_name: Option<Text>,
    /// Last name.
    pub last_name: Option<Text>,
    /// Delivery address.
    pub address: Option<ImportAddress>,
    /// The lines, 1 to 1000.
    #[schema(min_items = 1, max_items = 1000)]
    pub products: Vec<ImportLine>,
    /// Shipping fee (default 0).
    pub shipping_value: Option<Amount>,
    /// The authorisation shipments capture against.
    pub payment: Option<ImportPayment>,
    /// Answer in XML. Validated here; `Body` reads it before parsing, so that a refusal of
    /// another field is answered as asked.
    #[allow(dead_code)]
    pub xml: Option<Flag>,
}

impl Request for ImportOrder {
    const ECHO: &'static [&'static str] = &["order"];
}

/// A delivery address.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, expecting = "an object")]
pub struct ImportAddress {
    /// Street and number.
    pub address: Option<Text>,
    /// Postal code.
    pub zipcode: Option<Text>,
    /// City.
    pub city: Option<Text>,
    /// ISO 3166 country code.
    pub country: Option<Text>,
}

/// One line of an imported order.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, expecting = "an object")]
pub struct ImportLine {
    /// Stock keeping unit.
    pub sku: Text,
    /// Product name.
    pub name: Option<Text>,
    /// Units ordered.
    pub qty: Quantity,
    /// Unit price paid, tax included.
    pub price: Amount,
    /// Tax rate in percent.
    pub vat: Percent,
}

/// A payment authorisation.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, expecting = "an object")]
pub struct ImportPayment {
    /// The gateway that holds it.
    pub provider: Text,
    /// The provider's reference for it.
    pub reference: Text,
    /// How much it authorises.
    pub amount: Amount,
}

/// `POST <base>/return`: a return of a captured shipment, as Centra's page has it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(
    deny_unknown_fields,
    rename_all = "camelCase",
    expecting = "a JSON object"
)]
pub struct CreateReturn {
    /// The captured shipment.
    pub shipment: ShipmentRef,
    /// lineId -> quantity (absent: everything still returnable on the shipment).
    pub products: Option<ShipProducts>,
    /// Items go back to stock (default: `CONSIGN_RETURN_TO_STOCK`).
    pub return_stock: Option<Flag>,
    /// Handling refunded.
    pub handling_cost: Option<Amount>,
    /// Handling from the shipment (Consign's shipments carry none: 0).
    pub handling_cost_from_shipment: Option<Flag>,
    /// Shipping refunded.
    pub shipping_cost: Option<Amount>,
    /// The shipping fee the shipment's capture carried (once per shipment).
    pub shipping_cost_from_shipment: Option<Flag>,
    /// What returning costs, deducted from the refund.
    pub return_cost: Option<Amount>,
    /// Vouchers deducted from the refund.
    pub voucher_value: Option<Amount>,
    /// Vouchers from the shipment (Consign's shipments carry none: 0).
    pub voucher_value_from_shipment: Option<Flag>,
    /// A note.
    pub comment: Option<Comment>,
    /// Centra's `YYYY-MM-DD` or `YYYY-MM-DD HH:MM:SS`: checked (a request that cannot be
    /// right is refused whether or not the field is used), then left unused: a return is dated
    /// when Consign records it.
    #[allow(dead_code)]
    pub created_at: Option<crate::edge::query_values::Date>,
    /// Refund now, and send the refund confirmation.
    pub refund: Option<ReturnRefund>,
    /// Answer in XML. Validated here; `Body` reads it before parsing, so that a refusal of
    /// another field is answered as asked.
    #[allow(dead_code)]
    pub xml: Option<Flag>,
}

impl Request for CreateReturn {
    const ECHO: &'static [&'static str] = &["shipment"];
}

/// Create return's `refund`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase", expecting = "an object")]
pub struct ReturnRefund {
    /// Refund the return's amount through the order's payment provider.
    pub refund_payment: Option<Flag>,
    /// Send the refund confirmation (default false).
    pub send_email: Option<Flag>,
}

/// `PUT <base>/returns/<returnId>`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(
    deny_unknown_fields,
    rename_all = "camelCase",
    expecting = "a JSON object"
)]
pub struct UpdateReturn {
    /// Completed (`true`) or pending (`false`); a refunded return stays completed.
    pub completed: Option<Flag>,
    /// Refund what the return still owes (nothing twice).
    pub refund_payment: Option<Flag>,
    /// Send the refund confirmation.
    pub send_email: Option<Flag>,
    /// Answer in XML. Validated here; `Body` reads it before parsing, so that a refusal of
    /// another field is answered as asked.
    #[allow(dead_code)]
    pub xml: Option<Flag>,
}

impl Request for UpdateReturn {
    const ECHO: &'static [&'static str] = &[];
}

/// `GET <base>/returns`, newest first.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, expecting = "query parameters")]
#[into_params(parameter_in = Query)]
pub struct ReturnsQuery {
    /// At most this many (1 to 100, default 100).
    pub limit: Option<Count>,
    /// Which page of `limit` returns, from 1.
    pub page: Option<Count>,
    /// One return.
    #[serde(rename = "return")]
    pub return_id: Option<Id>,
    /// One shipment's returns (`"<order>-<n>"`).
    pub shipment: Option<ShipmentRef>,
    /// One order's returns.
    pub order: Option<Id>,
    /// One customer's returns.
    pub customer_id: Option<Id>,
    /// Created at or after (`YYYY-MM-DD` or `YYYY-MM-DD HH:MM:SS`, UTC).
    pub newer_than: Option<crate::edge::query_values::Date>,
    /// Created before.
    pub older_than: Option<crate::edge::query_values::Date>,
    /// Accepted; Consign has no selections.
    #[allow(dead_code)]
    pub selection: Option<Text>,
    /// Answer in XML.
    pub xml: Option<Flag>,
}

/// `GET <base>/orders`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, expecting = "query parameters")]
#[into_params(parameter_in = Query)]
pub struct OrdersQuery {
    /// At most this many (1 to 1000, default 20).
    pub limit: Option<Count>,
    /// Skip this many.
    pub offset: Option<Count>,
    /// One order.
    pub order: Option<Id>,
    /// One customer's orders.
    pub customer_id: Option<Id>,
    /// Imported at or after (`YYYY-MM-DD` or `YYYY-MM-DD HH:MM:SS`, UTC).
    pub newer_than: Option<crate::edge::query_values::Date>,
    /// Imported before.
    pub older_than: Option<crate::edge::query_values::Date>,
    /// Answer in XML.
    pub xml: Option<Flag>,
}

/// `GET <base>/shipments`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, expecting = "query parameters")]
#[into_params(parameter_in = Query)]
pub struct ShipmentsQuery {
    /// Which shipments: good to go and not shipped (default), in progress, or completed.
    pub status: Option<crate::edge::query_values::Status>,
    /// At most this many (1 to 100, default 100).
    pub limit: Option<Count>,
    /// Skip this many.
    pub offset: Option<Count>,
    /// One order's shipments.
    pub order: Option<Id>,
    /// One customer's shipments.
    pub customer_id: Option<Id>,
    /// Created at or after.
    pub newer_than: Option<crate::edge::query_values::Date>,
    /// Created before.
    pub older_than: Option<crate::edge::query_values::Date>,
    /// Answer in XML.
    pub xml: Option<Flag>,
}

/// `GET <base>/shipments/<shipment>`: Centra's filters are accepted; a given order must match.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, expecting = "query parameters")]
#[into_params(parameter_in = Query)]
pub struct ShipmentQuery {
    /// Its order, when given, must be the shipment's.
    pub order: Option<Id>,
    /// Accepted, not filtered on (any value, as Centra).
    #[allow(dead_code)]
    pub status: Option<Text>,
    /// Accepted (and validated), not filtered on.
    #[allow(dead_code)]
    pub newer_than: Option<crate::edge::query_values::Date>,
    /// Accepted (and validated), not filtered on.
    #[allow(dead_code)]
    pub older_than: Option<crate::edge::query_values::Date>,
    /// Answer in XML.
    pub xml: Option<Flag>,
}

/// `DELETE <base>/shipments/<shipment>`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, expecting = "query parameters")]
#[into_params(parameter_in = Query)]
pub struct DeleteQuery {
    /// Its order, when given, must be the shipment's.
    pub order: Option<Id>,
    /// Answer in XML.
    pub xml: Option<Flag>,
}

/// `GET <base>/documents/<shipment>/<file>`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, expecting = "query parameters")]
#[into_params(parameter_in = Query)]
pub struct DocumentQuery {
    /// The link's signature: opens the document without the API key.
    #[allow(dead_code)]
    pub token: Option<Text>,
}
