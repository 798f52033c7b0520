//! `GET <base>/shipments`, and `GET`, `PUT`, `DELETE <base>/shipments/<shipment>`.

use actix_web::{web, HttpRequest};
use consign_domain::OrderId;
use consign_ports::{ShipmentQuery as ListQuery, ShipmentStatus};
use serde_json::Value;

use crate::answer::Answer;
use crate::edge::lenient::flag;
use crate::edge::requests::{DeleteQuery, ShipmentQuery, ShipmentsQuery, UpdateShipment};
use crate::edge::{read_within, Body, Params};
use crate::error::ApiError;
use crate::idempotency::RequestKey;
use crate::routes::{echo_shipment, shipment_id};
use crate::{render, ApiState};

/// A page size within `1..=max` (default `default`) and an offset.
pub(crate) fn page(
    limit: Option<crate::edge::lenient::Count>,
    offset: Option<crate::edge::lenient::Count>,
    max: u32,
    default: u32,
) -> Result<(u32, u32), ApiError> {
    let limit = match limit {
        None => default,
        Some(n) if (1..=max).contains(&n.0) => n.0,
        Some(_) => {
            return Err(ApiError::BadRequest(format!(
                "parameter limit: must be a whole number from 1 to {max}"
            )))
        }
    };
    Ok((limit, offset.map_or(0, |o| o.0)))
}

/// `GET <base>/shipments`: by default good-to-go shipments not yet shipped.
#[utoipa::path(
    get,
    path = "/shipments",
    summary = "List shipments (by default good to go, not shipped)",
    params(ShipmentsQuery)
)]
pub async fn list_shipments(
    state: web::Data<ApiState>,
    Params(query): Params<ShipmentsQuery>,
) -> Result<Answer, ApiError> {
    let xml = flag(query.xml, false);
    let list = async {
        let (limit, offset) = page(query.limit, query.offset, 100, 100)?;
        let shipments = state
            .consign
            .list_shipments(ListQuery {
                status: query.status.map_or(ShipmentStatus::GoodToGo, |s| s.0),
                order: query.order.map(|o| OrderId(o.0)),
                customer_id: query.customer_id.map(|c| c.0),
                newer_than: query.newer_than.map(|d| d.0),
                older_than: query.older_than.map(|d| d.0),
                limit,
                offset,
            })
            .await?;
        let links = &state.settings.documents;
        Ok(Answer::ok([(
            "shipments",
            Value::Array(
                shipments
                    .iter()
                    .map(|s| render::shipment(s, links))
                    .collect(),
            ),
        )]))
    };
    list.await
        .map(|answer: Answer| answer.xml(xml))
        .map_err(|error: ApiError| error.answered(xml, Default::default()))
}

/// `GET <base>/shipments/<shipment>`: one shipment, whatever its status.
#[utoipa::path(
    get,
    path = "/shipments/{shipment}",
    summary = "One shipment",
    params(("shipment" = String, Path, description = "The shipment id, such as 83651-1"), ShipmentQuery)
)]
pub async fn get_shipment(
    state: web::Data<ApiState>,
    path: web::Path<String>,
    Params(query): Params<ShipmentQuery>,
) -> Result<Answer, ApiError> {
    let raw = path.into_inner();
    let xml = flag(query.xml, false);
    let get = async {
        let id = shipment_id(&raw)?;
        let order = query.order.map(|o| OrderId(o.0));
        let listing = state.consign.get_shipment(id, order).await?;
        Ok(Answer::ok([(
            "shipments",
            Value::Array(vec![render::shipment(&listing, &state.settings.documents)]),
        )]))
    };
    get.await
        .map(|answer: Answer| answer.xml(xml))
        .map_err(|error: ApiError| error.answered(xml, echo_shipment(&raw)))
}

/// `DELETE <base>/shipments/<shipment>`: an uncaptured shipment, releasing its units.
#[utoipa::path(
    delete,
    path = "/shipments/{shipment}",
    summary = "Delete an uncaptured shipment, releasing its units",
    params(("shipment" = String, Path, description = "The shipment id, such as 83651-1"), DeleteQuery)
)]
pub async fn delete_shipment(
    state: web::Data<ApiState>,
    path: web::Path<String>,
    Params(query): Params<DeleteQuery>,
    request: HttpRequest,
    payload: web::Payload,
    request_key: Option<web::ReqData<RequestKey>>,
) -> Result<Answer, ApiError> {
    let raw = path.into_inner();
    let xml = flag(query.xml, false);
    let delete = async {
        let body = read_within(
            request.headers(),
            payload.into_inner(),
            state.settings.max_body,
        )
        .await?;
        if !body.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::BadRequest(
                "DELETE takes no body; use the query (order, xml)".into(),
            ));
        }
        let id = shipment_id(&raw)?;
        let order = query.order.map(|o| OrderId(o.0));
        let request_key = request_key.map(|k| k.into_inner().0);
        let shipment = state
            .consign
            .delete_shipment(id, order, request_key)
            .await?;
        Ok(Answer::ok([
            ("msg", "shipment removed".into()),
            ("order", Value::from(shipment.id.order.0)),
            ("shipment", shipment.id.to_string().into()),
        ]))
    };
    delete
        .await
        .map(|answer: Answer| answer.xml(xml))
        .map_err(|error: ApiError| error.answered(xml, echo_shipment(&raw)))
}

/// `PUT <base>/shipments/<shipment>`: set line quantities of an uncaptured shipment (0 removes
/// a line; lines not named stay) and/or mark it good to go.
#[utoipa::path(
    put,
    path = "/shipments/{shipment}",
    summary = "Update an uncaptured shipment's lines, or good to go",
    params(("shipment" = String, Path, description = "The shipment id, such as 83651-1")),
    request_body = UpdateShipment
)]
pub async fn update_shipment(
    state: web::Data<ApiState>,
    path: web::Path<String>,
    body: Body<UpdateShipment>,
) -> Result<Answer, ApiError> {
    let raw = path.into_inner();
    update(&state, &raw, &body.request)
        .await
        .map(|answer| answer.xml(body.xml))
        .map_err(|error| body.refuse(error).answered(body.xml, echo_shipment(&raw)))
}

async fn update(state: &ApiState, raw: &str, r: &UpdateShipment) -> Result<Answer, ApiError> {
    let id = shipment_id(raw)?;
    let order = r.order.map(|o| OrderId(o.0));
    let lines = r.products.as_ref().map(|p| p.0.clone());
    let gtg = r.gtg.map(|f| f.0);
    if lines.is_none() && gtg.is_none() {
        return Err(ApiError::BadRequest(
            "nothing to update: give products and/or gtg".into(),
        ));
    }
    let listing = state.consign.update_shipment(id, order, lines, gtg).await?;
    Ok(Answer::ok([(
        "shipment",
        render::shipment(&listing, &state.settings.documents),
    )]))
}
