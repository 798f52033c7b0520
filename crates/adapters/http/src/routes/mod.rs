//! One module per call. Routes are thin: read the request, call one service function, render.

pub mod complete_shipment;
pub mod create_shipment;
pub mod documents;
pub mod fallback;
pub mod import_order;
pub mod list_orders;
pub mod ops;
pub mod shipments;

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{Map, Value};

use crate::answer::Answer;
use crate::error::ApiError;
use crate::input::{parse_object, read_body, wants_xml};
use crate::ApiState;

/// A JSON body read and parsed, with the answer format it asked for.
pub struct JsonBody {
    /// The top-level object.
    pub map: Map<String, Value>,
    /// Whether the answer should be XML.
    pub xml: bool,
}

/// Reads and parses the body; a body that cannot be parsed is answered in JSON.
pub async fn json_body(
    request: &HttpRequest,
    payload: web::Payload,
    state: &ApiState,
) -> Result<JsonBody, HttpResponse> {
    let bytes = read_body(request, payload, state.settings.max_body)
        .await
        .map_err(|e| e.into_answer(false, None).into_response())?;
    let map = parse_object(&bytes).map_err(|e| e.into_answer(false, None).into_response())?;
    let xml = wants_xml(&map);
    Ok(JsonBody { map, xml })
}

/// The answer to a request that names an `order`: on an error, `order` is echoed as a number
/// when it parsed and as sent when it did not.
pub fn answer_with_order(result: Result<Answer, ApiError>, body: &JsonBody) -> HttpResponse {
    match result {
        Ok(answer) => answer.xml(body.xml).into_response(),
        Err(error) => {
            let order = body.map.get("order").filter(|v| !v.is_null()).map(|v| {
                crate::input::integer_value(v)
                    .ok()
                    .filter(|n| *n >= 1 && *n <= i64::MAX as u64)
                    .map_or_else(|| v.clone(), Value::from)
            });
            error.into_answer(body.xml, order).into_response()
        }
    }
}

/// A shipment id (`"83651-1"`) from a field or a path segment, or a 400 naming it.
pub fn shipment_id(text: &str, field: &str) -> Result<consign_domain::ShipmentId, ApiError> {
    text.parse().map_err(|_| {
        ApiError::BadRequest(format!(
            "field {field}: must be a shipment id such as \"83651-1\""
        ))
    })
}

/// The answer of an error on a call about one shipment: Centra echoes `shipment` (as sent) and
/// `order` (when the request named it).
pub fn shipment_error(
    error: ApiError,
    xml: bool,
    order: Option<Value>,
    shipment: Option<Value>,
) -> HttpResponse {
    let mut answer = error.into_answer(xml, order);
    if let Some(shipment) = shipment {
        answer.fields.insert("shipment".into(), shipment);
    }
    answer.into_response()
}

/// Complete and capture answer `{"status":"ok","order":N,"shipment":"N-n"}`, plus `missing`
/// (`paid`, `gtg`, `shipped`) while the shipment is not yet complete.
pub fn completion_answer(shipment: &consign_ports::ShipmentView) -> Answer {
    let mut answer = Answer::ok([
        ("order", Value::from(shipment.id.order.0)),
        ("shipment", shipment.id.to_string().into()),
    ]);
    let missing: Vec<Value> = [
        (
            "paid",
            shipment.state == consign_domain::ShipmentState::Captured,
        ),
        ("gtg", shipment.details.gtg),
        ("shipped", shipment.details.shipped),
    ]
    .into_iter()
    .filter(|(_, done)| !done)
    .map(|(name, _)| Value::from(name))
    .collect();
    if !missing.is_empty() {
        answer
            .fields
            .insert("missing".into(), Value::Array(missing));
    }
    answer
}
