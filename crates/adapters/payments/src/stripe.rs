//! Stripe: capture a PaymentIntent (`POST /v1/payment_intents/{id}/capture`) and refund part of
//! what it captured (`POST /v1/refunds`); look up what an intent has captured
//! (`GET /v1/payment_intents/{id}`) and the refunds made on it (`GET /v1/refunds`).
//!
//! Every call carries the attempt's `Idempotency-Key`, so any retry (ours now, or recovery's
//! later) gets the first answer and never captures twice. Only failures that leave the outcome
//! open are retried (network errors, timeouts, 409 key in use, 429, 5xx), with jittered backoff;
//! what is still open after the last retry is answered [`CaptureOutcome::Unknown`], never
//! guessed.

use std::time::Duration;

use async_trait::async_trait;
use consign_domain::PaymentAuthorization;
use consign_ports::{
    CaptureOutcome, CaptureRequest, CapturedTotal, PaymentGateway, RefundLookup, RefundOutcome,
    RefundRequest,
};
use serde_json::Value;

use crate::stripe_units::{from_stripe, to_stripe};

/// The decline code of an amount Stripe's API cannot take in its currency (nothing is sent).
const NOT_REPRESENTABLE: &str = "amount_not_supported_by_provider";

/// Stripe settings.
#[derive(Debug, Clone)]
pub struct StripeConfig {
    /// Secret key (`sk_live_...` / `sk_test_...`).
    pub secret_key: String,
    /// API base URL; `https://api.stripe.com` in production, a loopback stand-in in tests.
    pub api_base: String,
    /// Whether PaymentIntents are authorised with multicapture: then every capture but the one
    /// that completes the order is sent with `final_capture=false`.
    pub multicapture: bool,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Whole-request timeout.
    pub timeout: Duration,
    /// Retries after the first call, for outcomes that are still open.
    pub max_retries: u32,
    /// First backoff; doubled at each retry, jittered, capped at 2 s.
    pub backoff: Duration,
}

impl StripeConfig {
    /// Production defaults for a secret key.
    pub fn new(secret_key: &str) -> Self {
        StripeConfig {
            secret_key: secret_key.to_owned(),
            api_base: "https://api.stripe.com".into(),
            multicapture: false,
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(30),
            max_retries: 2,
            backoff: Duration::from_millis(250),
        }
    }
}

/// The gateway could not be built.
#[derive(Debug, thiserror::Error)]
pub enum StripeError {
    /// The HTTP client could not be created.
    #[error("cannot create the HTTP client: {0}")]
    Client(String),
    /// No secret key.
    #[error("a Stripe secret key is required")]
    NoSecretKey,
}

/// The Stripe gateway (provider name `stripe`).
pub struct StripeGateway {
    config: StripeConfig,
    client: reqwest::Client,
}

/// What one HTTP exchange came to.
enum Exchange<T> {
    /// Definite: stop here.
    Final(T),
    /// Still open: retrying with the same key is safe.
    Open(String),
}

impl StripeGateway {
    /// A gateway with these settings.
    pub fn new(config: StripeConfig) -> Result<Self, StripeError> {
        if config.secret_key.trim().is_empty() {
            return Err(StripeError::NoSecretKey);
        }
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| StripeError::Client(e.to_string()))?;
        Ok(StripeGateway { config, client })
    }

    /// Sends `form` with `key` until the answer is definite (or the retries are used up), each
    /// answer read by `classify`.
    async fn call<T>(
        &self,
        url: &str,
        form: &str,
        key: &str,
        classify: fn(u16, &Value) -> Exchange<T>,
        unknown: fn(String) -> T,
    ) -> T {
        let mut retry = 0;
        loop {
            match self.exchange(url, form, key, classify).await {
                Exchange::Final(outcome) => return outcome,
                Exchange::Open(reason) if retry >= self.config.max_retries => {
                    return unknown(reason);
                }
                Exchange::Open(reason) => {
                    retry += 1;
                    tracing::info!(%key, %reason, retry, "still open; retrying with the same key");
                    tokio::time::sleep(self.backoff(retry)).await;
                }
            }
        }
    }

    async fn exchange<T>(
        &self,
        url: &str,
        form: &str,
        key: &str,
        classify: fn(u16, &Value) -> Exchange<T>,
    ) -> Exchange<T> {
        let sent = self
            .client
            .post(url)
            .bearer_auth(&self.config.secret_key)
            .header("Idempotency-Key", key)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form.to_owned())
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            // Sent or not, processed or not: nobody knows. The key makes a retry safe.
            Err(error) => return Exchange::Open(format!("network: {error}")),
        };
        let status = response.status().as_u16();
        let body: Value = match response.text().await {
            Ok(text) => serde_json::from_str(&text).unwrap_or(Value::Null),
            Err(error) => return Exchange::Open(format!("reading the answer: {error}")),
        };
        classify(status, &body)
    }

    /// A `GET` of one of Stripe's objects, read as JSON; why not, when it did not answer 2xx.
    async fn get_json(&self, url: &str) -> Result<Value, String> {
        let answer = self
            .client
            .get(url)
            .bearer_auth(&self.config.secret_key)
            .send()
            .await;
        let response = match answer {
            Ok(response) if response.status().is_success() => response,
            Ok(response) => return Err(format!("the lookup answered {}", response.status())),
            Err(error) => return Err(format!("network: {error}")),
        };
        match response.text().await {
            Ok(text) => Ok(serde_json::from_str(&text).unwrap_or(Value::Null)),
            Err(error) => Err(format!("reading the lookup: {error}")),
        }
    }

    fn backoff(&self, retry: u32) -> Duration {
        let base = self
            .config
            .backoff
            .saturating_mul(2u32.saturating_pow(retry.saturating_sub(1)));
        let base = base.min(Duration::from_secs(2));
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        // Full jitter in [base/2, base): retries of many shipments do not arrive in step.
        base / 2 + base.mul_f64(f64::from(nanos % 1000) / 2000.0)
    }
}

/// A Stripe error answer's object, its decline code (or code), and its message.
fn error_fields(body: &Value) -> (&Value, String, String) {
    let error = &body["error"];
    let code = error["decline_code"]
        .as_str()
        .or_else(|| error["code"].as_str())
        .unwrap_or("unknown")
        .to_owned();
    let message = error["message"].as_str().unwrap_or("").to_owned();
    (error, code, message)
}

/// Maps one capture answer to an outcome, or to "still open".
fn classify(status: u16, body: &Value) -> Exchange<CaptureOutcome> {
    let (error, code, message) = error_fields(body);
    match status {
        200 => {
            let reference = body["latest_charge"]
                .as_str()
                .or_else(|| body["id"].as_str())
                .unwrap_or("captured")
                .to_owned();
            Exchange::Final(CaptureOutcome::Captured { reference })
        }
        402 => Exchange::Final(CaptureOutcome::Declined { code, message }),
        400 | 404 if error["type"] == "idempotency_error" => Exchange::Final(CaptureOutcome::Unknown {
            reason: format!("provider refused the idempotency key: {message}"),
        }),
        400 | 404 => {
            let message = match code.as_str() {
                "payment_intent_unexpected_state" | "multicapture_not_enabled" => format!(
                    "the payment provider does not allow further captures on this authorisation ({message})"
                ),
                _ => message,
            };
            Exchange::Final(CaptureOutcome::Declined { code, message })
        }
        401 | 403 => Exchange::Final(CaptureOutcome::Unknown {
            reason: "the payment provider refused Consign's credentials; check CONSIGN_STRIPE_SECRET_KEY".into(),
        }),
        409 | 429 | 500..=599 => Exchange::Open(format!("provider answered {status} {code}")),
        other => Exchange::Final(CaptureOutcome::Unknown {
            reason: format!("unexpected answer {other} from the provider"),
        }),
    }
}

#[async_trait]
impl PaymentGateway for StripeGateway {
    fn name(&self) -> &str {
        "stripe"
    }

    fn final_capture_waits_for_others(&self) -> bool {
        self.config.multicapture
    }

    async fn capture(&self, request: CaptureRequest) -> CaptureOutcome {
        let intent: String =
            form_urlencoded::byte_serialize(request.authorization.reference.as_bytes()).collect();
        let url = format!(
            "{}/v1/payment_intents/{intent}/capture",
            self.config.api_base.trim_end_matches('/')
        );
        let amount = match to_stripe(request.amount) {
            Ok(amount) => amount,
            Err(message) => {
                return CaptureOutcome::Declined {
                    code: NOT_REPRESENTABLE.into(),
                    message,
                }
            }
        };
        let form = {
            let mut form = form_urlencoded::Serializer::new(String::new());
            form.append_pair("amount_to_capture", &amount.to_string());
            if self.config.multicapture && !request.final_capture {
                form.append_pair("final_capture", "false");
            }
            form.finish()
        };
        self.call(&url, &form, &request.idempotency_key, classify, |reason| {
            CaptureOutcome::Unknown { reason }
        })
        .await
    }

    async fn refund(&self, request: RefundRequest) -> RefundOutcome {
        let amount = match to_stripe(request.amount) {
            Ok(amount) => amount,
            Err(message) => {
                return RefundOutcome::Declined {
                    code: NOT_REPRESENTABLE.into(),
                    message,
                }
            }
        };
        let url = format!("{}/v1/refunds", self.config.api_base.trim_end_matches('/'));
        let form = {
            let mut form = form_urlencoded::Serializer::new(String::new());
            form.append_pair("payment_intent", &request.authorization.reference);
            form.append_pair("amount", &amount.to_string());
            for (name, value) in &request.metadata {
                form.append_pair(&format!("metadata[{name}]"), value);
            }
            form.finish()
        };
        self.call(
            &url,
            &form,
            &request.idempotency_key,
            classify_refund,
            |reason| RefundOutcome::Unknown { reason },
        )
        .await
    }

    /// `GET /v1/refunds?payment_intent=...`: the refund whose `metadata[consign_key]` is the
    /// attempt's key, if the provider has one.
    async fn find_refund(&self, request: RefundRequest) -> RefundLookup {
        let intent: String =
            form_urlencoded::byte_serialize(request.authorization.reference.as_bytes()).collect();
        let url = format!(
            "{}/v1/refunds?payment_intent={intent}&limit=100",
            self.config.api_base.trim_end_matches('/')
        );
        match self.get_json(&url).await {
            Ok(body) => find_in_list(&body, &request.idempotency_key),
            Err(reason) => RefundLookup::Unknown { reason },
        }
    }

    /// `GET /v1/payment_intents/{id}`: its `amount_received`, everything captured on it (the
    /// partial captures of a multicapture intent added up), and its `latest_charge`.
    async fn captured_total(&self, authorization: &PaymentAuthorization) -> CapturedTotal {
        let intent: String =
            form_urlencoded::byte_serialize(authorization.reference.as_bytes()).collect();
        let url = format!(
            "{}/v1/payment_intents/{intent}",
            self.config.api_base.trim_end_matches('/')
        );
        match self.get_json(&url).await {
            Ok(body) => read_captured_total(&body, authorization),
            Err(reason) => CapturedTotal::Unknown { reason },
        }
    }
}

/// The captured total of a PaymentIntent answer, in the authorisation's currency; unknown when
/// the answer is not that intent or names another currency.
fn read_captured_total(body: &Value, authorization: &PaymentAuthorization) -> CapturedTotal {
    let currency = authorization.amount.currency();
    let unknown = |reason: &str| CapturedTotal::Unknown {
        reason: reason.to_owned(),
    };
    if body["id"].as_str() != Some(authorization.reference.as_str()) {
        return unknown("the lookup answered another object than the payment intent");
    }
    let Some(received) = body["amount_received"].as_i64() else {
        return unknown("the payment intent has no amount_received");
    };
    if let Some(code) = body["currency"].as_str() {
        if !code.eq_ignore_ascii_case(currency.code()) {
            return unknown("the payment intent is in another currency than the order");
        }
    }
    let Some(captured) = from_stripe(received, currency) else {
        return unknown(
            "the payment intent's amount_received is not a whole amount of its currency",
        );
    };
    CapturedTotal::Found {
        captured,
        reference: body["latest_charge"]
            .as_str()
            .unwrap_or(authorization.reference.as_str())
            .to_owned(),
    }
}

/// The refund of a list answer whose metadata names `key`: found, not there, or undecidable
/// (a list with more pages than one request reads).
fn find_in_list(body: &Value, key: &str) -> RefundLookup {
    let Some(refunds) = body["data"].as_array() else {
        return RefundLookup::Unknown {
            reason: "the refund lookup answered no list".into(),
        };
    };
    let found = refunds
        .iter()
        .find(|r| r["metadata"]["consign_key"].as_str() == Some(key));
    match found {
        Some(refund) => {
            let status = refund["status"].as_str().unwrap_or("unknown").to_owned();
            let reference = refund["id"].as_str().unwrap_or("refund").to_owned();
            RefundLookup::Found(match status.as_str() {
                "failed" | "canceled" => RefundOutcome::Declined {
                    code: refund["failure_reason"]
                        .as_str()
                        .unwrap_or(&status)
                        .to_owned(),
                    message: format!("refund {reference} {status}"),
                },
                "succeeded" => RefundOutcome::Refunded { reference, status },
                "pending" | "requires_action" => RefundOutcome::Settling { reference, status },
                other => RefundOutcome::Unknown {
                    reason: format!("refund {reference} in an unexpected state {other:?}"),
                },
            })
        }
        None if body["has_more"] == Value::Bool(false) => RefundLookup::NotFound,
        None => RefundLookup::Unknown {
            reason: "more refunds on the intent than one lookup reads".into(),
        },
    }
}

/// Maps one refund answer: a refund object `succeeded` is refunded; `pending` or
/// `requires_action` is accepted and still settling (it may yet fail, so it is not refunded);
/// `failed` or `canceled` and card or request errors are declines; and what leaves the outcome
/// open (409, 429, 5xx) is retried.
fn classify_refund(status: u16, body: &Value) -> Exchange<RefundOutcome> {
    let (error, code, message) = error_fields(body);
    match status {
        200 => {
            let state = body["status"].as_str().unwrap_or("").to_owned();
            let reference = body["id"].as_str().unwrap_or("refund").to_owned();
            match state.as_str() {
                "succeeded" => Exchange::Final(RefundOutcome::Refunded {
                    reference,
                    status: state,
                }),
                "pending" | "requires_action" => Exchange::Final(RefundOutcome::Settling {
                    reference,
                    status: state,
                }),
                "failed" | "canceled" => Exchange::Final(RefundOutcome::Declined {
                    code: body["failure_reason"]
                        .as_str()
                        .unwrap_or(state.as_str())
                        .to_owned(),
                    message: format!("the payment provider could not refund ({state})"),
                }),
                other => Exchange::Final(RefundOutcome::Unknown {
                    reason: format!("refund in an unexpected state {other:?}"),
                }),
            }
        }
        402 => Exchange::Final(RefundOutcome::Declined { code, message }),
        400 | 404 if error["type"] == "idempotency_error" => {
            Exchange::Final(RefundOutcome::Unknown {
                reason: format!("provider refused the idempotency key: {message}"),
            })
        }
        400 | 404 => Exchange::Final(RefundOutcome::Declined { code, message }),
        401 | 403 => Exchange::Final(RefundOutcome::Unknown {
            reason: "the payment provider refused Consign's credentials; check CONSIGN_STRIPE_SECRET_KEY".into(),
        }),
        409 | 429 | 500..=599 => Exchange::Open(format!("provider answered {status} {code}")),
        other => Exchange::Final(RefundOutcome::Unknown {
            reason: format!("unexpected answer {other} from the provider"),
        }),
    }
}
