//! Plain records that cross the store port: what is imported, what is listed.

use consign_domain::{
    Currency, Money, Order, OrderId, PaymentAuthorization, ShipmentId, ShipmentLine, ShipmentState,
    TaxRate,
};

use crate::clock::Timestamp;

/// A postal address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Address {
    /// Street and number.
    pub address: String,
    /// Postal code.
    pub zipcode: String,
    /// City.
    pub city: String,
    /// ISO 3166 country code.
    pub country: String,
}

/// The buyer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Customer {
    /// Email; one customer id per distinct email.
    pub email: String,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Delivery address.
    pub address: Address,
}

/// One line of an order being imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineImport {
    /// Stock keeping unit.
    pub sku: String,
    /// Product name.
    pub name: String,
    /// Unit price paid, tax included.
    pub unit_price: Money,
    /// Tax rate.
    pub tax_rate: TaxRate,
    /// Units ordered.
    pub quantity: u32,
}

/// An order being imported; the store assigns the ids it lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderImport {
    /// The order id to use, or `None` to have one assigned.
    pub id: Option<OrderId>,
    /// Currency of every amount.
    pub currency: Currency,
    /// The buyer.
    pub customer: Customer,
    /// The lines.
    pub lines: Vec<LineImport>,
    /// Shipping fee.
    pub shipping_fee: Money,
    /// Authorisation to capture against.
    pub payment: Option<PaymentAuthorization>,
}

/// What the store assigned on import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedOrder {
    /// The order as stored, with its line ids.
    pub order: Order,
    /// The customer id.
    pub customer_id: i64,
}

/// Carrier details of a shipment that has been sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShippingInfo {
    /// Carrier.
    pub carrier: String,
    /// Service level.
    pub service: String,
    /// Number of packages.
    pub packages: u32,
    /// Tracking number.
    pub tracking: String,
    /// Return slip tracking number.
    pub return_slip_tracking: String,
}

/// The non-money parts of a new shipment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShipmentDetails {
    /// Good to go.
    pub gtg: bool,
    /// Sent; when true, `shipping` is recorded.
    pub shipped: bool,
    /// Carrier details, kept only when `shipped`.
    pub shipping: ShippingInfo,
    /// Whether to send the shipping confirmation (`None`: the store setting decides).
    pub send_email: Option<bool>,
}

/// A capture attempt written before the provider is called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureAttempt {
    /// The shipment it captures for.
    pub shipment: ShipmentId,
    /// The authorisation.
    pub authorization: PaymentAuthorization,
    /// The amount.
    pub amount: Money,
    /// The provider idempotency key: stable for this attempt.
    pub idempotency_key: String,
    /// Whether it was planned as the capture that completes the order (the store lowers it when
    /// a capture on the order is declined: [`FinalCaptureStanding`]).
    pub final_capture: bool,
    /// When the attempt was written.
    pub created_at: Timestamp,
    /// Whether a complete's changes wait for this capture, to be applied when it settles as
    /// captured. A hint for the store's settle (it picks its way of writing by it); the stored
    /// attempt stays what decides.
    pub changes_waiting: bool,
}

/// Where an attempt planned as its order's final capture stands when it is about to be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FinalCaptureStanding {
    /// Whether it is still stored as final. A capture declined on the order since it was
    /// planned took units out of capture, so it no longer completes the order, and it is sent
    /// as a capture that leaves the authorisation open (the store lowers it in the decline's
    /// own transaction, never the other way, so every replay sends the same).
    pub still_final: bool,
    /// How many other attempts on the order have no definite outcome yet.
    pub others_open: usize,
}

/// Where the captures on an attempt's order stand in Consign's records, to compare with what
/// the provider has captured on the authorisation (an attempt past the key window is looked up,
/// not sent again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaptureTally {
    /// The order's other attempts settled as captured, added up.
    pub settled: Money,
    /// How many other attempts on the order have no definite outcome yet.
    pub others_open: usize,
    /// Of those, the final captures written after this attempt. A final capture waits while
    /// another capture on its order is open (on a gateway whose final capture closes the
    /// authorisation), and this attempt has been open since before they were written: on such
    /// a gateway none of them has reached the provider, so none can explain its total.
    pub later_finals_open: usize,
}

/// A shipment as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShipmentView {
    /// Its id.
    pub id: ShipmentId,
    /// Money state.
    pub state: ShipmentState,
    /// Lines and quantities.
    pub lines: Vec<ShipmentLine>,
    /// Flags and carrier details.
    pub details: ShipmentDetails,
    /// The amount captured or being captured, once a capture started.
    pub capture_amount: Option<Money>,
    /// Whether its capture carries the shipping fee.
    pub carries_shipping_fee: bool,
    /// The provider's reference once captured.
    pub capture_reference: Option<String>,
    /// Created.
    pub created_at: Timestamp,
    /// Marked shipped.
    pub shipped_at: Option<Timestamp>,
    /// Its capture stayed unknown through many recovery passes: an operator should look.
    pub needs_review: bool,
    /// What its returns' refunds gave back.
    pub refunded: Money,
}

/// An order as listed, with its live shipments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderView {
    /// The order with its counters.
    pub order: Order,
    /// The customer id.
    pub customer_id: i64,
    /// The buyer.
    pub customer: Customer,
    /// Imported.
    pub created_at: Timestamp,
    /// Live shipments (not voided or deleted), oldest first.
    pub shipments: Vec<ShipmentView>,
    /// What its returns' refunds gave back.
    pub refunded: Money,
    /// Units returned per line (lines with none are left out).
    pub returned: Vec<(consign_domain::LineId, u32)>,
}

/// Which orders to list: Centra's `GET orders` filters, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderQuery {
    /// One order only.
    pub order: Option<OrderId>,
    /// One customer's orders.
    pub customer_id: Option<i64>,
    /// Imported at or after.
    pub newer_than: Option<Timestamp>,
    /// Imported before.
    pub older_than: Option<Timestamp>,
    /// At most this many.
    pub limit: u32,
    /// Skip this many.
    pub offset: u32,
    /// Only the orders listed after this one (its import time and id, the listing's order):
    /// where the part of a page read before ended.
    pub after: Option<(Timestamp, OrderId)>,
    /// At most this many live shipments in all: the orders stop before the one that would
    /// take them past it, the first order listed whatever its own (a part of a page; `None`
    /// for no such bound).
    pub shipments_at_most: Option<u32>,
}

impl Default for OrderQuery {
    fn default() -> Self {
        OrderQuery {
            order: None,
            customer_id: None,
            newer_than: None,
            older_than: None,
            limit: 20,
            offset: 0,
            after: None,
            shipments_at_most: None,
        }
    }
}

/// Changes complete-shipment applies. Flags only move forward: `false` leaves a flag as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShipmentChanges {
    /// Set good to go.
    pub gtg: bool,
    /// Set shipped (records the carrier details and the shipped date).
    pub shipped: bool,
    /// Carrier details to overwrite; `None` fields are kept.
    pub shipping: ShippingUpdate,
    /// Whether to send the shipping confirmation.
    pub send_email: Option<bool>,
    /// A note for the back office.
    pub internal_comment: Option<String>,
}

/// Carrier details to overwrite.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShippingUpdate {
    /// Carrier.
    pub carrier: Option<String>,
    /// Service level.
    pub service: Option<String>,
    /// Number of packages.
    pub packages: Option<u32>,
    /// Tracking number.
    pub tracking: Option<String>,
    /// Return slip tracking number.
    pub return_slip_tracking: Option<String>,
}

/// Centra's `GET shipments` status filter; every live shipment is in exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShipmentStatus {
    /// Good to go and not shipped (what a warehouse picks): the default.
    GoodToGo,
    /// Neither good to go nor shipped.
    InProgress,
    /// Shipped.
    Completed,
}

/// Which shipments to list, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShipmentQuery {
    /// Status filter.
    pub status: ShipmentStatus,
    /// One order's shipments.
    pub order: Option<OrderId>,
    /// One customer's shipments.
    pub customer_id: Option<i64>,
    /// Created at or after.
    pub newer_than: Option<Timestamp>,
    /// Created before.
    pub older_than: Option<Timestamp>,
    /// At most this many.
    pub limit: u32,
    /// Skip this many.
    pub offset: u32,
}

/// A shipment with its order (the order's `shipments` is left empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShipmentListing {
    /// The order, with its lines and counters; shared by the listings of its shipments read
    /// together (a page of an order's shipments holds the order once, however large it is).
    pub order: std::sync::Arc<OrderView>,
    /// The shipment.
    pub shipment: ShipmentView,
}
