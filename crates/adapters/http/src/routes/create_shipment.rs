//! `POST <base>/shipments`: create a shipment and, by default, capture its amount (the seed).

use actix_web::web;
use consign_domain::{OrderId, ShipmentRequest, ShipmentState};
use consign_ports::{ShipmentDetails, ShippingInfo};
use serde_json::Value;

use crate::answer::Answer;
use crate::edge::lenient::{flag, text};
use crate::edge::requests::CreateShipment;
use crate::edge::Body;
use crate::error::ApiError;
use crate::idempotency::RequestKey;
use crate::ApiState;

/// The handler.
#[utoipa::path(
    post,
    path = "/shipments",
    summary = "Create a shipment and, by default, capture its amount",
    request_body = CreateShipment
)]
pub async fn create_shipment(
    state: web::Data<ApiState>,
    body: Body<CreateShipment>,
    request_key: Option<web::ReqData<RequestKey>>,
) -> Result<Answer, ApiError> {
    let request_key = request_key.map(|k| k.into_inner().0);
    handle(&state, &body, request_key)
        .await
        .map(|answer| answer.xml(body.xml))
        .map_err(|error| body.refuse(error))
}

async fn handle(
    state: &ApiState,
    body: &Body<CreateShipment>,
    request_key: Option<String>,
) -> Result<Answer, ApiError> {
    let r = &body.request;
    let order = OrderId(r.order.0);
    let request = ShipmentRequest {
        lines: r.products.0.clone(),
        capture: flag(r.capture, true),
        deduct_previous_costs: flag(r.deduct_previous_costs, false),
    };
    let details = ShipmentDetails {
        gtg: flag(r.gtg, false),
        shipped: flag(r.shipped, false),
        shipping: ShippingInfo {
            carrier: text(r.carrier.clone()),
            service: text(r.service.clone()),
            packages: r.packages.map_or(0, |p| p.0),
            tracking: text(r.tracking.clone()),
            return_slip_tracking: text(r.return_slip_tracking.clone()),
        },
        send_email: r.send_email.map(|f| f.0),
    };
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
