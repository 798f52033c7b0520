//! # consign-payments
//!
//! Payment gateways behind [`consign_ports::PaymentGateway`]:
//! - [`StripeGateway`]: captures Stripe PaymentIntents over HTTP with an `Idempotency-Key` on
//!   every call, timeouts, and bounded retries only where a retry is safe;
//! - [`SandboxGateway`]: an in-process, deterministic stand-in that **moves no money**, for the
//!   embedded default and demos.
#![deny(missing_docs)]

mod sandbox;
mod stripe;
mod stripe_answers;
mod stripe_units;

pub use sandbox::{SandboxConfig, SandboxGateway};
pub use stripe::{StripeConfig, StripeError, StripeGateway};
