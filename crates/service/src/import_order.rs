//! Import an order with its payment authorisation (Consign's `POST order`).

use consign_domain::{LineId, Order, OrderId, OrderLine};
use consign_ports::{ImportedOrder, OrderImport};

/// Whether `stored`, the order the request's key imported, is what `import` asks for: the same
/// id (when one is given), currency, shipping fee, payment, and lines in the same order.
fn same_import(import: &OrderImport, stored: &Order) -> bool {
    import.id.is_none_or(|id| id == stored.id())
        && import.currency == stored.currency()
        && import.shipping_fee == stored.shipping_fee()
        && import.payment.as_ref() == stored.payment()
        && import.lines.len() == stored.lines().len()
        && import
            .lines
            .iter()
            .zip(stored.lines())
            .all(|(asked, kept)| {
                asked.sku == kept.sku()
                    && asked.quantity == kept.quantity()
                    && asked.unit_price == kept.unit_price()
                    && asked.tax_rate == kept.tax_rate()
            })
}

use crate::consign::Consign;
use crate::error::ServiceError;

impl Consign {
    /// Validates and stores an order. The gateway is never contacted on import.
    ///
    /// With a `request_key` (the client's idempotency key, scoped to its API key) a retry of an
    /// import that already stored its order (its answer lost with a process) is answered with
    /// that order, never a second one with the same authorisation; another import with the key
    /// is [`ServiceError::IdempotencyKeyReused`].
    pub async fn import_order(
        &self,
        import: OrderImport,
        request_key: Option<String>,
    ) -> Result<ImportedOrder, ServiceError> {
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
        let keyed = request_key.is_some();
        let imported = self
            .store
            .import_order(import.clone(), request_key, now)
            .await?;
        if keyed && !same_import(&import, &imported.order) {
            return Err(ServiceError::IdempotencyKeyReused);
        }
        Ok(imported)
    }
}

#[cfg(test)]
mod keyed_tests {
    use consign_domain::*;
    use consign_ports::*;

    use crate::test_support::*;
    use crate::ServiceError;

    fn import(quantity: u32) -> OrderImport {
        OrderImport {
            id: None,
            currency: sek(),
            customer: Customer::default(),
            lines: vec![LineImport {
                sku: "TSHIRT".into(),
                name: "T-shirt".into(),
                unit_price: Money::from_minor(24_950, sek()),
                tax_rate: TaxRate(2500),
                quantity,
            }],
            shipping_fee: Money::zero(sek()),
            payment: None,
        }
    }

    /// The order a key imported, found for a retry: answered when it is what the retry asks,
    /// refused as a reused key when the retry asks for something else.
    #[tokio::test]
    async fn an_import_retried_with_its_key_is_answered_only_with_the_order_it_asked_for() {
        for (asked, answered) in [(2, Ok(())), (3, Err(ServiceError::IdempotencyKeyReused))] {
            let mut store = MockOrderStore::new();
            store
                .expect_import_order()
                .withf(|_, key, _| key.as_deref() == Some("7:k"))
                .times(1)
                .returning(|_, _, _| {
                    let kept = import(2);
                    Ok(ImportedOrder {
                        order: Order::new(
                            OrderId(12),
                            sek(),
                            vec![OrderLine::new(
                                LineId(40),
                                "TSHIRT",
                                "T-shirt",
                                kept.lines[0].unit_price,
                                TaxRate(2500),
                                2,
                            )],
                            Money::zero(sek()),
                            None,
                        )
                        .unwrap(),
                        customer_id: 3,
                    })
                });
            let got = service(store, sandbox_named_mock())
                .import_order(import(asked), Some("7:k".into()))
                .await
                .map(|imported| assert_eq!(imported.order.id(), OrderId(12)));
            assert_eq!(got, answered, "{asked} units asked");
        }
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
            .import_order(import("sandbox", 54_799), None)
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
            .import_order(import("adyen", 54_800), None)
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

    /// A valid import reaches the store as given (the mock checks what it is handed), and the
    /// store's refusal is what the caller is told.
    #[tokio::test]
    async fn a_valid_order_goes_to_the_store_as_given_and_its_refusal_is_passed_on() {
        let mut store = MockOrderStore::new();
        store
            .expect_import_order()
            .withf(|order, key, _| *order == import("sandbox", 54_800) && key.is_none())
            .times(1)
            .returning(|_, _, _| Err(StoreError::OrderExists(OrderId(83651))));
        let error = service(store, sandbox_named_mock())
            .import_order(import("sandbox", 54_800), None)
            .await
            .unwrap_err();
        assert_eq!(error, ServiceError::OrderExists(OrderId(83651)));
    }
}
