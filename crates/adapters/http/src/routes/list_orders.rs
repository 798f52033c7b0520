//! `GET <base>/orders`: orders with their lines, quantities and live shipments, oldest first.

use actix_web::{web, HttpRequest, HttpResponse};
use consign_domain::OrderId;
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
    let max_id = i64::MAX as u64;
    let order_query = OrderQuery {
        order: query
            .number("order", 1..=max_id)?
            .map(|n| OrderId(n as i64)),
        customer_id: query.number("customer_id", 1..=max_id)?.map(|n| n as i64),
        newer_than: query.date("newer_than")?,
        older_than: query.date("older_than")?,
        limit: query.number("limit", 1..=1000)?.unwrap_or(20) as u32,
        offset: query
            .number("offset", 0..=u64::from(u32::MAX))?
            .unwrap_or(0) as u32,
    };
    let orders = state.consign.list_orders(order_query).await?;
    Ok(Answer::ok([(
        "orders",
        Value::Array(orders.iter().map(render::order).collect()),
    )]))
}
