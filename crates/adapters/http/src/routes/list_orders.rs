//! `GET <base>/orders`: orders with their lines, quantities and live shipments, oldest first.

use actix_web::{web, HttpRequest, HttpResponse};
use consign_ports::OrderQuery;
use serde_json::Value;

use crate::answer::Answer;
use crate::error::ApiError;
use crate::query::Query;
use crate::{render, ApiState};

pub(crate) const PARAMS: &[&str] = &[
    "limit",
    "offset",
    "order",
    "customer_id",
    "newer_than",
    "older_than",
    "xml",
];

/// The handler.
pub async fn list_orders(request: HttpRequest, state: web::Data<ApiState>) -> HttpResponse {
    let query = match Query::parse(request.query_string(), PARAMS) {
        Ok(query) => query,
        Err(error) => return error.into_answer(false, None).into_response(),
    };
    let (xml, result) = match query.xml() {
        Ok(xml) => (xml, handle(&state, &query).await),
        Err(error) => (false, Err(error)),
    };
    match result {
        Ok(answer) => answer.xml(xml).into_response(),
        Err(error) => error.into_answer(xml, None).into_response(),
    }
}

async fn handle(state: &ApiState, query: &Query) -> Result<Answer, ApiError> {
    let (limit, offset) = query.page(1000, 20)?;
    let order_query = OrderQuery {
        order: query.order()?,
        customer_id: query.customer_id()?,
        newer_than: query.date("newer_than")?,
        older_than: query.date("older_than")?,
        limit,
        offset,
    };
    let orders = state.consign.list_orders(order_query).await?;
    Ok(Answer::ok([(
        "orders",
        Value::Array(orders.iter().map(render::order).collect()),
    )]))
}
