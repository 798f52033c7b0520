//! Import an order with its payment authorisation (Consign's `POST order`).

use consign_domain::{LineId, Money, Order, OrderId, OrderLine};
use consign_ports::{ImportedOrder, OrderImport};

use crate::consign::Consign;
use crate::error::ServiceError;

impl Consign {
    /// Validates and stores an order. The gateway is never contacted on import.
    pub async fn import_order(&self, import: OrderImport) -> Result<ImportedOrder, ServiceError> {
        if let Some(payment) = &import.payment {
            if self.gateways.get(&payment.provider).is_none() {
                return Err(ServiceError::UnknownProvider(payment.provider.clone()));
            }
        }
        // The domain checks the order as it will be stored; ids are placeholders here.
        let draft = Order {
            id: import.id.unwrap_or(OrderId(0)),
            currency: import.currency,
            lines: import
                .lines
                .iter()
                .map(|l| OrderLine {
                    line_id: LineId(0),
                    sku: l.sku.clone(),
                    name: l.name.clone(),
                    unit_price: l.unit_price,
                    tax_rate: l.tax_rate,
                    quantity: l.quantity,
                    allocated: 0,
                    in_capture: 0,
                })
                .collect(),
            shipping_fee: import.shipping_fee,
            payment: import.payment.clone(),
            committed: Money::zero(import.currency),
            shipping_fee_committed: false,
            next_shipment_number: 1,
        };
        draft.validate_new()?;
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
        assert_eq!(error, ServiceError::UnknownProvider("adyen".into()));
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
