//! One module per call. Routes are thin: their request arrives typed (`edge`), they call one
//! service function and render; every error is an [`ApiError`] answered in one place.

pub mod complete_shipment;
pub mod create_shipment;
pub mod documents;
pub mod fallback;
pub mod import_order;
pub mod list_orders;
pub mod ops;
pub mod returns;
pub mod shipments;

use consign_domain::ShipmentId;
use serde_json::{Map, Value};

use crate::answer::Answer;
use crate::error::ApiError;

/// A shipment id from a path segment, or a 400 naming it.
pub fn shipment_id(text: &str) -> Result<ShipmentId, ApiError> {
    text.parse().map_err(|_| {
        ApiError::BadRequest("field shipment: must be a shipment id such as \"83651-1\"".into())
    })
}

/// What an error about the shipment in the path echoes.
pub fn echo_shipment(raw: &str) -> Map<String, Value> {
    let mut echo = Map::new();
    echo.insert("shipment".into(), Value::from(raw));
    echo
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
