//! Renders each document for a multi-line, multi-rate order and reads it back with a PDF parser.

use consign_documents::PdfRenderer;
use consign_domain::*;
use consign_ports::*;

fn sek() -> Currency {
    "SEK".parse().unwrap()
}

fn data(state: ShipmentState) -> DocumentData {
    let captured = state == ShipmentState::Captured;
    // Every unit is in this shipment; in capture only once it is captured.
    let line = |id, sku: &str, name: &str, price, rate, quantity| {
        OrderLine::new(
            LineId(id),
            sku,
            name,
            Money::from_minor(price, sek()),
            TaxRate(rate),
            quantity,
        )
        .with_progress(quantity, if captured { quantity } else { 0 })
    };
    let order = Order::new(
        OrderId(83651),
        sek(),
        vec![
            line(17, "TSHIRT-M", "T-shirt Åre", 24_950, 2500, 2),
            line(18, "BOOK-1", "Cookbook", 19_900, 600, 1),
            line(19, "FOOD-1", "Coffee beans", 8_950, 1200, 3),
        ],
        Money::from_minor(4_900, sek()),
        Some(PaymentAuthorization {
            provider: "sandbox".into(),
            reference: "auth".into(),
            amount: Money::from_minor(101_550, sek()),
        }),
    )
    .unwrap()
    .with_progress(OrderProgress {
        committed: Money::from_minor(if captured { 101_550 } else { 0 }, sek()),
        shipping_fee_committed: captured,
        next_shipment_number: 2,
    })
    .unwrap();
    // 2 x 249.50 + 199.00 + 3 x 89.50 + 49.00 shipping = 1015.50
    let lines = vec![
        ShipmentLine {
            line_id: LineId(17),
            quantity: 2,
        },
        ShipmentLine {
            line_id: LineId(18),
            quantity: 1,
        },
        ShipmentLine {
            line_id: LineId(19),
            quantity: 3,
        },
    ];
    DocumentData {
        seller: Seller {
            name: "Consign Demo AB".into(),
            address: vec!["Hamngatan 1".into(), "111 47 Stockholm".into()],
            vat_number: "SE556677889901".into(),
            country_of_origin: "SE".into(),
        },
        order: OrderView {
            order,
            customer_id: 4,
            customer: Customer {
                email: "anna@example.com".into(),
                first_name: "Anna".into(),
                last_name: "Svensson".into(),
                address: Address {
                    address: "Storgatan 1".into(),
                    zipcode: "11122".into(),
                    city: "Stockholm".into(),
                    country: "SE".into(),
                },
            },
            created_at: Timestamp(1_764_000_000_000),
            shipments: vec![],
            refunded: Money::zero(sek()),
            returned: vec![],
        },
        shipment: ShipmentView {
            id: ShipmentId {
                order: OrderId(83651),
                number: 1,
            },
            state,
            lines,
            details: ShipmentDetails::default(),
            capture_amount: captured.then(|| Money::from_minor(101_550, sek())),
            carries_shipping_fee: captured,
            capture_reference: None,
            created_at: Timestamp(1_764_000_100_000),
            shipped_at: None,
            needs_review: false,
            refunded: Money::zero(sek()),
        },
        invoice: captured.then_some(Invoice {
            number: 1042,
            issued_at: Timestamp(1_764_000_200_000),
        }),
        credit_note: None,
    }
}

/// The text of every page, as a PDF reader extracts it.
fn text_of(pdf: &[u8]) -> String {
    assert!(pdf.starts_with(b"%PDF-"), "not a PDF");
    let document = lopdf::Document::load_mem(pdf).expect("a valid PDF");
    let pages: Vec<u32> = document.get_pages().keys().copied().collect();
    assert!(!pages.is_empty());
    document
        .extract_text(&pages)
        .expect("text can be extracted")
}

fn render(kind: DocumentKind, state: ShipmentState) -> String {
    text_of(
        &PdfRenderer::new()
            .render(kind, &data(state))
            .expect("rendered"),
    )
}

#[test]
fn the_delivery_note_lists_the_parcel_without_prices() {
    let text = render(DocumentKind::DeliveryNote, ShipmentState::Uncaptured);
    for expected in [
        "Delivery note",
        "83651",
        "83651-1",
        "TSHIRT-M",
        "T-shirt Åre",
        "BOOK-1",
        "Cookbook",
        "FOOD-1",
        "Coffee beans",
        "Anna Svensson",
        "Storgatan 1",
        "Consign Demo AB",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    assert!(
        !text.contains("249.50"),
        "a delivery note shows no prices:\n{text}"
    );
}

#[test]
fn the_proforma_has_values_currency_totals_and_origin() {
    let text = render(DocumentKind::Proforma, ShipmentState::Uncaptured);
    for expected in [
        "Proforma",
        "83651-1",
        "TSHIRT-M",
        "249.50",
        "499.00",
        "199.00",
        "268.50",
        "Shipping",
        "49.00",
        "SEK",
        "1015.50",
        "Country of origin: SE",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

#[test]
fn the_invoice_totals_the_captured_amount_with_vat_per_rate() {
    let text = render(DocumentKind::Invoice, ShipmentState::Captured);
    for expected in [
        "Invoice",
        "1042",
        "83651-1",
        "SE556677889901",
        "TSHIRT-M",
        "Cookbook",
        "Coffee beans",
        "Shipping",
        "Total (SEK)",
        "1015.50",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    // VAT included per rate: 25% on 499.00 + 49.00 shipping = 109.60; 6% on 199.00 = 11.26;
    // 12% on 268.50 = 28.77.
    for expected in [
        "VAT 25% included in 548.00",
        "109.60",
        "VAT 6% included in 199.00",
        "11.26",
        "VAT 12% included in 268.50",
        "28.77",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

#[test]
fn no_invoice_exists_before_the_capture() {
    assert!(PdfRenderer::new()
        .render(DocumentKind::Invoice, &data(ShipmentState::Uncaptured))
        .is_err());
}

#[test]
fn a_long_shipment_flows_onto_more_pages() {
    let mut many = data(ShipmentState::Uncaptured);
    let lines = (0..150)
        .map(|i| {
            OrderLine::new(
                LineId(1000 + i),
                format!("SKU-{i:03}"),
                format!("Item {i}"),
                Money::from_minor(100, sek()),
                TaxRate(2500),
                1,
            )
            .with_progress(1, 0)
        })
        .collect();
    many.order.order = Order::new(OrderId(83651), sek(), lines, Money::zero(sek()), None).unwrap();
    many.shipment.lines = (0..150)
        .map(|i| ShipmentLine {
            line_id: LineId(1000 + i),
            quantity: 1,
        })
        .collect();
    let pdf = PdfRenderer::new()
        .render(DocumentKind::DeliveryNote, &many)
        .unwrap();
    let document = lopdf::Document::load_mem(&pdf).unwrap();
    assert!(document.get_pages().len() >= 3);
    let text = text_of(&pdf);
    assert!(text.contains("SKU-000") && text.contains("SKU-149"));
}

/// A refunded return of one T-shirt and the coffee, with the shipping fee, less a return cost.
fn refunded_return() -> ReturnView {
    let money = |minor| Money::from_minor(minor, sek());
    let line = |id, line, sku: &str, name: &str, price, rate, quantity| ReturnLineView {
        id,
        shipment_line_id: 900 + id,
        line_id: LineId(line),
        sku: sku.into(),
        name: name.into(),
        quantity,
        unit_price: money(price),
        tax_rate: TaxRate(rate),
    };
    ReturnView {
        id: ReturnId(5397),
        shipment: ShipmentId {
            order: OrderId(83651),
            number: 1,
        },
        shipment_row_id: 901,
        customer_id: 4,
        completed: true,
        return_to_stock: true,
        comment: String::new(),
        lines: vec![
            line(1, 17, "TSHIRT-M", "T-shirt Åre", 24_950, 2500, 1),
            line(2, 19, "FOOD-1", "Coffee beans", 8_950, 1200, 2),
        ],
        shipping: money(4_900),
        handling: money(0),
        voucher: money(0),
        return_cost: money(2_000),
        // 249.50 / 5 + 179.00 x 12 / 112, each rounded half up: 49.90 + 19.18
        tax: money(6_908),
        // 249.50 + 2 x 89.50 + 49.00 - 20.00
        refund: money(45_750),
        refund_state: RefundState::Refunded,
        refund_reference: Some("re_1".into()),
        decline: None,
        credit_note: Some(CreditNote {
            number: 7,
            issued_at: Timestamp(1_764_000_300_000),
        }),
        created_at: Timestamp(1_764_000_250_000),
    }
}

#[test]
fn the_credit_note_has_its_number_the_invoice_it_corrects_the_lines_and_the_refund() {
    let mut refunded = data(ShipmentState::Captured);
    refunded.credit_note = Some(refunded_return());
    let text = text_of(
        &PdfRenderer::new()
            .render(DocumentKind::CreditNote, &refunded)
            .expect("rendered"),
    );
    for expected in [
        "Credit note",
        "CN-7",
        "Corrects invoice",
        "1042",
        "5397",
        "83651-1",
        "TSHIRT-M",
        "T-shirt Åre",
        "FOOD-1",
        "179.00",
        "Shipping refunded",
        "49.00",
        "-20.00",
        "69.08",
        "457.50",
        "Anna Svensson",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    assert!(
        !text.contains("Cookbook"),
        "only the returned lines:\n{text}"
    );
}

#[test]
fn no_credit_note_exists_before_the_refund() {
    let mut pending = data(ShipmentState::Captured);
    let mut ret = refunded_return();
    ret.credit_note = None;
    pending.credit_note = Some(ret);
    assert!(PdfRenderer::new()
        .render(DocumentKind::CreditNote, &pending)
        .is_err());
}
