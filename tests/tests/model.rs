//! Model-based property test of the shipment lifecycle: random sequences of create (capture on
//! and off), complete, capture, update, delete and return (with and without a refund) run
//! against the real service (in-memory SQLite
//! store, sandbox gateway with declining authorisations), compared after every step with a model
//! small enough to be obviously right.

use std::collections::BTreeMap;
use std::sync::Arc;

use consign_db::testing::Throwaway;
use consign_db::Database;
use consign_domain::*;
use consign_payments::{SandboxConfig, SandboxGateway};
use consign_ports::*;
use consign_server::SystemClock;
use consign_service::{Consign, Gateways, ServiceError, StoreSettings};
use consign_tests::real_ports;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Command {
    Create {
        lines: Vec<(usize, u32)>,
        capture: bool,
    },
    Complete {
        pick: usize,
    },
    Capture {
        pick: usize,
    },
    Update {
        pick: usize,
        line: usize,
        quantity: u32,
    },
    Delete {
        pick: usize,
    },
    Return {
        pick: usize,
        line: usize,
        quantity: u32,
        refund: bool,
    },
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        4 => (prop::sample::subsequence(vec![0usize, 1], 1..=2), 1u32..4, 1u32..4, any::<bool>())
            .prop_map(|(lines, a, b, capture)| Command::Create {
                lines: lines.into_iter().map(|l| (l, if l == 0 { a } else { b })).collect(),
                capture,
            }),
        2 => any::<usize>().prop_map(|pick| Command::Complete { pick }),
        1 => any::<usize>().prop_map(|pick| Command::Capture { pick }),
        2 => (any::<usize>(), 0usize..2, 0u32..4).prop_map(|(pick, line, quantity)| Command::Update { pick, line, quantity }),
        1 => any::<usize>().prop_map(|pick| Command::Delete { pick }),
        2 => (any::<usize>(), 0usize..2, 1u32..3, any::<bool>()).prop_map(|(pick, line, quantity, refund)| Command::Return { pick, line, quantity, refund }),
    ]
}

/// The model: live shipments and the units they hold.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ModelShipment {
    number: u32,
    lines: BTreeMap<usize, u32>,
    captured: bool,
    shipped: bool,
}

#[derive(Debug, Clone)]
struct Model {
    quantities: [u32; 2],
    declines: bool,
    shipments: Vec<ModelShipment>,
    next_number: u32,
    /// (shipment number, line, units) per return.
    returns: Vec<(u32, usize, u32)>,
    /// Minor units refunded.
    refunded: i64,
}

impl Model {
    fn returned(&self, number: u32, line: usize) -> u32 {
        self.returns
            .iter()
            .filter(|(n, l, _)| *n == number && *l == line)
            .map(|(_, _, q)| q)
            .sum()
    }

    fn allocated(&self, line: usize) -> u32 {
        self.shipments
            .iter()
            .map(|s| s.lines.get(&line).copied().unwrap_or(0))
            .sum()
    }
}

fn service(db: &Database, sandbox: Arc<SandboxGateway>) -> Consign {
    Consign::new(
        real_ports(db, "consign-model-mail", Arc::new(SystemClock)),
        Gateways::new().with(sandbox),
        StoreSettings {
            send_shipping_confirmation: false,
            ..StoreSettings::default()
        },
    )
}

async fn check(
    consign: &Consign,
    model: &Model,
    line_ids: &[LineId; 2],
) -> Result<(), TestCaseError> {
    let view = &consign.list_orders(OrderQuery::default()).await.unwrap()[0];
    prop_assert_eq!(view.refunded.minor(), model.refunded, "refunded");
    for (i, line) in line_ids.iter().enumerate() {
        let returned: u32 = view
            .returned
            .iter()
            .filter(|(l, _)| l == line)
            .map(|(_, q)| q)
            .sum();
        let in_model: u32 = model
            .returns
            .iter()
            .filter(|(_, l, _)| *l == i)
            .map(|(_, _, q)| q)
            .sum();
        prop_assert_eq!(returned, in_model, "returned of line {}", i);
        let stored = view.order.line(*line).unwrap();
        prop_assert_eq!(
            stored.allocated(),
            model.allocated(i),
            "allocation of line {}",
            i
        );
        prop_assert!(stored.allocated() <= stored.quantity());
    }
    let live: Vec<ModelShipment> = view
        .shipments
        .iter()
        .map(|s| ModelShipment {
            number: s.id.number,
            lines: s
                .lines
                .iter()
                .map(|l| {
                    (
                        line_ids.iter().position(|x| *x == l.line_id).unwrap(),
                        l.quantity,
                    )
                })
                .collect(),
            captured: s.state == ShipmentState::Captured,
            shipped: s.details.shipped,
        })
        .collect();
    prop_assert_eq!(&live, &model.shipments);
    let captured: i64 = view
        .shipments
        .iter()
        .filter(|s| s.state == ShipmentState::Captured)
        .filter_map(|s| s.capture_amount)
        .map(|m| m.minor())
        .sum();
    prop_assert_eq!(
        view.order.committed().minor(),
        captured,
        "committed equals what is captured"
    );
    if view.order.fully_in_capture() {
        prop_assert_eq!(
            captured,
            view.order.total().unwrap().minor(),
            "a fully captured order captured its total"
        );
    }
    Ok(())
}

async fn run(
    quantities: [u32; 2],
    declines: bool,
    commands: Vec<Command>,
) -> Result<(), TestCaseError> {
    // A file, not `:memory:`: the writer thread and the readers each have a connection.
    let file = Throwaway::sqlite();
    let db = Database::open(&file.config).unwrap();
    let sandbox = Arc::new(SandboxGateway::new(SandboxConfig::default()));
    let consign = service(&db, sandbox);
    let sek: Currency = "SEK".parse().unwrap();
    let imported = consign
        .import_order(
            OrderImport {
                id: Some(OrderId(1)),
                currency: sek,
                customer: Customer {
                    email: "m@example.com".into(),
                    ..Customer::default()
                },
                lines: quantities
                    .iter()
                    .enumerate()
                    .map(|(i, q)| LineImport {
                        sku: format!("S{i}"),
                        name: "N".into(),
                        unit_price: Money::from_minor(1_000 + 250 * i as i64, sek),
                        tax_rate: TaxRate(2500),
                        quantity: *q,
                    })
                    .collect(),
                shipping_fee: Money::from_minor(490, sek),
                payment: Some(PaymentAuthorization {
                    provider: "sandbox".into(),
                    reference: if declines {
                        "decline-model".into()
                    } else {
                        "auth-model".into()
                    },
                    amount: Money::from_minor(1_000_000, sek),
                }),
            },
            None,
        )
        .await
        .unwrap();
    let line_ids = [
        imported.order.lines()[0].line_id(),
        imported.order.lines()[1].line_id(),
    ];
    let mut model = Model {
        quantities,
        declines,
        shipments: Vec::new(),
        next_number: 1,
        returns: Vec::new(),
        refunded: 0,
    };
    for command in commands {
        let pick = |p: usize| (!model.shipments.is_empty()).then(|| p % model.shipments.len());
        match command {
            Command::Create { lines, capture } => {
                let fits = lines
                    .iter()
                    .all(|(l, q)| model.allocated(*l) + q <= model.quantities[*l]);
                let request = ShipmentRequest {
                    lines: lines
                        .iter()
                        .map(|(l, q)| ShipmentLine {
                            line_id: line_ids[*l],
                            quantity: *q,
                        })
                        .collect(),
                    capture,
                    deduct_previous_costs: false,
                };
                let result = consign
                    .create_shipment(OrderId(1), request, ShipmentDetails::default(), None)
                    .await;
                match (fits, capture && model.declines) {
                    (false, _) => prop_assert!(
                        matches!(
                            result,
                            Err(ServiceError::Rejected(
                                ShipmentError::NotEnoughShippable { .. }
                            ))
                        ),
                        "{:?}",
                        result
                    ),
                    (true, true) => {
                        prop_assert_eq!(
                            result.unwrap_err(),
                            ServiceError::CaptureDeclined(OrderId(1))
                        );
                        model.next_number += 1; // the number is spent on the voided shipment
                    }
                    (true, false) => {
                        let view = result.unwrap();
                        prop_assert_eq!(view.id.number, model.next_number);
                        model.shipments.push(ModelShipment {
                            number: model.next_number,
                            lines: lines.into_iter().collect(),
                            captured: capture,
                            shipped: false,
                        });
                        model.next_number += 1;
                    }
                }
            }
            Command::Complete { pick: p } | Command::Capture { pick: p } => {
                let Some(i) = pick(p) else { continue };
                let id = ShipmentId {
                    order: OrderId(1),
                    number: model.shipments[i].number,
                };
                let completing = matches!(command, Command::Complete { .. });
                let result = if completing {
                    consign
                        .complete_shipment(
                            id,
                            None,
                            true,
                            ShipmentChanges {
                                gtg: true,
                                shipped: true,
                                ..ShipmentChanges::default()
                            },
                            None,
                        )
                        .await
                } else {
                    consign.capture_shipment(id, None, None).await
                };
                if !model.shipments[i].captured && model.declines {
                    prop_assert_eq!(result.unwrap_err(), ServiceError::CaptureFailed(id));
                } else {
                    prop_assert_eq!(result.unwrap().state, ShipmentState::Captured);
                    model.shipments[i].captured = true;
                    model.shipments[i].shipped |= completing;
                }
            }
            Command::Update {
                pick: p,
                line,
                quantity,
            } => {
                let Some(i) = pick(p) else { continue };
                let id = ShipmentId {
                    order: OrderId(1),
                    number: model.shipments[i].number,
                };
                let result = consign
                    .update_shipment(
                        id,
                        None,
                        Some(vec![ShipmentLine {
                            line_id: line_ids[line],
                            quantity,
                        }]),
                        None,
                    )
                    .await;
                let s = &model.shipments[i];
                let held = s.lines.get(&line).copied().unwrap_or(0);
                let mut after = s.lines.clone();
                if quantity == 0 {
                    after.remove(&line);
                } else {
                    after.insert(line, quantity);
                }
                let expected = if s.captured {
                    Some(ShipmentError::ShipmentCaptured)
                } else if s.shipped {
                    Some(ShipmentError::ShipmentSent)
                } else if quantity > model.quantities[line] - model.allocated(line) + held {
                    None // NotEnoughShippable, checked below
                } else if after.is_empty() {
                    Some(ShipmentError::EmptyShipment)
                } else {
                    model.shipments[i].lines = after;
                    prop_assert!(result.is_ok(), "{:?}", result);
                    check(&consign, &model, &line_ids).await?;
                    continue;
                };
                match expected {
                    Some(error) => {
                        prop_assert_eq!(result.unwrap_err(), ServiceError::Rejected(error))
                    }
                    None => prop_assert!(
                        matches!(
                            result,
                            Err(ServiceError::Rejected(
                                ShipmentError::NotEnoughShippable { .. }
                            ))
                        ),
                        "{:?}",
                        result
                    ),
                }
            }
            Command::Return {
                pick: p,
                line,
                quantity,
                refund,
            } => {
                let Some(i) = pick(p) else { continue };
                let s = model.shipments[i].clone();
                let id = ShipmentId {
                    order: OrderId(1),
                    number: s.number,
                };
                let result = consign
                    .create_return(
                        consign_service::ReturnAsk {
                            shipment: id,
                            lines: Some(vec![ShipmentLine {
                                line_id: line_ids[line],
                                quantity,
                            }]),
                            shipping: consign_service::CostAsk::None,
                            handling: consign_service::CostAsk::None,
                            voucher: consign_service::CostAsk::None,
                            return_cost: None,
                            refund,
                            send_email: false,
                            return_to_stock: None,
                            comment: String::new(),
                        },
                        None,
                    )
                    .await;
                let shipped = s.lines.get(&line).copied().unwrap_or(0);
                if !s.captured {
                    prop_assert!(
                        matches!(
                            result,
                            Err(ServiceError::ReturnRejected(ReturnError::NotCaptured(_)))
                        ),
                        "{:?}",
                        result
                    );
                } else if model.returned(s.number, line) + quantity > shipped {
                    prop_assert!(
                        matches!(
                            result,
                            Err(ServiceError::ReturnRejected(
                                ReturnError::NothingReturnable(_)
                            ))
                        ),
                        "{:?}",
                        result
                    );
                } else {
                    let outcome = result.unwrap();
                    let amount = (1_000 + 250 * line as i64) * i64::from(quantity);
                    prop_assert_eq!(outcome.view.refund.minor(), amount);
                    if refund {
                        prop_assert_eq!(
                            outcome.refund,
                            Some(consign_service::RefundResult::Refunded)
                        );
                        model.refunded += amount;
                    } else {
                        prop_assert_eq!(outcome.refund, None);
                    }
                    model.returns.push((s.number, line, quantity));
                }
            }
            Command::Delete { pick: p } => {
                let Some(i) = pick(p) else { continue };
                let id = ShipmentId {
                    order: OrderId(1),
                    number: model.shipments[i].number,
                };
                let result = consign.delete_shipment(id, None, None).await;
                if model.shipments[i].captured {
                    prop_assert_eq!(
                        result.unwrap_err(),
                        ServiceError::Rejected(ShipmentError::NotDeletable)
                    );
                } else {
                    prop_assert!(result.is_ok());
                    model.shipments.remove(i);
                }
            }
        }
        check(&consign, &model, &line_ids).await?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn the_service_follows_the_model_step_by_step(
        quantities in (1u32..5, 1u32..5),
        declines in prop::bool::weighted(0.2),
        commands in prop::collection::vec(command(), 1..25),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(run([quantities.0, quantities.1], declines, commands))?;
    }
}
