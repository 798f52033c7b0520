//! `PUT <base>/shipment`: complete a shipment (capture, good to go, shipped, tracking) and
//! `PUT <base>/capture`: capture an uncaptured shipment.

use actix_web::{web, HttpRequest, HttpResponse};
use consign_domain::OrderId;
use consign_ports::{ShipmentChanges, ShippingUpdate};
use serde_json::{Map, Value};

use crate::answer::Answer;
use crate::error::ApiError;
use crate::input::{Fields, MAX_TEXT};
use crate::routes::{completion_answer, json_body, shipment_error, shipment_id};
use crate::ApiState;

pub(crate) const COMPLETE_FIELDS: &[&str] = &[
    "shipment",
    "order",
    "capture",
    "gtg",
    "shipped",
    "carrier",
    "service",
    "packages",
    "tracking",
    "trackingNumber",
    "returnSlipTracking",
    "sendEmail",
    "internalComment",
    "xml",
];
pub(crate) const CAPTURE_FIELDS: &[&str] = &["shipment", "order", "xml"];
/// Longest internal comment, in characters.
pub(crate) const MAX_COMMENT: usize = 4000;

/// The complete-shipment handler.
pub async fn complete_shipment(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<ApiState>,
) -> HttpResponse {
    respond(&request, payload, &state, complete).await
}

/// The capture-shipment handler.
pub async fn capture_shipment(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<ApiState>,
) -> HttpResponse {
    respond(&request, payload, &state, capture).await
}

async fn respond<F, Fut>(
    request: &HttpRequest,
    payload: web::Payload,
    state: &ApiState,
    call: F,
) -> HttpResponse
where
    F: FnOnce(ApiState, Map<String, Value>) -> Fut,
    Fut: std::future::Future<Output = Result<Answer, ApiError>>,
{
    let body = match json_body(request, payload, state).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let echo_shipment = body.map.get("shipment").cloned();
    let echo_order = body.map.get("order").filter(|v| !v.is_null()).cloned();
    match call(state.clone(), body.map.clone()).await {
        Ok(answer) => answer.xml(body.xml).into_response(),
        Err(error) => shipment_error(error, body.xml, echo_order, echo_shipment),
    }
}

async fn complete(state: ApiState, map: Map<String, Value>) -> Result<Answer, ApiError> {
    let f = Fields::new(&map, "", COMPLETE_FIELDS)?;
    let id = shipment_id(
        &f.must("shipment", f.text("shipment", MAX_TEXT)?)?,
        "shipment",
    )?;
    let order = f.id("order")?.map(OrderId);
    let capture = f.flag("capture")?.unwrap_or(true);
    let tracking = f.text("tracking", MAX_TEXT)?;
    let tracking_number = f.text("trackingNumber", MAX_TEXT)?;
    if tracking.is_some() && tracking_number.is_some() {
        return Err(ApiError::BadRequest(
            "fields tracking and trackingNumber: give one of them".into(),
        ));
    }
    f.flag("xml")?;
    // Calling complete is what ships a shipment: gtg and shipped default to true here.
    let changes = ShipmentChanges {
        gtg: f.flag("gtg")?.unwrap_or(true),
        shipped: f.flag("shipped")?.unwrap_or(true),
        shipping: ShippingUpdate {
            carrier: f.text("carrier", MAX_TEXT)?,
            service: f.text("service", MAX_TEXT)?,
            packages: f.count("packages")?,
            tracking: tracking.or(tracking_number),
            return_slip_tracking: f.text("returnSlipTracking", MAX_TEXT)?,
        },
        send_email: f.flag("sendEmail")?,
        internal_comment: f.multiline("internalComment", MAX_COMMENT)?,
    };
    let shipment = state
        .consign
        .complete_shipment(id, order, capture, changes)
        .await?;
    Ok(completion_answer(&shipment))
}

async fn capture(state: ApiState, map: Map<String, Value>) -> Result<Answer, ApiError> {
    let f = Fields::new(&map, "", CAPTURE_FIELDS)?;
    let id = shipment_id(
        &f.must("shipment", f.text("shipment", MAX_TEXT)?)?,
        "shipment",
    )?;
    let order = f.id("order")?.map(OrderId);
    f.flag("xml")?;
    let shipment = state.consign.capture_shipment(id, order).await?;
    Ok(completion_answer(&shipment))
}
