//! How orders and shipments are written in answers: Centra's names and types (string ids,
//! 1/0 flags, amounts as exact JSON numbers).

use consign_domain::{LineId, Money, ShipmentId, ShipmentState};
use consign_ports::{OrderView, ReturnView, ShipmentListing, ShipmentView};
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

/// Absolute, signed URLs of a shipment's documents.
///
/// Each URL carries `token=<expiry>.<hmac>`: an HMAC-SHA256 of shipment, kind and expiry under a
/// secret shared by every instance, so a warehouse can open or print the link without the API
/// key, and a token works for no other shipment or kind and not after it expires.
#[derive(Clone)]
pub struct DocumentLinks {
    /// `CONSIGN_PUBLIC_URL` followed by the base path.
    pub prefix: String,
    /// The HMAC with its key already absorbed: every answer signs three links, and keying anew
    /// each time hashed the key's two blocks again.
    keyed: hmac::Hmac<sha2::Sha256>,
    ttl_secs: i64,
}

impl std::fmt::Debug for DocumentLinks {
    // The keyed state is derived from the secret: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DocumentLinks")
            .field("prefix", &self.prefix)
            .field("ttl_secs", &self.ttl_secs)
            .finish_non_exhaustive()
    }
}

impl DocumentLinks {
    /// Links under `prefix`, signed with `secret`, valid for `ttl_secs`.
    pub fn new(prefix: String, secret: &str, ttl_secs: i64) -> Self {
        use hmac::Mac;
        DocumentLinks {
            prefix,
            keyed: hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
                .expect("HMAC takes keys of any length"),
            ttl_secs,
        }
    }

    /// The MAC of `<shipment>:<kind>:<expiry>`.
    fn mac(&self, shipment: &str, kind: &str, expiry: i64) -> hmac::Hmac<sha2::Sha256> {
        self.mac_of(shipment, kind, &expiry.to_string())
    }

    /// [`Self::mac`] with the expiry already written in decimal.
    fn mac_of(&self, shipment: &str, kind: &str, expiry: &str) -> hmac::Hmac<sha2::Sha256> {
        use hmac::Mac;
        let mut mac = self.keyed.clone();
        mac.update(shipment.as_bytes());
        mac.update(b":");
        mac.update(kind.as_bytes());
        mac.update(b":");
        mac.update(expiry.as_bytes());
        mac
    }

    /// The signed URL of one document kind (`delivery-note`, `proforma`, `invoice`).
    pub fn url(&self, shipment: ShipmentId, kind: &str) -> String {
        use hmac::Mac;
        use std::fmt::Write;
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let expiry = now_secs() + self.ttl_secs;
        // One buffer, written once: the URL's shipment and expiry are also what the tag signs
        // (every answer signs up to three links; each used to cost four allocations).
        let mut url = String::with_capacity(self.prefix.len() + kind.len() + 128);
        url.push_str(&self.prefix);
        url.push_str("/documents/");
        let shipment_at = url.len();
        let _ = write!(url, "{shipment}");
        let shipment_end = url.len();
        url.push('/');
        url.push_str(kind);
        url.push_str(".pdf?token=");
        let expiry_at = url.len();
        let _ = write!(url, "{expiry}");
        let tag = self
            .mac_of(&url[shipment_at..shipment_end], kind, &url[expiry_at..])
            .finalize();
        url.push('.');
        for byte in tag.into_bytes() {
            url.push(char::from(HEX[usize::from(byte >> 4)]));
            url.push(char::from(HEX[usize::from(byte & 0xf)]));
        }
        url
    }

    /// The signed URL of a return's credit note (`credit-note-<return>` of its shipment).
    pub fn credit_note_url(&self, r: &ReturnView) -> String {
        self.url(r.shipment, &format!("credit-note-{}", r.id))
    }

    /// Whether `token` was issued for this shipment and kind and has not expired. The tag is
    /// compared in constant time.
    pub fn verify(&self, shipment: &str, kind: &str, token: &str) -> bool {
        use hmac::Mac;
        let Some((expiry, tag)) = token.split_once('.') else {
            return false;
        };
        let (Ok(expiry), Some(tag)) = (expiry.parse::<i64>(), decode_hex(tag)) else {
            return false;
        };
        expiry >= now_secs() && self.mac(shipment, kind, expiry).verify_slice(&tag).is_ok()
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
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
    let captured = |s: &ShipmentView| s.state == ShipmentState::Captured;
    let captured_value = view
        .shipments
        .iter()
        .filter(|s| captured(s))
        .filter_map(|s| s.capture_amount)
        .try_fold(Money::zero(order.currency()), |sum, m| sum.plus(m))
        .unwrap_or(Money::zero(order.currency()));
    let all_shipped = order.lines().iter().all(|l| {
        units(&view.shipments, l.line_id(), |s| {
            captured(s) && s.details.shipped
        }) == l.quantity()
    });
    let status = if order.lines().iter().all(|l| l.allocated() == 0) {
        "pending"
    } else if all_shipped {
        "shipped"
    } else {
        "processing"
    };
    let products: Vec<Value> = order
        .lines()
        .iter()
        .map(|l| {
            json!({
                "lineId": l.line_id().to_string(),
                "sku": l.sku(),
                "name": l.name(),
                "qty": l.quantity(),
                "price": amount(l.unit_price()),
                "taxPercent": l.tax_rate().to_string().parse::<Number>().map(Value::Number).unwrap_or(Value::Null),
                "qtyAllocated": l.allocated(),
                "qtyShippable": l.shippable(),
                "qtyShipped": units(&view.shipments, l.line_id(), |s| s.details.shipped),
                "qtyCaptured": units(&view.shipments, l.line_id(), captured),
                "qtyReturned": view.returned.iter().filter(|(id, _)| *id == l.line_id()).map(|(_, n)| *n).sum::<u32>(),
            })
        })
        .collect();
    let payment = order.payment();
    let mut out = Map::new();
    out.insert("orderId".into(), order.id().to_string().into());
    out.insert("orderStatus".into(), status.into());
    order_fields(&mut out, view);
    let fields = [
        ("shippingValue", amount(order.shipping_fee())),
        (
            "grandTotalValue",
            order.total().map(amount).unwrap_or(Value::Null),
        ),
        (
            "paymentPlugin",
            payment.map_or("", |p| p.provider.as_str()).into(),
        ),
        (
            "paymentReference",
            payment.map_or("", |p| p.reference.as_str()).into(),
        ),
        (
            "authorizedValue",
            amount(payment.map_or(Money::zero(order.currency()), |p| p.amount)),
        ),
        ("capturedValue", amount(captured_value)),
        ("refundedValue", amount(view.refunded)),
        ("products", Value::Array(products)),
        (
            "shipments",
            Value::Array(view.shipments.iter().map(order_shipment).collect()),
        ),
    ];
    for (k, v) in fields {
        out.insert(k.into(), v);
    }
    Value::Object(out)
}

/// The order and delivery fields orders and shipments share.
fn order_fields(out: &mut Map<String, Value>, view: &OrderView) {
    let customer = &view.customer;
    let name = format!("{} {}", customer.first_name, customer.last_name);
    let fields = [
        ("orderDate", dates::format(view.created_at)),
        ("orderCurrency", view.order.currency().code().to_owned()),
        ("customerId", view.customer_id.to_string()),
        ("deliveryName", name.trim().to_owned()),
        ("deliveryEmail", customer.email.clone()),
        ("deliveryAddress", customer.address.address.clone()),
        ("deliveryZipcode", customer.address.zipcode.clone()),
        ("deliveryCity", customer.address.city.clone()),
        ("deliveryCountry", customer.address.country.clone()),
    ];
    for (k, v) in fields {
        out.insert(k.into(), v.into());
    }
}

/// One shipment as `GET shipments` lists it (and update shipment answers it).
pub fn shipment(listing: &ShipmentListing, links: &DocumentLinks) -> Value {
    let (view, s) = (&listing.order, &listing.shipment);
    let order = &view.order;
    let captured = s.state == ShipmentState::Captured;
    // What it captures, or while uncaptured would capture if captured now.
    let (total, carries_fee) = match s.capture_amount {
        Some(amount) => (amount, s.carries_shipping_fee),
        None => order
            .preview_capture(&s.lines, false)
            .map(|plan| (plan.amount(), plan.carries_shipping_fee()))
            .unwrap_or((Money::zero(order.currency()), false)),
    };
    let shipping = &s.details.shipping;
    let products: Vec<Value> = s
        .lines
        .iter()
        .map(|l| {
            let line = order.line(l.line_id);
            json!({
                "lineId": l.line_id.to_string(),
                "sku": line.map_or("", |x| x.sku()),
                "variantSku": "",
                "sizeSku": "",
                "ean": "",
                "name": line.map_or("", |x| x.name()),
                "qty": l.quantity,
                "price": line.map_or(Value::Null, |x| amount(x.unit_price())),
            })
        })
        .collect();
    let invoices = if captured {
        vec![Value::from(links.url(s.id, "invoice"))]
    } else {
        Vec::new()
    };
    let fee = if carries_fee {
        order.shipping_fee()
    } else {
        Money::zero(order.currency())
    };
    let mut out = Map::new();
    out.insert("orderId".into(), order.id().to_string().into());
    out.insert("shipmentId".into(), s.id.to_string().into());
    order_fields(&mut out, view);
    let fields = [
        ("shippingList", "".into()),
        ("deliveryNote", links.url(s.id, "delivery-note").into()),
        ("proforma", links.url(s.id, "proforma").into()),
        ("invoices", Value::Array(invoices)),
        ("paid", flag(captured)),
        ("shouldCapture", flag(!captured)),
        ("gtg", flag(s.details.gtg)),
        ("shipped", flag(s.details.shipped)),
        ("shipmentDate", dates::format(s.created_at).into()),
        ("shippedDate", dates::format_opt(s.shipped_at).into()),
        ("carrier", shipping.carrier.clone().into()),
        // Centra's Get shipments pages name the carrier `defaultCarrier`: both are answered.
        ("defaultCarrier", shipping.carrier.clone().into()),
        ("deliveryService", shipping.service.clone().into()),
        ("packages", shipping.packages.into()),
        ("trackingNumber", shipping.tracking.clone().into()),
        // Consign keeps no carrier's tracking page (as in Get orders).
        ("trackingUrl", "".into()),
        (
            "returnSlipTracking",
            shipping.return_slip_tracking.clone().into(),
        ),
        ("shippingValue", amount(fee)),
        ("grandTotalValue", amount(total)),
        ("captureState", capture_state(s).into()),
        (
            "captureValue",
            s.capture_amount
                .map(amount)
                .unwrap_or_else(|| Value::from(0)),
        ),
        ("refundedValue", amount(s.refunded)),
        ("products", Value::Array(products)),
    ];
    for (k, v) in fields {
        out.insert(k.into(), v);
    }
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
        "refundedValue": amount(s.refunded),
        "gtg": flag(s.details.gtg),
        "shipped": flag(s.details.shipped),
        "paid": flag(s.state == ShipmentState::Captured),
        "products": s.lines.iter().map(|l| json!({"lineId": l.line_id.to_string(), "qty": l.quantity})).collect::<Vec<_>>(),
    })
}

/// One return as `GET returns` lists it (and update return answers it): Centra's fields, with
/// its empty values for what Consign cannot know, and Consign's refund figures.
pub fn return_object(r: &ReturnView, links: Option<&DocumentLinks>) -> Value {
    let currency = r.refund.currency().code().to_owned();
    let products: Vec<Value> = r
        .lines
        .iter()
        .map(|l| {
            json!({
                "returnLineId": l.id,
                "shipmentLineId": l.shipment_line_id,
                "orderLineId": l.line_id.0,
                "productId": 0,
                "variantId": 0,
                "productName": l.name,
                "productBrand": "",
                "variantName": "",
                "size": "",
                "sku": l.sku,
                "variantSku": "",
                "sizeSku": "",
                "ean": "",
                "upc": "",
                "quantity": l.quantity,
                "price": amount(l.unit_price),
            })
        })
        .collect();
    let mut out = Map::new();
    let fields = [
        ("returnId", Value::from(r.id.0)),
        ("completed", r.completed.into()),
        ("shipment", r.shipment.to_string().into()),
        ("shipmentId", r.shipment_row_id.into()),
        ("orderId", r.shipment.order.0.into()),
        ("selectionId", "".into()),
        ("customerId", r.customer_id.into()),
        ("date", dates::format(r.created_at).into()),
        ("marketId", 0.into()),
        ("pricelistId", 0.into()),
        ("returnCost", amount(r.return_cost)),
        ("shippingCost", amount(r.shipping)),
        ("handlingCost", amount(r.handling)),
        ("voucherValue", amount(r.voucher)),
        ("taxValue", amount(r.tax)),
        ("taxDeduction", 0.into()),
        ("currency", currency.clone().into()),
        ("baseCurrency", currency.into()),
        ("baseCurrencyRate", 1.into()),
        ("returnToStock", r.return_to_stock.into()),
        ("comment", r.comment.clone().into()),
        ("createdFrom", "Order API".into()),
        ("products", Value::Array(products)),
        ("refundState", r.refund_state.as_str().into()),
        ("refundValue", amount(r.refund)),
    ];
    for (k, v) in fields {
        out.insert(k.into(), v);
    }
    if let (Some(links), Some(_)) = (links, r.credit_note) {
        out.insert("creditNote".into(), links.credit_note_url(r).into());
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_tokens_are_the_hmac_of_shipment_kind_and_expiry() {
        // Links already sent (in mails, on printed notes) must keep verifying: the tag is the
        // HMAC-SHA256 of `<shipment>:<kind>:<expiry>` under the secret, in lowercase hex.
        use hmac::Mac;
        let links = DocumentLinks::new("http://x/api/order".into(), "secret", 60);
        let url = links.url("83651-1".parse().unwrap(), "invoice");
        let (path, token) = url.split_once("?token=").unwrap();
        assert_eq!(path, "http://x/api/order/documents/83651-1/invoice.pdf");
        let (expiry, tag) = token.split_once('.').unwrap();
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"secret").unwrap();
        mac.update(format!("83651-1:invoice:{expiry}").as_bytes());
        let expected: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(tag, expected);
    }

    #[test]
    fn document_tokens_bind_shipment_kind_and_expiry() {
        let links = DocumentLinks::new("http://x/api/order".into(), "secret", 60);
        let id: ShipmentId = "83651-1".parse().unwrap();
        let url = links.url(id, "invoice");
        let token = url.split("token=").nth(1).unwrap();
        assert!(links.verify("83651-1", "invoice", token));
        assert!(
            !links.verify("83651-2", "invoice", token),
            "another shipment"
        );
        assert!(!links.verify("83651-1", "proforma", token), "another kind");
        let other = DocumentLinks::new("http://x".into(), "other secret", 60);
        assert!(
            !other.verify("83651-1", "invoice", token),
            "forged with another secret"
        );
        let expired = DocumentLinks::new("http://x".into(), "secret", -1);
        let old = expired.url(id, "invoice");
        assert!(
            !links.verify("83651-1", "invoice", old.split("token=").nth(1).unwrap()),
            "expired"
        );
        let (expiry, tag) = token.split_once('.').unwrap();
        let later = format!("{}.{tag}", expiry.parse::<i64>().unwrap() + 1000);
        assert!(
            !links.verify("83651-1", "invoice", &later),
            "expiry cannot be extended"
        );
    }

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
