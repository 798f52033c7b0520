//! `Idempotency-Key` on POST, PUT and DELETE: the answer of an executed request (200 or 400) is
//! stored, scoped to the API key, and replayed with `Idempotent-Replayed: true`; the same key
//! with a different request answers 422, and while the first is still running 409.
//!
//! Answers that are not final (401, 409, 413, 415, 429, 503 such as "capture outcome unknown")
//! release the key, so a retry runs again: create shipment then finds the shipment its first run
//! made (the key is recorded on it) and drives that one, never a second.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpResponse, ResponseError};
use consign_ports::{ApiKeyId, IdempotencyBegin, StoredAnswer};
use consign_service::Consign;
use sha2::{Digest, Sha256};

use crate::answer::Outcome;
use crate::edge::read_within;
use crate::error::ApiError;
use crate::ApiState;

/// The client's key for this request, scoped to its API key; handlers that create things record
/// it so a retry finds what the first run created.
#[derive(Debug, Clone)]
pub struct RequestKey(pub String);

/// A claimed key whose answer is not stored yet. Released when the request ended without a final
/// answer; a request dropped mid-way (the client went away) leaves it to takeover, because the
/// work it started may still be running and a retry must not start it again.
struct Claim {
    held: Option<(Consign, ApiKeyId, String)>,
}

impl Claim {
    fn new(consign: Consign, api_key: ApiKeyId, key: String) -> Self {
        Claim {
            held: Some((consign, api_key, key)),
        }
    }

    /// The answer will be stored (or the claim released) by the caller.
    fn keep(mut self) {
        self.held = None;
    }

    /// Releases the claim now, so a retry runs again.
    async fn release(mut self) {
        if let Some((consign, api_key, key)) = self.held.take() {
            if let Err(error) = consign.release_idempotent(api_key, &key).await {
                tracing::warn!(%error, "could not release an idempotency key");
            }
        }
    }
}

/// The middleware.
pub async fn idempotency(
    mut request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let changes_state = matches!(
        *request.method(),
        Method::POST | Method::PUT | Method::DELETE
    );
    let key = request
        .headers()
        .get("Idempotency-Key")
        .map(|v| v.to_str().map(str::to_owned).unwrap_or_default());
    let (Some(key), true) = (key, changes_state) else {
        return next
            .call(request)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    let answer =
        |request: ServiceRequest, response: HttpResponse| Ok(request.into_response(response));
    // Two keys: which one the client meant is not ours to guess (as with a repeated query
    // parameter).
    if request
        .headers()
        .get_all("Idempotency-Key")
        .nth(1)
        .is_some()
    {
        let response = ApiError::BadRequest("header Idempotency-Key: given more than once".into())
            .error_response();
        return answer(request, response);
    }
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        let response = ApiError::BadRequest(
            "header Idempotency-Key: must be 1 to 255 printable ASCII characters".into(),
        )
        .error_response();
        return answer(request, response);
    }
    let (Some(state), Some(api_key)) = (
        request.app_data::<web::Data<ApiState>>().cloned(),
        request.extensions().get::<ApiKeyId>().copied(),
    ) else {
        return answer(request, ApiError::Unauthorized.error_response());
    };
    let payload = request.take_payload();
    let body = match read_within(request.headers(), payload, state.settings.max_body).await {
        Ok(body) => body,
        Err(error) => return answer(request, error.error_response()),
    };
    // The same request: method, path with query, and body bytes.
    let mut digest = Sha256::new();
    digest.update(request.method().as_str().as_bytes());
    digest.update(b" ");
    // The path and query only: a request line in absolute form, or another protocol version,
    // names the scheme and host too, and is still the same request.
    let target = request
        .uri()
        .path_and_query()
        .map_or_else(|| request.path(), |target| target.as_str());
    digest.update(target.as_bytes());
    digest.update(b"\n");
    digest.update(&body);
    let fingerprint: String = digest
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let consign = &state.consign;
    match consign.begin_idempotent(api_key, &key, &fingerprint).await {
        Ok(IdempotencyBegin::Replay(stored)) => {
            let response =
                HttpResponse::build(StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK))
                    .content_type(stored.content_type)
                    .insert_header(("Idempotent-Replayed", "true"))
                    .body(stored.body);
            answer(request, response)
        }
        Ok(IdempotencyBegin::Mismatch) => {
            answer(request, ApiError::IdempotencyKeyReused.error_response())
        }
        Ok(IdempotencyBegin::InFlight) => {
            answer(request, ApiError::IdempotencyKeyInFlight.error_response())
        }
        Err(error) => answer(request, ApiError::from(error).error_response()),
        Ok(IdempotencyBegin::New) => {
            request
                .extensions_mut()
                .insert(RequestKey(format!("{}:{key}", api_key.0)));
            request.set_payload(Payload::from(body));
            // Until the answer is stored, the claim is released if the request ends without a
            // final answer (an inner error, or an answer that is not final).
            let claim = Claim::new(consign.clone(), api_key, key.clone());
            let response = match next.call(request).await {
                Ok(response) => response.map_into_boxed_body(),
                Err(error) => {
                    claim.release().await;
                    return Err(error);
                }
            };
            let status = response.status();
            if status != StatusCode::OK && status != StatusCode::BAD_REQUEST {
                claim.release().await;
                return Ok(response);
            }
            let (http_request, http_response) = response.into_parts();
            // Whether the answer said ok or no, for the access log and the metrics.
            let outcome = http_response.extensions().get::<Outcome>().copied();
            let content_type = http_response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("application/json")
                .to_owned();
            let bytes = actix_web::body::to_bytes(http_response.into_body())
                .await
                .unwrap_or_default();
            let body = String::from_utf8_lossy(&bytes).into_owned();
            let stored = StoredAnswer {
                status: status.as_u16(),
                content_type: content_type.clone(),
                body: body.clone(),
            };
            match consign.finish_idempotent(api_key, &key, stored).await {
                Ok(()) => claim.keep(),
                Err(error) => {
                    // The work is done; only the replay record is missing. Releasing lets a
                    // retry find the created shipment by its key instead of failing.
                    tracing::warn!(%error, "could not store an idempotent answer");
                    claim.release().await;
                }
            }
            let mut rebuilt = HttpResponse::build(status)
                .content_type(content_type)
                .body(body);
            if let Some(outcome) = outcome {
                rebuilt.extensions_mut().insert(outcome);
            }
            Ok(ServiceResponse::new(http_request, rebuilt))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use actix_web::middleware::from_fn;
    use actix_web::{test, web, App, HttpMessage};
    use consign_ports::*;
    use consign_service::{Consign, Gateways, Ports, StoreSettings};

    use super::*;
    use crate::{ApiState, HttpSettings, RequestMetrics};

    /// A service whose idempotency store expects one claim of `key`, then `releases` releases.
    fn state(releases: usize) -> ApiState {
        let mut idempotency = MockIdempotencyStore::new();
        idempotency
            .expect_begin_request()
            .times(1)
            .returning(|_, _, _, _, _| Ok(IdempotencyBegin::New));
        idempotency
            .expect_release_request()
            .withf(|api_key, key| api_key.0 == 7 && key == "retry-me")
            .times(releases)
            .returning(|_, _| Ok(()));
        idempotency.expect_finish_request().never();
        api_state(idempotency)
    }

    /// The HTTP state of a service on `idempotency`, every other port a mock.
    fn api_state(idempotency: MockIdempotencyStore) -> ApiState {
        let mut clock = MockClock::new();
        clock.expect_now().returning(|| Timestamp(1));
        let consign = Consign::new(
            Ports {
                store: Arc::new(MockOrderStore::new()),
                returns: Arc::new(consign_ports::MockReturnStore::new()),
                keys: Arc::new(MockKeyStore::new()),
                idempotency: Arc::new(idempotency),
                renderer: Arc::new(MockDocumentRenderer::new()),
                mailer: Arc::new(MockMailer::new()),
                clock: Arc::new(clock),
                ids: Arc::new(MockIdSource::new()),
            },
            Gateways::new(),
            StoreSettings::default(),
        );
        ApiState {
            consign,
            settings: Arc::new(HttpSettings::new("/api", "http://localhost", 1024, "s", 60)),
            metrics: web::Data::new(RequestMetrics::default()),
        }
    }

    /// A service whose idempotency store takes every claim as new, keeps the fingerprints it
    /// was given in `seen`, and stores every answer.
    fn recording_state(seen: Arc<std::sync::Mutex<Vec<String>>>) -> ApiState {
        let mut idempotency = MockIdempotencyStore::new();
        idempotency
            .expect_begin_request()
            .returning(move |_, _, fingerprint, _, _| {
                seen.lock().unwrap().push(fingerprint.to_owned());
                Ok(IdempotencyBegin::New)
            });
        idempotency
            .expect_finish_request()
            .returning(|_, _, _, _| Ok(()));
        idempotency.expect_release_request().never();
        api_state(idempotency)
    }

    /// The same request with its target in absolute form (through a proxy, say) is the same
    /// request; and a stored answer still says whether it was ok, for the log and the metrics.
    #[actix_web::test]
    async fn a_request_is_known_by_its_path_and_query_and_its_answer_keeps_its_outcome() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let app = test::init_service(
            App::new()
                .app_data(web::Data::new(recording_state(seen.clone())))
                .service(
                    web::scope("")
                        .wrap(from_fn(idempotency))
                        .wrap(from_fn(signed_in))
                        .route(
                            "/x",
                            web::post().to(|| async {
                                let mut fields = serde_json::Map::new();
                                fields.insert("status".into(), "no".into());
                                fields.insert("msg".into(), "refused".into());
                                crate::answer::Answer::new(StatusCode::OK, fields)
                            }),
                        ),
                ),
        )
        .await;
        for target in ["/x?a=1", "http://localhost:8080/x?a=1"] {
            let request = test::TestRequest::post()
                .uri(target)
                .insert_header(("Idempotency-Key", "k"))
                .set_payload("{}")
                .to_request();
            let response = test::call_service(&app, request).await;
            assert_eq!(response.status(), StatusCode::OK, "{target}");
            assert_eq!(
                response
                    .response()
                    .extensions()
                    .get::<Outcome>()
                    .map(|o| o.0),
                Some(false),
                "{target}: the answer said no"
            );
        }
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0], seen[1], "one request, one fingerprint");
    }

    async fn signed_in(
        request: ServiceRequest,
        next: Next<impl MessageBody>,
    ) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
        request.extensions_mut().insert(ApiKeyId(7));
        next.call(request).await
    }

    async fn failing(
        _: ServiceRequest,
        _: Next<impl MessageBody>,
    ) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
        Err(actix_web::error::ErrorInternalServerError("inner failure"))
    }

    #[actix_web::test]
    async fn an_inner_error_releases_the_key_so_a_retry_runs_again() {
        let app = test::init_service(
            App::new().app_data(web::Data::new(state(1))).service(
                web::scope("")
                    .wrap(from_fn(failing))
                    .wrap(from_fn(idempotency))
                    .wrap(from_fn(signed_in))
                    .route("/x", web::post().to(|| async { "never" })),
            ),
        )
        .await;
        let request = test::TestRequest::post()
            .uri("/x")
            .insert_header(("Idempotency-Key", "retry-me"))
            .to_request();
        let response = test::try_call_service(&app, request).await;
        assert!(response.is_err() || response.unwrap().status().is_server_error());
        // The mock's `times(1)` on release is checked when the state is dropped with the app.
    }

    #[actix_web::test]
    async fn a_503_answer_releases_the_key() {
        let app = test::init_service(
            App::new().app_data(web::Data::new(state(1))).service(
                web::scope("")
                    .wrap(from_fn(idempotency))
                    .wrap(from_fn(signed_in))
                    .route(
                        "/x",
                        web::post().to(|| async { Err::<String, _>(ApiError::NotReady) }),
                    ),
            ),
        )
        .await;
        let request = test::TestRequest::post()
            .uri("/x")
            .insert_header(("Idempotency-Key", "retry-me"))
            .to_request();
        let response = test::call_service(&app, request).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
