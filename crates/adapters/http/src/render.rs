//! How orders and shipments are written in answers: Centra's names and types (string ids,
//! 1/0 flags, amounts as exact JSON numbers).

use consign_domain::{LineId, Money, ShipmentId, ShipmentState};
use consign_ports::{OrderView, ShipmentView};
use serde_json::{json, Map, Number, Value};

use crate::dates;

/// An amount as a JSON number written from the exact decimal (`249.50`), never through a float.
pub fn amount(money: Money) -> Value {
    money
        .to_string()
        .parse::<Number>()
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

/// A flag as Centra writes it.
pub fn flag(value: bool) -> Value {
    Value::from(u8::from(value))
}

/// Absolute URLs of a shipment's documents.
#[derive(Debug, Clone)]
pub struct DocumentLinks {
    /// `CONSIGN_PUBLIC_URL` followed by the base path.
    pub prefix: String,
}

impl DocumentLinks {
    /// The URL of one document kind (`delivery-note`, `proforma`, `invoice`).
    pub fn url(&self, shipment: ShipmentId, kind: &str) -> String {
        format!("{}/documents/{shipment}/{kind}.pdf", self.prefix)
    }
}

/// The capture state as the API names it.
pub fn capture_state(shipment: &ShipmentView) -> &'static str {
    if shipment.needs_review {
        return "needsReview";
    }
    match shipment.state {
        ShipmentState::Uncaptured => "uncaptured",
        ShipmentState::CapturePending => "pending",
        ShipmentState::Captured => "captured",
        ShipmentState::Voided => "voided",
        ShipmentState::Deleted => "deleted",
    }
}

fn units(shipments: &[ShipmentView], line: LineId, keep: impl Fn(&ShipmentView) -> bool) -> u32 {
    shipments
        .iter()
        .filter(|s| keep(s))
        .flat_map(|s| &s.lines)
        .filter(|l| l.line_id == line)
        .map(|l| l.quantity)
        .sum()
}

/// One order as `GET orders` lists it.
pub fn order(view: &OrderView) -> Value {
    let order = &view.order;
    let customer = &view.customer;
    let captured = |s: &ShipmentView| s.state == ShipmentState::Captured;
    let captured_value = view
        .shipments
        .iter()
        .filter(|s| captured(s))
        .filter_map(|s| s.capture_amount)
        .try_fold(Money::zero(order.currency), |sum, m| sum.plus(m))
        .unwrap_or(Money::zero(order.currency));
    let all_shipped = order.lines.iter().all(|l| {
        units(&view.shipments, l.line_id, |s| {
            captured(s) && s.details.shipped
        }) == l.quantity
    });
    let status = if order.lines.iter().all(|l| l.allocated == 0) {
        "pending"
    } else if all_shipped {
        "shipped"
    } else {
        "processing"
    };
    let products: Vec<Value> = order
        .lines
        .iter()
        .map(|l| {
            json!({
                "lineId": l.line_id.to_string(),
                "sku": l.sku,
                "name": l.name,
                "qty": l.quantity,
                "price": amount(l.unit_price),
                "taxPercent": l.tax_rate.to_string().parse::<Number>().map(Value::Number).unwrap_or(Value::Null),
                "qtyAllocated": l.allocated,
                "qtyShippable": l.shippable(),
                "qtyShipped": units(&view.shipments, l.line_id, |s| s.details.shipped),
                "qtyCaptured": units(&view.shipments, l.line_id, captured),
            })
        })
        .collect();
    let shipments: Vec<Value> = view.shipments.iter().map(order_shipment).collect();
    let mut out = Map::new();
    let mut put = |k: &str, v: Value| {
        out.insert(k.to_owned(), v);
    };
    put("orderId", order.id.to_string().into());
    put("orderStatus", status.into());
    put("orderDate", dates::format(view.created_at).into());
    put("orderCurrency", order.currency.code().into());
    put("customerId", view.customer_id.to_string().into());
    put(
        "deliveryName",
        format!("{} {}", customer.first_name, customer.last_name)
            .trim()
            .into(),
    );
    put("deliveryEmail", customer.email.clone().into());
    put("deliveryAddress", customer.address.address.clone().into());
    put("deliveryZipcode", customer.address.zipcode.clone().into());
    put("deliveryCity", customer.address.city.clone().into());
    put("deliveryCountry", customer.address.country.clone().into());
    put("shippingValue", amount(order.shipping_fee));
    put(
        "grandTotalValue",
        order.total().map(amount).unwrap_or(Value::Null),
    );
    put(
        "paymentPlugin",
        order
            .payment
            .as_ref()
            .map_or("", |p| p.provider.as_str())
            .into(),
    );
    put(
        "paymentReference",
        order
            .payment
            .as_ref()
            .map_or("", |p| p.reference.as_str())
            .into(),
    );
    put(
        "authorizedValue",
        amount(
            order
                .payment
                .as_ref()
                .map_or(Money::zero(order.currency), |p| p.amount),
        ),
    );
    put("capturedValue", amount(captured_value));
    put("products", Value::Array(products));
    put("shipments", Value::Array(shipments));
    Value::Object(out)
}

/// A shipment inside an order of `GET orders`.
fn order_shipment(s: &ShipmentView) -> Value {
    let shipping = &s.details.shipping;
    json!({
        "shipmentId": s.id.to_string(),
        "shippedDate": dates::format_opt(s.shipped_at),
        "carrier": shipping.carrier,
        "service": shipping.service,
        "trackingId": shipping.tracking,
        "trackingUrl": "",
        "returnSlipTracking": shipping.return_slip_tracking,
        "captureState": capture_state(s),
        "captureValue": s.capture_amount.map(amount).unwrap_or_else(|| Value::from(0)),
        "gtg": flag(s.details.gtg),
        "shipped": flag(s.details.shipped),
        "paid": flag(s.state == ShipmentState::Captured),
        "products": s.lines.iter().map(|l| json!({"lineId": l.line_id.to_string(), "qty": l.quantity})).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_exact_json_numbers_with_the_currencys_digits() {
        let sek = "SEK".parse().unwrap();
        let jpy = "JPY".parse().unwrap();
        assert_eq!(amount(Money::from_minor(24_950, sek)).to_string(), "249.50");
        assert_eq!(amount(Money::from_minor(1_500, jpy)).to_string(), "1500");
        assert_eq!(
            amount(Money::from_minor(9_007_199_254_740_993, sek)).to_string(),
            "90071992547409.93"
        );
    }
}
