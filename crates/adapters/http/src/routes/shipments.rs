//! `GET <base>/shipments`, and `GET`, `PUT`, `DELETE <base>/shipments/<shipment>`.

use actix_web::{web, HttpRequest, HttpResponse};
use consign_domain::{LineId, OrderId, ShipmentLine};
use consign_ports::{ShipmentQuery, ShipmentStatus};
use serde_json::{Map, Value};

use crate::answer::Answer;
use crate::error::ApiError;
use crate::input::{line_id_key, Fields, MAX_TEXT};
use crate::query::Query;
use crate::routes::create_shipment::MAX_LINES;
use crate::routes::{json_body, shipment_error, shipment_id};
use crate::{render, ApiState};

pub(crate) const LIST_PARAMS: &[&str] = &[
    "status",
    "limit",
    "offset",
    "order",
    "customer_id",
    "newer_than",
    "older_than",
    "xml",
];
pub(crate) const GET_PARAMS: &[&str] = &["order", "status", "newer_than", "older_than", "xml"];
pub(crate) const DELETE_PARAMS: &[&str] = &["order", "xml"];
pub(crate) const UPDATE_FIELDS: &[&str] = &["order", "products", "gtg", "xml"];

/// Answers a GET or DELETE: query errors in JSON, the rest as the query asked.
async fn with_query<F, Fut>(request: &HttpRequest, params: &[&str], call: F) -> HttpResponse
where
    F: FnOnce(Query) -> Fut,
    Fut: std::future::Future<Output = Result<Answer, (ApiError, Option<Value>)>>,
{
    let query = match Query::parse(request.query_string(), params) {
        Ok(query) => query,
        Err(error) => return error.into_answer(false, None).into_response(),
    };
    let xml = match query.xml() {
        Ok(xml) => xml,
        Err(error) => return error.into_answer(false, None).into_response(),
    };
    match call(query).await {
        Ok(answer) => answer.xml(xml).into_response(),
        Err((error, shipment)) => shipment_error(error, xml, None, shipment),
    }
}

/// `GET <base>/shipments`: by default good-to-go shipments not yet shipped.
pub async fn list_shipments(request: HttpRequest, state: web::Data<ApiState>) -> HttpResponse {
    with_query(&request, LIST_PARAMS, |query| async move {
        let list = async {
            let status = match query.get("status") {
                None | Some("goodtogo") => ShipmentStatus::GoodToGo,
                Some("inprogress") => ShipmentStatus::InProgress,
                Some("completed") => ShipmentStatus::Completed,
                Some(_) => {
                    return Err(ApiError::BadRequest(
                        "parameter status: must be goodtogo, inprogress or completed".into(),
                    ))
                }
            };
            let (limit, offset) = query.page(100, 100)?;
            let shipments = state
                .consign
                .list_shipments(ShipmentQuery {
                    status,
                    order: query.order()?,
                    customer_id: query.customer_id()?,
                    newer_than: query.date("newer_than")?,
                    older_than: query.date("older_than")?,
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
        list.await.map_err(|e| (e, None))
    })
    .await
}

/// `GET <base>/shipments/<shipment>`: one shipment, whatever its status.
pub async fn get_shipment(
    request: HttpRequest,
    path: web::Path<String>,
    state: web::Data<ApiState>,
) -> HttpResponse {
    let raw = path.into_inner();
    with_query(&request, GET_PARAMS, |query| async move {
        let echo = Some(Value::from(raw.clone()));
        let get = async {
            let id = shipment_id(&raw, "shipment")?;
            // Centra's filters are accepted without filtering; a given order must match.
            query.date("newer_than")?;
            query.date("older_than")?;
            let order = query.order()?;
            let listing = state.consign.get_shipment(id, order).await?;
            Ok(Answer::ok([(
                "shipments",
                Value::Array(vec![render::shipment(&listing, &state.settings.documents)]),
            )]))
        };
        get.await.map_err(|e| (e, echo))
    })
    .await
}

/// `DELETE <base>/shipments/<shipment>`: an uncaptured shipment, releasing its units.
pub async fn delete_shipment(
    request: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<ApiState>,
) -> HttpResponse {
    let raw = path.into_inner();
    with_query(&request, DELETE_PARAMS, |query| async move {
        let echo = Some(Value::from(raw.clone()));
        let delete = async {
            let body = match payload.to_bytes_limited(state.settings.max_body).await {
                Ok(Ok(body)) => body,
                _ => return Err(ApiError::TooLarge(state.settings.max_body)),
            };
            if !body.iter().all(u8::is_ascii_whitespace) {
                return Err(ApiError::BadRequest(
                    "DELETE takes no body; use the query (order, xml)".into(),
                ));
            }
            let id = shipment_id(&raw, "shipment")?;
            let order = query.order()?;
            let shipment = state.consign.delete_shipment(id, order).await?;
            Ok(Answer::ok([
                ("msg", "shipment removed".into()),
                ("order", Value::from(shipment.id.order.0)),
                ("shipment", shipment.id.to_string().into()),
            ]))
        };
        delete.await.map_err(|e| (e, echo))
    })
    .await
}

/// `PUT <base>/shipments/<shipment>`: set line quantities of an uncaptured shipment (0 removes
/// a line; lines not named stay) and/or mark it good to go.
pub async fn update_shipment(
    request: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<ApiState>,
) -> HttpResponse {
    let raw = path.into_inner();
    let body = match json_body(&request, payload, &state).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let echo_order = body.map.get("order").filter(|v| !v.is_null()).cloned();
    match update(&state, &raw, &body.map).await {
        Ok(answer) => answer.xml(body.xml).into_response(),
        Err(error) => shipment_error(error, body.xml, echo_order, Some(Value::from(raw))),
    }
}

async fn update(state: &ApiState, raw: &str, map: &Map<String, Value>) -> Result<Answer, ApiError> {
    let f = Fields::new(map, "", UPDATE_FIELDS)?;
    let id = shipment_id(raw, "shipment")?;
    let order = f.id("order")?.map(OrderId);
    let gtg = f.flag("gtg")?;
    f.flag("xml")?;
    let lines = f.object("products")?.map(quantities).transpose()?;
    if lines.is_none() && gtg.is_none() {
        return Err(ApiError::BadRequest(
            "nothing to update: give products and/or gtg".into(),
        ));
    }
    state.consign.update_shipment(id, order, lines, gtg).await?;
    let listing = state.consign.get_shipment(id, None).await?;
    Ok(Answer::ok([(
        "shipment",
        render::shipment(&listing, &state.settings.documents),
    )]))
}

/// `{"<lineId>": qty}` or `{"<lineId>": {"serialNumber": "...", "qty": n}}`; 0 removes a line.
fn quantities(products: &Map<String, Value>) -> Result<Vec<ShipmentLine>, ApiError> {
    if products.is_empty() || products.len() > MAX_LINES {
        return Err(ApiError::BadRequest(format!(
            "field products: must name 1 to {MAX_LINES} lines"
        )));
    }
    let keys: Vec<&str> = products.keys().map(String::as_str).collect();
    let fields = Fields::new(products, "products.", &keys)?;
    products
        .iter()
        .map(|(key, value)| {
            let line_id = line_id_key(key)?;
            let quantity = match value {
                Value::Object(inner) => {
                    let path = format!("products.{key}.");
                    let f = Fields::new(inner, &path, &["serialNumber", "qty"])?;
                    f.text("serialNumber", MAX_TEXT)?;
                    f.must("qty", f.count("qty")?)?
                }
                _ => fields.must(key, fields.count(key)?)?,
            };
            Ok(ShipmentLine {
                line_id: LineId(line_id),
                quantity,
            })
        })
        .collect()
}
