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

use crate::stripe_answers::{
    classify_capture, classify_refund, find_in_list, read_captured_total, CaptureSent, Exchange,
    RefundSent,
};
use crate::stripe_units::to_stripe;

/// The decline code of an amount Stripe's API cannot take in its currency (nothing is sent).
const NOT_REPRESENTABLE: &str = "amount_not_supported_by_provider";

/// Stripe settings. Its `Debug` leaves the secret key out.
#[derive(Clone)]
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

impl std::fmt::Debug for StripeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeConfig")
            .field("secret_key", &"(set)")
            .field("api_base", &self.api_base)
            .field("multicapture", &self.multicapture)
            .field("connect_timeout", &self.connect_timeout)
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .field("backoff", &self.backoff)
            .finish()
    }
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
        classify: &(dyn Fn(u16, &Value) -> Exchange<T> + Sync),
        unknown: fn(String) -> T,
        in_flight: fn(String) -> T,
    ) -> T {
        let mut retry = 0;
        loop {
            match self.exchange(url, form, key, classify).await {
                Exchange::Final(outcome) => return outcome,
                Exchange::Open(reason) if retry >= self.config.max_retries => {
                    return unknown(reason);
                }
                Exchange::Busy(reason) if retry >= self.config.max_retries => {
                    return in_flight(reason);
                }
                Exchange::Open(reason) | Exchange::Busy(reason) => {
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
        classify: &(dyn Fn(u16, &Value) -> Exchange<T> + Sync),
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
        let may_stay_open = self.config.multicapture && !request.final_capture;
        let form = {
            let mut form = form_urlencoded::Serializer::new(String::new());
            form.append_pair("amount_to_capture", &amount.to_string());
            if may_stay_open {
                form.append_pair("final_capture", "false");
            }
            form.finish()
        };
        let sent = CaptureSent {
            intent: &request.authorization.reference,
            currency: request.amount.currency(),
            amount,
            may_stay_open,
        };
        self.call(
            &url,
            &form,
            &request.idempotency_key,
            &|status, body| classify_capture(&sent, status, body),
            |reason| CaptureOutcome::Unknown { reason },
            |reason| CaptureOutcome::InFlight { reason },
        )
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
        let sent = RefundSent {
            currency: request.amount.currency(),
            amount,
        };
        self.call(
            &url,
            &form,
            &request.idempotency_key,
            &|status, body| classify_refund(&sent, status, body),
            |reason| RefundOutcome::Unknown { reason },
            // A refund still being processed is looked up by recovery, as any unknown one.
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
        let sent = match to_stripe(request.amount) {
            Ok(amount) => RefundSent {
                currency: request.amount.currency(),
                amount,
            },
            // Never sent, so never made.
            Err(_) => return RefundLookup::NotFound,
        };
        match self.get_json(&url).await {
            Ok(body) => find_in_list(&sent, &body, &request.idempotency_key),
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
