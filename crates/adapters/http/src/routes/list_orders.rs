//! `GET <base>/orders`: orders with their lines, quantities and live shipments, oldest first.

use actix_web::{web, HttpResponse};
use consign_domain::OrderId;
use consign_ports::OrderQuery;

use crate::edge::lenient::flag;
use crate::edge::requests::OrdersQuery;
use crate::edge::Params;
use crate::error::ApiError;
use crate::routes::shipments::page;
use crate::streamed::StreamedList;
use crate::{render, ApiState};

/// The handler.
#[utoipa::path(
    get,
    path = "/orders",
    summary = "List orders with lines, quantities and shipments",
    params(OrdersQuery)
)]
pub async fn list_orders(
    state: web::Data<ApiState>,
    Params(query): Params<OrdersQuery>,
) -> Result<HttpResponse, ApiError> {
    let xml = flag(query.xml, false);
    let list = async {
        let (limit, offset) = page(query.limit, query.offset, 1000, 20)?;
        let orders = state
            .consign
            .list_orders(OrderQuery {
                order: query.order.map(|o| OrderId(o.0)),
                customer_id: query.customer_id.map(|c| c.0),
                newer_than: query.newer_than.map(|d| d.0),
                older_than: query.older_than.map(|d| d.0),
                limit,
                offset,
            })
            .await?;
        // Each order becomes JSON values only as it is sent: a page of large orders built whole
        // took four times the server's memory under load.
        Ok(StreamedList::new("orders", orders, render::order, xml).into_response())
    };
    list.await
        .map_err(|error: ApiError| error.answered(xml, Default::default()))
}
