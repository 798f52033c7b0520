//! `POST <base>/shipments`: create a shipment and, by default, capture its amount (the seed).

use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use consign_domain::{LineId, OrderId, ShipmentLine, ShipmentRequest, ShipmentState};
use consign_ports::{ShipmentDetails, ShippingInfo};
use serde_json::Value;

use crate::answer::Answer;
use crate::error::ApiError;
use crate::idempotency::RequestKey;
use crate::input::{line_id_key, Fields, MAX_TEXT};
use crate::routes::{answer_with_order, json_body};
use crate::ApiState;

/// Every field Centra documents for this call, plus `deductPreviousCosts` and `createAlways`.
pub(crate) const FIELDS: &[&str] = &[
    "order",
    "products",
    "gtg",
    "capture",
    "shipped",
    "carrier",
    "service",
    "packages",
    "tracking",
    "returnSlipTracking",
    "sendEmail",
    "deductPreviousCosts",
    "createAlways",
    "xml",
];

/// Most product lines one request may name.
pub const MAX_LINES: usize = 1000;

/// The handler.
pub async fn create_shipment(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<ApiState>,
) -> HttpResponse {
    let body = match json_body(&request, payload, &state).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let request_key = request
        .extensions()
        .get::<RequestKey>()
        .map(|k| k.0.clone());
    let result = handle(&state, &body.map, request_key).await;
    answer_with_order(result, &body)
}

async fn handle(
    state: &ApiState,
    map: &serde_json::Map<String, Value>,
    request_key: Option<String>,
) -> Result<Answer, ApiError> {
    let (order, request, details) = parse(map)?;
    let shipment = state
        .consign
        .create_shipment(order, request, details, request_key)
        .await?;
    let links = &state.settings.documents;
    let mut answer = Answer::ok([
        ("order", Value::from(order.0)),
        ("shipment", shipment.id.to_string().into()),
        (
            "deliveryNote",
            links.url(shipment.id, "delivery-note").into(),
        ),
        ("proforma", links.url(shipment.id, "proforma").into()),
    ]);
    if shipment.state == ShipmentState::Captured {
        answer
            .fields
            .insert("invoice".into(), links.url(shipment.id, "invoice").into());
    }
    Ok(answer)
}

/// Everything decidable from the request alone is checked here and answered 400.
fn parse(
    map: &serde_json::Map<String, Value>,
) -> Result<(OrderId, ShipmentRequest, ShipmentDetails), ApiError> {
    let fields = Fields::new(map, "", FIELDS)?;
    let order = fields.must("order", fields.id("order")?)?;
    let products = fields.must("products", fields.object("products")?)?;
    let lines = product_lines(products)?;
    // Read every optional field, used or not, so a bad value is refused rather than ignored.
    let gtg = fields.flag("gtg")?.unwrap_or(false);
    let capture = fields.flag("capture")?.unwrap_or(true);
    let shipped = fields.flag("shipped")?.unwrap_or(false);
    let shipping = ShippingInfo {
        carrier: fields.text("carrier", MAX_TEXT)?.unwrap_or_default(),
        service: fields.text("service", MAX_TEXT)?.unwrap_or_default(),
        packages: fields.count("packages")?.unwrap_or(0),
        tracking: fields.text("tracking", MAX_TEXT)?.unwrap_or_default(),
        return_slip_tracking: fields
            .text("returnSlipTracking", MAX_TEXT)?
            .unwrap_or_default(),
    };
    let send_email = fields.flag("sendEmail")?;
    let deduct_previous_costs = fields.flag("deductPreviousCosts")?.unwrap_or(false);
    // Consign never merges shipments, so createAlways changes nothing; it is still validated.
    fields.flag("createAlways")?;
    fields.flag("xml")?;
    Ok((
        OrderId(order),
        ShipmentRequest {
            lines,
            capture,
            deduct_previous_costs,
        },
        ShipmentDetails {
            gtg,
            shipped,
            shipping,
            send_email,
        },
    ))
}

/// `{"<lineId>": quantity, ...}`: keys are digit strings, quantities 1 to 2^31-1.
fn product_lines(products: &serde_json::Map<String, Value>) -> Result<Vec<ShipmentLine>, ApiError> {
    if products.is_empty() {
        return Err(ApiError::BadRequest(
            "field products: must name at least one line".into(),
        ));
    }
    if products.len() > MAX_LINES {
        return Err(ApiError::BadRequest(format!(
            "field products: at most {MAX_LINES} lines per request"
        )));
    }
    let allowed: Vec<&str> = products.keys().map(String::as_str).collect();
    let quantities = Fields::new(products, "products.", &allowed)?;
    products
        .keys()
        .map(|key| {
            let line_id = line_id_key(key)?;
            let quantity = quantities.must(key, quantities.quantity(key)?)?;
            Ok(ShipmentLine {
                line_id: LineId(line_id),
                quantity,
            })
        })
        .collect()
}
