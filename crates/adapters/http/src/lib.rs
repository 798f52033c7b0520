//! # consign-http
//!
//! The actix-web adapter: Centra's Order API shipment calls over HTTP, JSON by default and XML
//! on request, with `API-Authorization` keys and Centra-style errors. Requests arrive typed
//! (`edge`: Centra-lenient values, unknown fields refused, one extractor for bodies and one
//! for query strings); every error is an [`ApiError`], whose `ResponseError` implementation
//! builds every `{"status":"no","msg":...}` answer; routes only call one service function and
//! render. The OpenAPI document is generated from the same types (`openapi`).
#![deny(missing_docs)]

mod answer;
mod auth;
mod dates;
mod edge;
mod error;
mod idempotency;
mod limits;
mod openapi;
mod render;
mod routes;
mod streamed;
mod telemetry;

use std::sync::{Arc, OnceLock};

use actix_web::{middleware, web};
use consign_service::Consign;

pub use auth::FailureLimiter;
pub use error::ApiError;
pub use limits::header_limits;
pub use render::DocumentLinks;
pub use telemetry::{telemetry, RequestMetrics};

/// Settings of the HTTP adapter.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// The `<base>` of every call, e.g. `/api/order` (no trailing slash).
    pub base_path: String,
    /// The largest accepted request body, in bytes.
    pub max_body: usize,
    /// Where document links point.
    pub documents: DocumentLinks,
    /// The OpenAPI document, built at its first request and shared by every clone: building it
    /// was a third of the instructions of start-up.
    openapi: Arc<OnceLock<String>>,
    /// Requests per second per API key, with a burst of twice that; `None`: unlimited.
    pub rate_limit: Option<Arc<governor::DefaultKeyedRateLimiter<i64>>>,
    /// The same rate per client address for requests a document link's token lets in (they
    /// carry no key, and each lays out a PDF); `None`: unlimited.
    pub link_limit: Option<Arc<governor::DefaultKeyedRateLimiter<std::net::IpAddr>>>,
    /// The bearer token that opens `/metrics` on the main listener; `None`: not served there.
    pub metrics_token: Option<String>,
    /// Failed authentications per client address; `None`: unlimited.
    pub auth_failures: Option<Arc<FailureLimiter>>,
}

impl HttpSettings {
    /// The OpenAPI document of these settings' base path.
    fn openapi(&self) -> &str {
        self.openapi
            .get_or_init(|| openapi::document(&self.base_path).to_string())
    }

    /// Settings for a base path, a public URL (`http://127.0.0.1:8080`), a body limit, and the
    /// secret and lifetime of document links.
    pub fn new(
        base_path: &str,
        public_url: &str,
        max_body: usize,
        document_secret: &str,
        document_ttl_secs: i64,
    ) -> Self {
        let base_path = base_path.trim_end_matches('/').to_owned();
        HttpSettings {
            openapi: Arc::default(),
            documents: DocumentLinks::new(
                format!("{}{base_path}", public_url.trim_end_matches('/')),
                document_secret,
                document_ttl_secs,
            ),
            base_path,
            max_body,
            rate_limit: None,
            link_limit: None,
            metrics_token: None,
            auth_failures: None,
        }
    }

    /// Limits failed authentications to `per_second` per client address (bursts of twice
    /// that): past it the address is answered 429 without a key lookup. 0 means no limit.
    pub fn with_auth_failure_limit(mut self, per_second: u32) -> Self {
        self.auth_failures = FailureLimiter::per_second(per_second).map(Arc::new);
        self
    }

    /// Serves `/metrics` on the main listener to requests carrying this bearer token.
    pub fn with_metrics_token(mut self, token: Option<String>) -> Self {
        self.metrics_token = token.filter(|t| !t.is_empty());
        self
    }

    /// Limits every API key to `per_second` requests per second (bursts of twice that), and
    /// each client address to as many requests let in by a document link; 0 means no limit.
    pub fn with_rate_limit(mut self, per_second: u32) -> Self {
        let quota = std::num::NonZeroU32::new(per_second).map(|rate| {
            let burst = rate.saturating_mul(std::num::NonZeroU32::MIN.saturating_add(1));
            governor::Quota::per_second(rate).allow_burst(burst)
        });
        self.rate_limit = quota.map(|quota| Arc::new(governor::RateLimiter::keyed(quota)));
        self.link_limit = quota.map(|quota| Arc::new(governor::RateLimiter::keyed(quota)));
        self
    }
}

/// What every handler gets.
#[derive(Clone)]
pub struct ApiState {
    /// The use cases.
    pub consign: Consign,
    /// The adapter's settings.
    pub settings: Arc<HttpSettings>,
    /// Request metrics, shared by every worker.
    pub metrics: web::Data<RequestMetrics>,
}

/// `GET /openapi.json`: no key needed; its paths include the base path.
async fn openapi_json(state: web::Data<ApiState>) -> actix_web::HttpResponse {
    actix_web::HttpResponse::Ok()
        .content_type("application/json")
        .body(state.settings.openapi().to_owned())
}

/// Registers every route; `App::new().configure(consign_http::routes(state))`.
pub fn routes(state: ApiState) -> impl FnOnce(&mut web::ServiceConfig) + Clone {
    move |config: &mut web::ServiceConfig| {
        use routes::fallback::{method_not_allowed, not_found};
        let base = state.settings.base_path.clone();
        let metrics = state.settings.metrics_token.is_some();
        config
            .app_data(state.metrics.clone())
            .app_data(web::Data::new(state))
            .service(
                // The last wrap runs first: the key is checked before the idempotency layer.
                web::scope(&base)
                    .wrap(middleware::from_fn(idempotency::idempotency))
                    .wrap(middleware::from_fn(auth::require_api_key))
                    .service(
                        web::resource("/shipments")
                            .route(web::post().to(routes::create_shipment::create_shipment))
                            .route(web::get().to(routes::shipments::list_shipments))
                            .default_service(web::to(method_not_allowed("GET, POST"))),
                    )
                    .service(
                        web::resource("/shipments/{shipment}")
                            .route(web::get().to(routes::shipments::get_shipment))
                            .route(web::put().to(routes::shipments::update_shipment))
                            .route(web::delete().to(routes::shipments::delete_shipment))
                            .default_service(web::to(method_not_allowed("GET, PUT, DELETE"))),
                    )
                    .service(
                        web::resource("/shipment")
                            .route(web::put().to(routes::complete_shipment::complete_shipment))
                            .default_service(web::to(method_not_allowed("PUT"))),
                    )
                    .service(
                        web::resource("/capture")
                            .route(web::put().to(routes::complete_shipment::capture_shipment))
                            .default_service(web::to(method_not_allowed("PUT"))),
                    )
                    .service(
                        web::resource("/documents/{shipment}/{file}")
                            .route(web::get().to(routes::documents::document))
                            .default_service(web::to(method_not_allowed("GET"))),
                    )
                    .service(
                        web::resource("/order")
                            .route(web::post().to(routes::import_order::import_order))
                            .default_service(web::to(method_not_allowed("POST"))),
                    )
                    .service(
                        web::resource("/return")
                            .route(web::post().to(routes::returns::create_return))
                            .default_service(web::to(method_not_allowed("POST"))),
                    )
                    .service(
                        web::resource("/returns")
                            .route(web::get().to(routes::returns::list_returns))
                            .default_service(web::to(method_not_allowed("GET"))),
                    )
                    .service(
                        web::resource("/returns/{return}")
                            .route(web::put().to(routes::returns::update_return))
                            .default_service(web::to(method_not_allowed("PUT"))),
                    )
                    .service(
                        web::resource("/orders")
                            .route(web::get().to(routes::list_orders::list_orders))
                            .default_service(web::to(method_not_allowed("GET"))),
                    )
                    .default_service(web::to(not_found)),
            )
            .route("/openapi.json", web::get().to(openapi_json))
            .route("/healthz", web::get().to(routes::ops::healthz))
            .route("/readyz", web::get().to(routes::ops::readyz));
        // Business figures only where an operator enabled them.
        if metrics {
            config.route("/metrics", web::get().to(routes::ops::metrics_with_token));
        }
        config.default_service(web::to(not_found));
    }
}

/// The routes of a separate metrics listener (`CONSIGN_METRICS_LISTEN`): `/metrics` without a
/// token (reaching the address is the access), `/healthz`, nothing else.
pub fn metrics_routes(state: ApiState) -> impl FnOnce(&mut web::ServiceConfig) + Clone {
    move |config: &mut web::ServiceConfig| {
        config
            .app_data(state.metrics.clone())
            .app_data(web::Data::new(state))
            .route("/metrics", web::get().to(routes::ops::metrics_open))
            .route("/healthz", web::get().to(routes::ops::healthz))
            .default_service(web::to(routes::fallback::not_found));
    }
}
