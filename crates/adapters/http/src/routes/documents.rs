//! `GET <base>/documents/<shipment>/<kind>.pdf`: delivery note, proforma or invoice.
//!
//! Authenticated by the API key or by the signed `token` the URL carries (checked before
//! routing, in `auth`); the token works only for the shipment and kind it was issued for.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use consign_ports::DocumentKind;
use consign_service::ServiceError;
use serde_json::Map;

use crate::answer::Answer;
use crate::error::ApiError;
use crate::query::Query;
use crate::ApiState;

fn not_found(msg: &str) -> HttpResponse {
    let mut fields = Map::new();
    fields.insert("status".into(), "no".into());
    fields.insert("msg".into(), msg.into());
    Answer::new(StatusCode::NOT_FOUND, fields).into_response()
}

/// The kind named by a file segment such as `invoice.pdf`.
pub fn kind_of(file: &str) -> Option<DocumentKind> {
    file.strip_suffix(".pdf").and_then(DocumentKind::from_slug)
}

/// The handler.
pub async fn document(
    request: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<ApiState>,
) -> HttpResponse {
    let (shipment, file) = path.into_inner();
    if let Err(error) = Query::parse(request.query_string(), &["token"]) {
        return error.into_answer(false, None).into_response();
    }
    let (Some(kind), Ok(id)) = (kind_of(&file), shipment.parse()) else {
        return not_found("document does not exist");
    };
    match state.consign.document(id, kind).await {
        Ok(pdf) => HttpResponse::Ok()
            .content_type("application/pdf")
            .insert_header((
                "Content-Disposition",
                format!("inline; filename=\"{}-{id}.pdf\"", kind.slug()),
            ))
            .body(pdf),
        Err(ServiceError::ShipmentNotFound(_)) => not_found("shipment does not exist"),
        Err(ServiceError::NoInvoice(_)) => not_found("invoice does not exist"),
        Err(error) => ApiError::from(error)
            .into_answer(false, None)
            .into_response(),
    }
}
