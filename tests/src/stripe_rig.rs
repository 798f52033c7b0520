//! The service with the real store on a throwaway database and the real Stripe adapter against
//! the provider stand-in, with a clock the test moves: for captures whose outcome stays unknown
//! (past the provider's key window, or until an operator settles them).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use consign_db::{Database, DbConfig};
use consign_domain::*;
use consign_payments::{StripeConfig, StripeGateway};
use consign_ports::*;
use consign_provider_stand_in::{StandIn, SECRET_KEY};
use consign_service::{Consign, Gateways, ServiceError, StoreSettings};

use crate::{real_ports, throwaway, Backend};

/// A clock the test moves.
pub struct MovableClock(AtomicI64);

impl Clock for MovableClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

impl MovableClock {
    /// Moves the clock `millis` forward.
    pub fn forward(&self, millis: i64) {
        self.0.fetch_add(millis, Ordering::SeqCst);
    }
}

/// The service on a throwaway database, with the Stripe adapter against the stand-in.
pub struct Rig {
    /// The service.
    pub consign: Consign,
    /// The provider stand-in.
    pub stand_in: StandIn,
    /// The service's clock.
    pub clock: Arc<MovableClock>,
    /// The store the service writes (for its dump).
    pub database: Database,
    _db: consign_db::testing::Throwaway,
}

/// A rig on `backend`, Stripe with multicapture, whose requests time out after 500 ms.
pub async fn rig(backend: Backend) -> Rig {
    rig_timing_out_after(backend, Duration::from_millis(500)).await
}

/// [`rig`] with Stripe's requests timing out after `timeout`.
pub async fn rig_timing_out_after(backend: Backend, timeout: Duration) -> Rig {
    let db = throwaway(backend);
    let database = Database::open(&DbConfig::from_url(&db.url)).unwrap();
    let stand_in = StandIn::start().await;
    let mut config = StripeConfig::new(SECRET_KEY);
    config.api_base = stand_in.url.clone();
    config.multicapture = true;
    config.timeout = timeout;
    config.backoff = Duration::from_millis(5);
    let stripe = Arc::new(StripeGateway::new(config).unwrap());
    let clock = Arc::new(MovableClock(AtomicI64::new(1_800_000_000_000)));
    let consign = Consign::new(
        real_ports(&database, "consign-test-mail", clock.clone()),
        Gateways::new().with(stripe),
        StoreSettings::default(),
    );
    Rig {
        consign,
        stand_in,
        clock,
        database,
        _db: db,
    }
}

/// An order of two lines (100.00 and 50.00, no fee) paid by the multicapture intent `pi_kw`.
pub async fn order(rig: &Rig) -> (OrderId, LineId, LineId) {
    let sek: Currency = "SEK".parse().unwrap();
    rig.stand_in.authorize("pi_kw", 15_000, "SEK", true);
    let line = |sku: &str, minor| LineImport {
        sku: sku.into(),
        name: sku.into(),
        unit_price: Money::from_minor(minor, sek),
        tax_rate: TaxRate(2500),
        quantity: 1,
    };
    let order = rig
        .consign
        .import_order(
            OrderImport {
                id: Some(OrderId(71)),
                currency: sek,
                customer: Customer {
                    email: "a@example.com".into(),
                    ..Customer::default()
                },
                lines: vec![line("A", 10_000), line("B", 5_000)],
                shipping_fee: Money::zero(sek),
                payment: Some(PaymentAuthorization {
                    provider: "stripe".into(),
                    reference: "pi_kw".into(),
                    amount: Money::from_minor(15_000, sek),
                }),
            },
            None,
        )
        .await
        .unwrap()
        .order;
    let lines = order.lines();
    (order.id(), lines[0].line_id(), lines[1].line_id())
}

/// Ships one unit of `line`, captured.
pub async fn ship(rig: &Rig, order: OrderId, line: LineId) -> Result<ShipmentView, ServiceError> {
    let request = ShipmentRequest {
        lines: vec![ShipmentLine {
            line_id: line,
            quantity: 1,
        }],
        capture: true,
        deduct_previous_costs: false,
    };
    rig.consign
        .create_shipment(order, request, ShipmentDetails::default(), None)
        .await
}

/// The shipment's state (`None` once voided or deleted: no longer listed).
pub async fn state_of(rig: &Rig, shipment: ShipmentId) -> Option<ShipmentState> {
    rig.consign
        .get_shipment(shipment, None)
        .await
        .ok()
        .map(|listing| listing.shipment.state)
}

/// A whole return of `shipment` with its refund.
pub fn whole_return(shipment: ShipmentId) -> consign_service::ReturnAsk {
    consign_service::ReturnAsk {
        shipment,
        lines: None,
        shipping: consign_service::CostAsk::None,
        handling: consign_service::CostAsk::None,
        voucher: consign_service::CostAsk::None,
        return_cost: None,
        refund: true,
        send_email: false,
        return_to_stock: None,
        comment: String::new(),
    }
}
