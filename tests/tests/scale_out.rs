//! Several instances on one database, and the connection pool during gateway calls.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use async_trait::async_trait;
use consign_db::{Database, DbConfig};
use consign_domain::*;
use consign_ports::*;
use consign_server::SystemClock;
use consign_service::{Consign, Gateways, StoreSettings};
use consign_tests::*;
use serde_json::json;

/// A gateway double that looks at the pool whenever it is called.
struct InspectingGateway {
    database: Database,
    in_use_at_call: Mutex<Vec<u32>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    latency: Duration,
}

#[async_trait]
impl PaymentGateway for InspectingGateway {
    fn name(&self) -> &str {
        "sandbox"
    }

    async fn capture(&self, request: CaptureRequest) -> CaptureOutcome {
        self.in_use_at_call
            .lock()
            .unwrap()
            .push(self.database.connections_in_use());
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(self.latency).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        CaptureOutcome::Captured {
            reference: format!("ch_{}", request.idempotency_key),
        }
    }

    async fn refund(&self, request: RefundRequest) -> RefundOutcome {
        // These tests make no refunds; a call would be a bug in them.
        RefundOutcome::Declined {
            code: "not_in_this_test".into(),
            message: format!("unexpected refund {}", request.idempotency_key),
        }
    }
}

fn service(database: &Database, gateway: Arc<InspectingGateway>) -> Consign {
    Consign::new(
        real_ports(database, "consign-test-mail", Arc::new(SystemClock)),
        Gateways::new().with(gateway),
        StoreSettings::default(),
    )
}

fn import(units: u32) -> OrderImport {
    let sek: Currency = "SEK".parse().unwrap();
    OrderImport {
        id: Some(OrderId(1)),
        currency: sek,
        customer: Customer {
            email: "a@example.com".into(),
            ..Customer::default()
        },
        lines: vec![LineImport {
            sku: "S".into(),
            name: "N".into(),
            unit_price: Money::from_minor(1_000, sek),
            tax_rate: TaxRate(2500),
            quantity: units,
        }],
        shipping_fee: Money::zero(sek),
        payment: Some(PaymentAuthorization {
            provider: "sandbox".into(),
            reference: "auth".into(),
            amount: Money::from_minor(1_000 * i64::from(units), sek),
        }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_pooled_connection_is_held_while_the_gateway_is_called() {
    for backend in backends() {
        let db = throwaway(backend);
        let mut config = DbConfig::from_url(&db.url);
        config.pool_size = 2;
        let database = Database::open(&config).unwrap();
        let gateway = Arc::new(InspectingGateway {
            database: database.clone(),
            in_use_at_call: Mutex::new(Vec::new()),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            latency: Duration::from_millis(300),
        });
        let consign = service(&database, gateway.clone());
        let order = consign.import_order(import(20), None).await.unwrap().order;
        let line = order.lines()[0].line_id();
        let request = move || ShipmentRequest {
            lines: vec![ShipmentLine {
                line_id: line,
                quantity: 1,
            }],
            capture: true,
            deduct_previous_costs: false,
        };
        // One at a time: the pool is idle whenever the provider is being called.
        for _ in 0..3 {
            consign
                .create_shipment(order.id(), request(), ShipmentDetails::default(), None)
                .await
                .unwrap();
        }
        assert_eq!(
            *gateway.in_use_at_call.lock().unwrap(),
            vec![0, 0, 0],
            "{backend:?}"
        );
        // Sixteen at once on a pool of two: more captures are in flight than connections exist,
        // which is only possible if none of them holds one.
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let consign = consign.clone();
                tokio::spawn(async move {
                    consign
                        .create_shipment(OrderId(1), request(), ShipmentDetails::default(), None)
                        .await
                })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap().unwrap().state, ShipmentState::Captured);
        }
        let max = gateway.max_in_flight.load(Ordering::SeqCst);
        assert!(
            max > 2,
            "{backend:?}: at most {max} captures were in flight with a pool of 2"
        );
    }
}

#[test]
fn two_instances_on_one_postgresql_database_keep_every_invariant() {
    if !backends().contains(&Backend::Postgres) {
        return;
    }
    let db = throwaway(Backend::Postgres);
    // Both start at once on an empty database: migrations take turns.
    let (a, b) = thread::scope(|s| {
        let a = s.spawn(|| spawn_app_on(Backend::Postgres, &db.url, &[]));
        let b = s.spawn(|| spawn_app_on(Backend::Postgres, &db.url, &[]));
        (a.join().unwrap(), b.join().unwrap())
    });
    let apps = [Arc::new(a), Arc::new(b)];
    let mut lines = Vec::new();
    for id in 1..=5 {
        let order = json!({"order": id, "currency": "SEK", "email": "x@example.com",
            "products": [{"sku": "A", "qty": 4, "price": "10.00", "vat": "25"}, {"sku": "B", "qty": 3, "price": "5.50", "vat": "12"}],
            "shippingValue": "3.00", "payment": {"provider": "sandbox", "reference": format!("auth-{id}"), "amount": "59.50"}});
        lines.push(apps[id as usize % 2].import(&order));
    }
    let handles: Vec<_> = (0..80usize)
        .map(|i| {
            let app = apps[i % 2].clone();
            let body =
                json!({"order": 1 + i % 5, "products": {lines[i % 5][i % 2].clone(): 1 + i % 2}});
            thread::spawn(move || app.post("/shipments", &body))
        })
        .collect();
    for reply in handles.into_iter().map(|h| h.join().unwrap()) {
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    // What the storm left of each order (B's units come two at a time, one of its three is
    // always left), shipped through the other instance: the last shipment of each order takes
    // the exact remainder of its total.
    for id in 1..=5 {
        let order = apps[0].order(id);
        for line in order["products"].as_array().unwrap() {
            assert!(
                line["qtyAllocated"].as_u64() <= line["qty"].as_u64(),
                "over-allocated: {line}"
            );
            let left = line["qtyShippable"].as_u64().unwrap();
            if left > 0 {
                let body =
                    json!({"order": id, "products": {line["lineId"].as_str().unwrap(): left}});
                let reply = apps[1].post("/shipments", &body);
                assert_eq!(reply.json()["status"], "ok", "{}", reply.body);
            }
        }
    }
    let mut captured_in_shipments = 0i64;
    for id in 1..=5 {
        let order = apps[0].order(id);
        for s in order["shipments"].as_array().unwrap() {
            let text = s["captureValue"].to_string();
            let (whole, cents) = text.split_once('.').unwrap();
            captured_in_shipments +=
                whole.parse::<i64>().unwrap() * 100 + cents.parse::<i64>().unwrap();
        }
        assert!(
            order["products"]
                .as_array()
                .unwrap()
                .iter()
                .all(|l| l["qtyShippable"] == json!(0)),
            "order {id} left unshipped: {order}"
        );
        assert_eq!(
            order["capturedValue"].to_string(),
            "59.50",
            "fully shipped order {id}"
        );
    }
    let at_gateways = apps[0].sandbox.captured_minor() + apps[1].sandbox.captured_minor();
    assert_eq!(
        captured_in_shipments, at_gateways,
        "gateways and shipments agree across instances"
    );
}
