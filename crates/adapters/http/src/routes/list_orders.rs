//! `GET <base>/orders`: orders with their lines, quantities and live shipments, oldest first.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::{web, HttpResponse};
use consign_domain::OrderId;
use consign_ports::{OrderQuery, OrderView};
use consign_service::{OrderParts, ServiceError};

use crate::edge::lenient::flag;
use crate::edge::requests::OrdersQuery;
use crate::edge::Params;
use crate::error::ApiError;
use crate::routes::shipments::page;
use crate::streamed::{LaterParts, StreamedList};
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
        let mut parts = OrderParts::new(OrderQuery {
            order: query.order.map(|o| OrderId(o.0)),
            customer_id: query.customer_id.map(|c| c.0),
            newer_than: query.newer_than.map(|d| d.0),
            older_than: query.older_than.map(|d| d.0),
            limit,
            offset,
            after: None,
            shipments_at_most: None,
        });
        // The first part is read before the answer starts, so a store that cannot answer gets
        // the usual error answer; the others as it is written, each order becoming JSON values
        // only as it is sent (a page of large orders built whole took four times the server's
        // memory under load, and read whole 127-155 MiB in the benchmark).
        let first = match parts.next_query() {
            Some(query) => state.consign.list_orders(query).await?,
            None => Vec::new(),
        };
        parts.read(&first);
        let later = LaterOrders {
            state: state.clone(),
            parts,
            reading: None,
        };
        Ok(StreamedList::new("orders", first, render::order, xml)
            .followed_by(later)
            .into_response())
    };
    list.await
        .map_err(|error: ApiError| error.answered(xml, Default::default()))
}

/// A part of a page being read.
type PartRead = Pin<Box<dyn Future<Output = Result<Vec<OrderView>, ServiceError>>>>;

/// The parts of a page after the first, each read when the answer has written the last.
struct LaterOrders {
    state: web::Data<ApiState>,
    parts: OrderParts,
    reading: Option<PartRead>,
}

impl LaterParts<OrderView> for LaterOrders {
    fn poll_part(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<Vec<OrderView>>, ApiError>> {
        let mut reading = match self.reading.take() {
            Some(reading) => reading,
            None => {
                let Some(query) = self.parts.next_query() else {
                    return Poll::Ready(Ok(None));
                };
                let state = self.state.clone();
                Box::pin(async move { state.consign.list_orders(query).await })
            }
        };
        let Poll::Ready(read) = reading.as_mut().poll(cx) else {
            self.reading = Some(reading);
            return Poll::Pending;
        };
        Poll::Ready(match read {
            Ok(part) => {
                self.parts.read(&part);
                Ok(Some(part))
            }
            // The answer then ends broken (`streamed.rs` logs it); actix closes the connection.
            Err(error) => Err(error.into()),
        })
    }
}
