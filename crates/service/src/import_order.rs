//! Import an order with its payment authorisation (Consign's `POST order`).

use consign_domain::{LineId, Order, OrderId, OrderLine};
use consign_ports::{ImportedOrder, OrderImport};

use crate::consign::Consign;
use crate::error::ServiceError;

impl Consign {
    /// Validates and stores an order. The gateway is never contacted on import.
    pub async fn import_order(&self, import: OrderImport) -> Result<ImportedOrder, ServiceError> {
        if let Some(payment) = &import.payment {
            if self.gateways.get(&payment.provider).is_none() {
                return Err(ServiceError::UnknownProvider {
                    provider: payment.provider.clone(),
                    enabled: self.gateways.providers().describe(),
                });
            }
        }
        // The domain checks the order as it will be stored. The store assigns the ids, so
        // the lines are numbered by position here: distinct, as the store's will be.
        let lines = import
            .lines
            .iter()
            .zip(1..)
            .map(|(l, position)| {
                OrderLine::new(
                    LineId(position),
                    l.sku.clone(),
                    l.name.clone(),
                    l.unit_price,
                    l.tax_rate,
                    l.quantity,
                )
            })
            .collect();
        Order::new(
            import.id.unwrap_or(OrderId(0)),
            import.currency,
            lines,
            import.shipping_fee,
            import.payment.clone(),
        )?;
        let now = self.clock.now();
        Ok(self.store.import_order(import, now).await?)
    }
}

#[cfg(test)]
mod tests {
    use consign_domain::*;
    use consign_ports::*;

    use crate::test_support::*;
    use crate::ServiceError;

    fn import(provider: &str, authorized: i64) -> OrderImport {
        OrderImport {
            id: Some(OrderId(83651)),
            currency: sek(),
            customer: Customer::default(),
            lines: vec![LineImport {
                sku: "TSHIRT-M".into(),
                name: "T-shirt".into(),
                unit_price: Money::from_minor(24_950, sek()),
                tax_rate: TaxRate(2500),
                quantity: 2,
            }],
            shipping_fee: Money::from_minor(4_900, sek()),
            payment: Some(PaymentAuthorization {
                provider: provider.into(),
                reference: "auth-83651".into(),
                amount: Money::from_minor(authorized, sek()),
            }),
        }
    }

    #[tokio::test]
    async fn an_authorisation_below_the_total_is_refused_before_storing() {
        let mut store = MockOrderStore::new();
        store.expect_import_order().never();
        let error = service(store, sandbox_named_mock())
            .import_order(import("sandbox", 54_799))
            .await
            .unwrap_err();
        assert!(matches!(
            error,
            ServiceError::InvalidOrder(OrderError::AuthorizationTooSmall { .. })
        ));
    }

    #[tokio::test]
    async fn a_provider_without_a_gateway_is_refused() {
        let mut store = MockOrderStore::new();
        store.expect_import_order().never();
        let error = service(store, sandbox_named_mock())
            .import_order(import("adyen", 54_800))
            .await
            .unwrap_err();
        assert_eq!(
            error,
            ServiceError::UnknownProvider {
                provider: "adyen".into(),
                enabled: "sandbox".into()
            }
        );
        assert_eq!(
            error.to_string(),
            "unknown payment provider \"adyen\"; enabled providers: sandbox"
        );
    }

    #[tokio::test]
    async fn a_valid_order_is_stored() {
        let mut store = MockOrderStore::new();
        store
            .expect_import_order()
            .times(1)
            .returning(|_, _| Err(StoreError::OrderExists(OrderId(83651))));
        let error = service(store, sandbox_named_mock())
            .import_order(import("sandbox", 54_800))
            .await
            .unwrap_err();
        assert_eq!(error, ServiceError::OrderExists(OrderId(83651)));
    }
}
