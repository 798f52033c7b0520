//! Builders shared by the service's unit tests.

use std::sync::Arc;

use consign_domain::*;
use consign_ports::*;

use crate::{Consign, Gateways};

pub(crate) use crate::log_capture::logged;

pub(crate) fn sek() -> Currency {
    "SEK".parse().unwrap()
}

pub(crate) fn shipment_id() -> ShipmentId {
    ShipmentId {
        order: OrderId(83651),
        number: 1,
    }
}

pub(crate) fn view(state: ShipmentState) -> ShipmentView {
    ShipmentView {
        id: shipment_id(),
        state,
        lines: vec![ShipmentLine {
            line_id: LineId(17),
            quantity: 1,
        }],
        details: ShipmentDetails::default(),
        capture_amount: None,
        carries_shipping_fee: false,
        capture_reference: None,
        created_at: Timestamp(0),
        shipped_at: None,
        needs_review: false,
        refunded: Money::zero(sek()),
    }
}

/// A settle that found this attempt's outcome as the shipment shows it: captured with it, or
/// not captured.
pub(crate) fn settled(state: ShipmentState) -> CaptureSettled {
    CaptureSettled {
        shipment: view(state),
        attempt_captured: state == ShipmentState::Captured,
    }
}

/// `shipment` with its order: one line of `quantity` T-shirts, no payment.
pub(crate) fn listing_of(shipment: ShipmentView, quantity: u32) -> ShipmentListing {
    let order = Order::new(
        OrderId(83651),
        sek(),
        vec![OrderLine::new(
            LineId(17),
            "TSHIRT",
            "T-shirt",
            Money::from_minor(24_950, sek()),
            TaxRate(2500),
            quantity,
        )],
        Money::zero(sek()),
        None,
    )
    .unwrap();
    ShipmentListing {
        order: std::sync::Arc::new(OrderView {
            order,
            customer_id: 4,
            customer: Customer::default(),
            created_at: Timestamp(0),
            shipments: vec![],
            refunded: Money::zero(sek()),
            returned: vec![],
        }),
        shipment,
    }
}

pub(crate) fn attempt(amount: i64) -> CaptureAttempt {
    CaptureAttempt {
        shipment: shipment_id(),
        authorization: PaymentAuthorization {
            provider: "sandbox".into(),
            reference: "auth-83651".into(),
            amount: Money::from_minor(74_700, sek()),
        },
        amount: Money::from_minor(amount, sek()),
        idempotency_key: "key-83651-1-1".into(),
        final_capture: false,
        created_at: Timestamp(0),
        changes_waiting: false,
    }
}

pub(crate) fn reservation(state: ShipmentState, amount: i64) -> Reservation {
    Reservation {
        shipment: view(state),
        attempt: Some(attempt(amount)),
    }
}

pub(crate) fn sandbox_named_mock() -> MockPaymentGateway {
    let mut gateway = MockPaymentGateway::new();
    gateway.expect_name().return_const("sandbox".to_owned());
    gateway
}

pub(crate) fn service(store: MockOrderStore, gateway: MockPaymentGateway) -> Consign {
    service_with_keys(store, gateway, MockKeyStore::new())
}

pub(crate) fn service_with_keys(
    store: MockOrderStore,
    gateway: MockPaymentGateway,
    keys: MockKeyStore,
) -> Consign {
    service_with(store, MockReturnStore::new(), gateway, keys)
}

pub(crate) fn service_with(
    store: MockOrderStore,
    returns: MockReturnStore,
    gateway: MockPaymentGateway,
    keys: MockKeyStore,
) -> Consign {
    service_with_mailer(
        store,
        returns,
        gateway,
        keys,
        MockMailer::new(),
        fixed_clock(),
    )
}

/// A clock that always answers 1,000,000 ms.
pub(crate) fn fixed_clock() -> MockClock {
    let mut clock = MockClock::new();
    clock.expect_now().return_const(Timestamp(1_000_000));
    clock
}

/// Every port a mock, with this clock.
pub(crate) fn ports_with_clock(clock: MockClock) -> crate::Ports {
    let mut ids = MockIdSource::new();
    ids.expect_random_token().returning(|| "t0k3n".to_owned());
    crate::Ports {
        store: Arc::new(MockOrderStore::new()),
        returns: Arc::new(MockReturnStore::new()),
        keys: Arc::new(MockKeyStore::new()),
        idempotency: Arc::new(MockIdempotencyStore::new()),
        renderer: Arc::new(MockDocumentRenderer::new()),
        mailer: Arc::new(MockMailer::new()),
        clock: Arc::new(clock),
        ids: Arc::new(ids),
    }
}

pub(crate) fn service_with_mailer(
    store: MockOrderStore,
    returns: MockReturnStore,
    gateway: MockPaymentGateway,
    keys: MockKeyStore,
    mailer: MockMailer,
    clock: MockClock,
) -> Consign {
    let mut ports = ports_with_clock(clock);
    ports.store = Arc::new(store);
    ports.returns = Arc::new(returns);
    ports.keys = Arc::new(keys);
    ports.mailer = Arc::new(mailer);
    Consign::new(
        ports,
        Gateways::new().with(Arc::new(gateway)),
        crate::StoreSettings::default(),
    )
}

/// A return of 249.50 refunded in `state`, completed once refunded.
pub(crate) fn return_view(state: RefundState) -> ReturnView {
    let money = |minor| Money::from_minor(minor, sek());
    ReturnView {
        id: ReturnId(5397),
        shipment: shipment_id(),
        shipment_row_id: 1,
        customer_id: 4,
        completed: state == RefundState::Refunded,
        return_to_stock: true,
        comment: String::new(),
        lines: vec![],
        shipping: money(0),
        handling: money(0),
        voucher: money(0),
        return_cost: money(0),
        tax: money(4_990),
        refund: money(24_950),
        refund_state: state,
        refund_reference: None,
        decline: None,
        credit_note: None,
        created_at: Timestamp(0),
    }
}

/// The pending refund attempt of [`return_view`]'s return.
pub(crate) fn refund_attempt() -> RefundAttempt {
    RefundAttempt {
        return_id: ReturnId(5397),
        order: OrderId(83651),
        authorization: attempt(0).authorization,
        amount: Money::from_minor(24_950, sek()),
        idempotency_key: "refund-key-1".into(),
        created_at: Timestamp(0),
        accepted: None,
    }
}
