//! `PUT <base>/shipment`: complete a shipment (capture, good to go, shipped, tracking) and
//! `PUT <base>/capture`: capture an uncaptured shipment.

use actix_web::web;
use consign_domain::OrderId;
use consign_ports::{ShipmentChanges, ShippingUpdate};

use crate::answer::Answer;
use crate::edge::lenient::flag;
use crate::edge::requests::{CaptureShipment, CompleteShipment};
use crate::edge::Body;
use crate::error::ApiError;
use crate::idempotency::RequestKey;
use crate::routes::completion_answer;
use crate::ApiState;

/// The complete-shipment handler.
#[utoipa::path(
    put,
    path = "/shipment",
    summary = "Complete a shipment: capture, good to go, shipped, tracking",
    request_body = CompleteShipment
)]
pub async fn complete_shipment(
    state: web::Data<ApiState>,
    body: Body<CompleteShipment>,
    request_key: Option<web::ReqData<RequestKey>>,
) -> Result<Answer, ApiError> {
    let request_key = request_key.map(|k| k.into_inner().0);
    complete(&state, &body.request, request_key)
        .await
        .map(|answer| answer.xml(body.xml))
        .map_err(|error| body.refuse(error))
}

/// The capture-shipment handler.
#[utoipa::path(
    put,
    path = "/capture",
    summary = "Capture an uncaptured shipment",
    request_body = CaptureShipment
)]
pub async fn capture_shipment(
    state: web::Data<ApiState>,
    body: Body<CaptureShipment>,
    request_key: Option<web::ReqData<RequestKey>>,
) -> Result<Answer, ApiError> {
    let r = &body.request;
    let order = r.order.map(|o| OrderId(o.0));
    // With an idempotency key this may be the retry of a capture answered 503: it finds that
    // capture by its key and answers its outcome, driving it if still open.
    let request_key = request_key.map(|k| k.into_inner().0);
    match state
        .consign
        .capture_shipment(r.shipment.0, order, request_key)
        .await
    {
        Ok(shipment) => Ok(completion_answer(&shipment).xml(body.xml)),
        Err(error) => Err(body.refuse(error)),
    }
}

async fn complete(
    state: &ApiState,
    r: &CompleteShipment,
    request_key: Option<String>,
) -> Result<Answer, ApiError> {
    if r.tracking.is_some() && r.tracking_number.is_some() {
        return Err(ApiError::BadRequest(
            "fields tracking and trackingNumber: give one of them".into(),
        ));
    }
    let text = |t: &Option<crate::edge::lenient::Text>| t.as_ref().map(|t| t.0.clone());
    // Calling complete is what ships a shipment: gtg and shipped default to true here.
    let changes = ShipmentChanges {
        gtg: flag(r.gtg, true),
        shipped: flag(r.shipped, true),
        shipping: ShippingUpdate {
            carrier: text(&r.carrier),
            service: text(&r.service),
            packages: r.packages.map(|p| p.0),
            tracking: text(&r.tracking).or(text(&r.tracking_number)),
            return_slip_tracking: text(&r.return_slip_tracking),
        },
        send_email: r.send_email.map(|f| f.0),
        internal_comment: r.internal_comment.as_ref().map(|c| c.0.clone()),
    };
    let order = r.order.map(|o| OrderId(o.0));
    let shipment = state
        .consign
        .complete_shipment(
            r.shipment.0,
            order,
            flag(r.capture, true),
            changes,
            request_key,
        )
        .await?;
    Ok(completion_answer(&shipment))
}
