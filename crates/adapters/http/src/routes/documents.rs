//! `GET <base>/documents/<shipment>/<kind>.pdf`: delivery note, proforma or invoice.
//!
//! Authenticated by the API key or by the signed `token` the URL carries (checked before
//! routing, in `auth`); the token works only for the shipment and kind it was issued for.

use actix_web::{web, HttpResponse};
use consign_ports::DocumentKind;
use consign_service::ServiceError;

use crate::edge::requests::DocumentQuery;
use crate::edge::Params;
use crate::error::ApiError;
use crate::ApiState;

/// The kind named by a file segment such as `invoice.pdf`.
pub fn kind_of(file: &str) -> Option<DocumentKind> {
    file.strip_suffix(".pdf").and_then(DocumentKind::from_slug)
}

/// The handler.
#[utoipa::path(
    get,
    path = "/documents/{shipment}/{file}",
    summary = "A shipment's delivery note, proforma or invoice as PDF (API key, or the link's signed token)",
    params(
        ("shipment" = String, Path, description = "The shipment id, such as 83651-1"),
        ("file" = String, Path, description = "delivery-note.pdf, proforma.pdf or invoice.pdf"),
        DocumentQuery
    )
)]
pub async fn document(
    path: web::Path<(String, String)>,
    _query: Params<DocumentQuery>,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let (shipment, file) = path.into_inner();
    let (Some(kind), Ok(id)) = (kind_of(&file), shipment.parse()) else {
        return Err(ApiError::NoDocument("document does not exist"));
    };
    match state.consign.document(id, kind).await {
        Ok(pdf) => Ok(HttpResponse::Ok()
            .content_type("application/pdf")
            .insert_header((
                "Content-Disposition",
                format!("inline; filename=\"{}-{id}.pdf\"", kind.slug()),
            ))
            .body(pdf)),
        Err(ServiceError::ShipmentNotFound(_)) => {
            Err(ApiError::NoDocument("shipment does not exist"))
        }
        Err(ServiceError::NoInvoice(_)) => Err(ApiError::NoDocument("invoice does not exist")),
        Err(error) => Err(error.into()),
    }
}
