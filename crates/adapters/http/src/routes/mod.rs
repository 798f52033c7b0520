//! One module per call. Routes are thin: read the request, call one service function, render.

pub mod create_shipment;
pub mod fallback;
pub mod import_order;
pub mod list_orders;

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
