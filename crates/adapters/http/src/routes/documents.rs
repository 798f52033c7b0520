//! `GET <base>/documents/<shipment>/<kind>.pdf`: delivery note, proforma or invoice, and
//! `credit-note-<return>.pdf` for a refunded return of the shipment.
//!
//! Authenticated by the API key or by the signed `token` the URL carries (checked before
//! routing, in `auth`); the token works only for the shipment and kind it was issued for.

use actix_web::{web, HttpResponse};
use consign_domain::ReturnId;
use consign_ports::DocumentKind;
use consign_service::ServiceError;

use crate::edge::requests::DocumentQuery;
use crate::edge::Params;
use crate::error::ApiError;
use crate::ApiState;

/// A document a file segment names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentFile {
    /// One of the shipment's own documents (`invoice.pdf`).
    Shipment(DocumentKind),
    /// The credit note of one of its returns (`credit-note-5397.pdf`).
    CreditNote(ReturnId),
}

impl DocumentFile {
    /// The name a link's token is signed for (`invoice`, `credit-note-5397`).
    pub fn slug(self) -> String {
        match self {
            DocumentFile::Shipment(kind) => kind.slug().to_owned(),
            DocumentFile::CreditNote(id) => format!("credit-note-{id}"),
        }
    }
}

/// The document named by a file segment such as `invoice.pdf`.
pub fn file_of(file: &str) -> Option<DocumentFile> {
    let stem = file.strip_suffix(".pdf")?;
    if let Some(id) = stem.strip_prefix("credit-note-") {
        return crate::edge::lenient::parse_digits(id)
            .ok()
            .and_then(|n| i64::try_from(n).ok())
            .filter(|n| *n > 0)
            .map(|n| DocumentFile::CreditNote(ReturnId(n)));
    }
    DocumentKind::from_slug(stem).map(DocumentFile::Shipment)
}

/// The handler.
#[utoipa::path(
    get,
    path = "/documents/{shipment}/{file}",
    summary = "A shipment's delivery note, proforma, invoice or a return's credit note as PDF (API key, or the link's signed token)",
    params(
        ("shipment" = String, Path, description = "The shipment id, such as 83651-1"),
        ("file" = String, Path, description = "delivery-note.pdf, proforma.pdf, invoice.pdf or credit-note-<return>.pdf"),
        DocumentQuery
    )
)]
pub async fn document(
    path: web::Path<(String, String)>,
    _query: Params<DocumentQuery>,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let (shipment, file) = path.into_inner();
    let (Some(file), Ok(id)) = (file_of(&file), shipment.parse()) else {
        return Err(ApiError::NoDocument("document does not exist"));
    };
    let pdf = match file {
        DocumentFile::Shipment(kind) => state.consign.document(id, kind).await,
        DocumentFile::CreditNote(ret) => state.consign.credit_note(id, ret).await,
    };
    match pdf {
        Ok(pdf) => Ok(HttpResponse::Ok()
            .content_type("application/pdf")
            .insert_header((
                "Content-Disposition",
                format!("inline; filename=\"{}-{id}.pdf\"", file.slug()),
            ))
            .body(pdf)),
        Err(ServiceError::NoCreditNote(_)) => {
            Err(ApiError::NoDocument("credit note does not exist"))
        }
        Err(ServiceError::ShipmentNotFound(_)) => {
            Err(ApiError::NoDocument("shipment does not exist"))
        }
        Err(ServiceError::NoInvoice(_)) => Err(ApiError::NoDocument("invoice does not exist")),
        Err(error) => Err(error.into()),
    }
}
