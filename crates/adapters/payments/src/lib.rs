//! # consign-payments
//!
//! Payment gateways behind [`consign_ports::PaymentGateway`]. For now: the [`SandboxGateway`],
//! an in-process, deterministic stand-in for a card processor that **moves no money**. It backs
//! the embedded default and demos.
#![deny(missing_docs)]

mod sandbox;

pub use sandbox::{SandboxConfig, SandboxGateway};
