//! Answers for unknown routes and known routes called with another method.

use actix_web::HttpResponse;

use crate::error::ApiError;

/// 404 with the usual JSON body.
pub async fn not_found() -> HttpResponse {
    ApiError::NotFound.into_answer(false, None).into_response()
}

/// 405 with `Allow`.
pub fn method_not_allowed(
    allow: &'static str,
) -> impl Fn() -> std::future::Ready<HttpResponse> + Clone {
    move || {
        std::future::ready(
            ApiError::MethodNotAllowed(allow)
                .into_answer(false, None)
                .into_response(),
        )
    }
}
