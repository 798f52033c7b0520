//! The payment gateways an instance has, by the provider name orders carry.

use std::sync::Arc;

use consign_ports::PaymentGateway;

/// Gateways by provider name (`sandbox`, `stripe`).
#[derive(Clone, Default)]
pub struct Gateways {
    gateways: Vec<Arc<dyn PaymentGateway>>,
}

impl Gateways {
    /// No gateways.
    pub fn new() -> Self {
        Gateways::default()
    }

    /// Adds a gateway under its own [`PaymentGateway::name`].
    pub fn with(mut self, gateway: Arc<dyn PaymentGateway>) -> Self {
        self.gateways.push(gateway);
        self
    }

    /// The gateway for `provider`.
    pub fn get(&self, provider: &str) -> Option<&Arc<dyn PaymentGateway>> {
        self.gateways.iter().find(|g| g.name() == provider)
    }

    /// The providers captures may use: exactly the configured gateways.
    pub fn providers(&self) -> consign_domain::Providers {
        consign_domain::Providers::only(self.gateways.iter().map(|g| g.name().to_owned()))
    }

    /// The names of the configured gateways.
    pub fn names(&self) -> Vec<String> {
        self.gateways.iter().map(|g| g.name().to_owned()).collect()
    }
}
