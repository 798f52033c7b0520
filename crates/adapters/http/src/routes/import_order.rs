//! `POST <base>/order`: import an order with its payment authorisation (Consign's small form of
//! Centra's Create order).

use actix_web::{web, HttpRequest, HttpResponse};
use consign_domain::{Currency, Money, OrderId, PaymentAuthorization};
use consign_ports::{Address, Customer, LineImport, OrderImport};
use serde_json::{json, Map, Value};

use crate::answer::Answer;
use crate::error::ApiError;
use crate::input::{Fields, MAX_TEXT};
use crate::routes::create_shipment::MAX_LINES;
use crate::routes::{answer_with_order, json_body};
use crate::ApiState;

pub(crate) const FIELDS: &[&str] = &[
    "order",
    "currency",
    "email",
    "firstName",
    "lastName",
    "address",
    "products",
    "shippingValue",
    "payment",
    "xml",
];
pub(crate) const ADDRESS_FIELDS: &[&str] = &["address", "zipcode", "city", "country"];
pub(crate) const LINE_FIELDS: &[&str] = &["sku", "name", "qty", "price", "vat"];
pub(crate) const PAYMENT_FIELDS: &[&str] = &["provider", "reference", "amount"];

/// The handler.
pub async fn import_order(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<ApiState>,
) -> HttpResponse {
    let body = match json_body(&request, payload, &state).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let result = handle(&state, &body.map).await;
    answer_with_order(result, &body)
}

async fn handle(state: &ApiState, map: &Map<String, Value>) -> Result<Answer, ApiError> {
    let import = parse(map)?;
    let imported = state.consign.import_order(import).await?;
    let products: Vec<Value> = imported
        .order
        .lines()
        .iter()
        .map(|l| json!({"lineId": l.line_id().to_string(), "sku": l.sku(), "qty": l.quantity()}))
        .collect();
    Ok(Answer::ok([
        ("order", Value::from(imported.order.id().0)),
        ("customerId", imported.customer_id.to_string().into()),
        ("products", Value::Array(products)),
    ]))
}

fn parse(map: &Map<String, Value>) -> Result<OrderImport, ApiError> {
    let fields = Fields::new(map, "", FIELDS)?;
    fields.flag("xml")?;
    let id = fields.id("order")?.map(OrderId);
    let code = fields.must("currency", fields.text("currency", 3)?)?;
    let currency: Currency = code.parse().map_err(|_| {
        ApiError::BadRequest("field currency: must be an ISO 4217 code such as \"SEK\"".into())
    })?;
    let text = |f: &Fields, name: &str| -> Result<String, ApiError> {
        Ok(f.text(name, MAX_TEXT)?.unwrap_or_default())
    };
    let email = fields.must("email", fields.text("email", MAX_TEXT)?)?;
    if !email.contains('@') {
        return Err(ApiError::BadRequest(
            "field email: must be an email address".into(),
        ));
    }
    let address = match fields.object("address")? {
        Some(object) => {
            let a = Fields::new(object, "address.", ADDRESS_FIELDS)?;
            Address {
                address: text(&a, "address")?,
                zipcode: text(&a, "zipcode")?,
                city: text(&a, "city")?,
                country: text(&a, "country")?,
            }
        }
        None => Address::default(),
    };
    let products = fields.must("products", fields.array("products")?)?;
    if products.is_empty() || products.len() > MAX_LINES {
        return Err(ApiError::BadRequest(format!(
            "field products: must hold 1 to {MAX_LINES} lines"
        )));
    }
    let lines = products
        .iter()
        .enumerate()
        .map(|(i, product)| {
            let path = format!("products[{i}].");
            let object = product.as_object().ok_or_else(|| {
                ApiError::BadRequest(format!("field products[{i}]: must be an object"))
            })?;
            let p = Fields::new(object, &path, LINE_FIELDS)?;
            Ok(LineImport {
                sku: p.must("sku", p.text("sku", MAX_TEXT)?)?,
                name: text(&p, "name")?,
                quantity: p.must("qty", p.quantity("qty")?)?,
                unit_price: p.must("price", p.money("price", currency)?)?,
                tax_rate: p.must("vat", p.tax_rate("vat")?)?,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let shipping_fee = fields
        .money("shippingValue", currency)?
        .unwrap_or(Money::zero(currency));
    let payment = match fields.object("payment")? {
        Some(object) => {
            let p = Fields::new(object, "payment.", PAYMENT_FIELDS)?;
            Some(PaymentAuthorization {
                provider: p.must("provider", p.text("provider", MAX_TEXT)?)?,
                reference: p.must("reference", p.text("reference", MAX_TEXT)?)?,
                amount: p.must("amount", p.money("amount", currency)?)?,
            })
        }
        None => None,
    };
    Ok(OrderImport {
        id,
        currency,
        customer: Customer {
            email,
            first_name: text(&fields, "firstName")?,
            last_name: text(&fields, "lastName")?,
            address,
        },
        lines,
        shipping_fee,
        payment,
    })
}
