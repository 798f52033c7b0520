//! What Stripe's answers say, read against what was asked.
//!
//! A success is believed only when it is about what was sent: the PaymentIntent asked for, in
//! the order's currency, in a state the capture leaves it in, having received at least the
//! amount captured (a refund: the amount and currency asked for). Anything else (another
//! object, another currency, a body that is not JSON, a proxy's page) is an unknown outcome,
//! never a capture booked: recovery sends the same key again and, when the answer stays
//! unreadable, flags the capture for an operator, who reads the intent on Stripe.

use consign_domain::{Currency, PaymentAuthorization};
use consign_ports::{CaptureOutcome, CapturedTotal, RefundLookup, RefundOutcome};
use serde_json::Value;

use crate::stripe_units::from_stripe;

/// What one HTTP exchange came to.
pub(crate) enum Exchange<T> {
    /// Definite: stop here.
    Final(T),
    /// Still open: retrying with the same key is safe.
    Open(String),
    /// The provider is still processing an earlier request with the same key (409): retrying
    /// is safe, and if it is still running after the last retry, the first request's answer
    /// will be this one's.
    Busy(String),
}

/// A capture as sent: what its answer must be about.
pub(crate) struct CaptureSent<'a> {
    /// The PaymentIntent captured.
    pub intent: &'a str,
    /// The order's currency.
    pub currency: Currency,
    /// `amount_to_capture`, in Stripe's units.
    pub amount: i64,
    /// Sent with `final_capture=false`: the intent may stay open for more captures.
    pub may_stay_open: bool,
}

/// A refund as sent: what its answer (or a refund found later) must be about.
pub(crate) struct RefundSent {
    /// The order's currency.
    pub currency: Currency,
    /// `amount`, in Stripe's units.
    pub amount: i64,
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

/// Whether `body` states `currency` (Stripe writes codes in lower case).
fn in_currency(body: &Value, currency: Currency) -> bool {
    body["currency"]
        .as_str()
        .is_some_and(|code| code.eq_ignore_ascii_case(currency.code()))
}

/// Maps one capture answer to an outcome, or to "still open".
pub(crate) fn classify_capture(
    sent: &CaptureSent<'_>,
    status: u16,
    body: &Value,
) -> Exchange<CaptureOutcome> {
    let (error, code, message) = error_fields(body);
    match status {
        200 => Exchange::Final(match captured_by(sent, body) {
            Ok(reference) => CaptureOutcome::Captured { reference },
            Err(reason) => CaptureOutcome::Unknown {
                reason: format!("the provider answered 200, but {reason}"),
            },
        }),
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
        409 => Exchange::Busy(format!(
            "provider answered 409 {code}: a request with this key is still being processed"
        )),
        429 | 500..=599 => Exchange::Open(format!("provider answered {status} {code}")),
        other => Exchange::Final(CaptureOutcome::Unknown {
            reason: format!("unexpected answer {other} from the provider"),
        }),
    }
}

/// The capture's reference (the intent's latest charge, else the intent), when a 200's body
/// is the intent captured as asked; else what is wrong with it.
fn captured_by(sent: &CaptureSent<'_>, body: &Value) -> Result<String, String> {
    if body["object"] != "payment_intent" || body["id"].as_str() != Some(sent.intent) {
        return Err(format!(
            "its answer is not the payment intent {}",
            sent.intent
        ));
    }
    if !in_currency(body, sent.currency) {
        return Err(format!(
            "the payment intent is not in {} (it states {})",
            sent.currency.code(),
            body["currency"]
        ));
    }
    let state = body["status"].as_str().unwrap_or("");
    let left_as_asked = state == "succeeded" || (sent.may_stay_open && state == "requires_capture");
    if !left_as_asked {
        return Err(format!("the payment intent is {state:?} after the capture"));
    }
    match body["amount_received"].as_i64() {
        Some(received) if received >= sent.amount => {}
        received => {
            return Err(format!(
                "the payment intent received {} in all, less than the {} captured",
                received.map_or_else(|| "nothing stated".to_owned(), |r| r.to_string()),
                sent.amount
            ))
        }
    }
    Ok(body["latest_charge"]
        .as_str()
        .unwrap_or(sent.intent)
        .to_owned())
}

/// Maps one refund answer: a refund object `succeeded` is refunded; `pending` or
/// `requires_action` is accepted and still settling (it may yet fail, so it is not refunded);
/// `failed` or `canceled` and card or request errors are declines; and what leaves the outcome
/// open (409, 429, 5xx) is retried. A 200 that is not the refund asked for (another amount or
/// currency, not a refund) is unknown.
pub(crate) fn classify_refund(
    sent: &RefundSent,
    status: u16,
    body: &Value,
) -> Exchange<RefundOutcome> {
    let (error, code, message) = error_fields(body);
    match status {
        200 => Exchange::Final(read_refund(sent, body)),
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

/// A refund object, answered or found, as an outcome: by its status, once it is the refund
/// asked for.
fn read_refund(sent: &RefundSent, refund: &Value) -> RefundOutcome {
    let reference = refund["id"].as_str().unwrap_or("refund").to_owned();
    if refund["object"] != "refund" {
        return RefundOutcome::Unknown {
            reason: "the provider's answer is not a refund".into(),
        };
    }
    if !in_currency(refund, sent.currency) || refund["amount"].as_i64() != Some(sent.amount) {
        return RefundOutcome::Unknown {
            reason: format!(
                "refund {reference} states {} {}, not the {} {} asked",
                refund["amount"],
                refund["currency"],
                sent.amount,
                sent.currency.code()
            ),
        };
    }
    let state = refund["status"].as_str().unwrap_or("").to_owned();
    match state.as_str() {
        "succeeded" => RefundOutcome::Refunded {
            reference,
            status: state,
        },
        "pending" | "requires_action" => RefundOutcome::Settling {
            reference,
            status: state,
        },
        "failed" | "canceled" => RefundOutcome::Declined {
            code: refund["failure_reason"]
                .as_str()
                .unwrap_or(state.as_str())
                .to_owned(),
            message: format!("refund {reference} {state}: the payment provider could not refund"),
        },
        other => RefundOutcome::Unknown {
            reason: format!("refund {reference} in an unexpected state {other:?}"),
        },
    }
}

/// The refund of a list answer whose metadata names `key`: found, not there, or undecidable
/// (a list with more pages than one request reads).
pub(crate) fn find_in_list(sent: &RefundSent, body: &Value, key: &str) -> RefundLookup {
    let Some(refunds) = body["data"].as_array() else {
        return RefundLookup::Unknown {
            reason: "the refund lookup answered no list".into(),
        };
    };
    let found = refunds
        .iter()
        .find(|r| r["metadata"]["consign_key"].as_str() == Some(key));
    match found {
        Some(refund) => RefundLookup::Found(read_refund(sent, refund)),
        None if body["has_more"] == Value::Bool(false) => RefundLookup::NotFound,
        None => RefundLookup::Unknown {
            reason: "more refunds on the intent than one lookup reads".into(),
        },
    }
}

/// The captured total of a PaymentIntent answer, in the authorisation's currency; unknown when
/// the answer is not that intent or does not state that currency.
pub(crate) fn read_captured_total(
    body: &Value,
    authorization: &PaymentAuthorization,
) -> CapturedTotal {
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
    if !in_currency(body, currency) {
        return unknown("the payment intent is not stated in the order's currency");
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
