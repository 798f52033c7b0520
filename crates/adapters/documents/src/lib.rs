//! # consign-documents
//!
//! PDF documents of a shipment, behind [`consign_ports::DocumentRenderer`]:
//! - **delivery note**: what is in the parcel, addresses, order and shipment numbers, no prices;
//! - **proforma**: for customs: lines with quantities, unit values, currency, totals, country of
//!   origin;
//! - **invoice**: once captured: its sequential number, seller and buyer, lines, VAT per rate,
//!   and a total equal to the captured amount;
//! - **credit note**: once a return is refunded: its number in its own series (`CN-<n>`), the
//!   invoice it corrects, the returned lines, the costs added and deducted, the VAT the returned
//!   units included, and a total equal to the refunded amount.
//!
//! Text is real text in the PDF standard fonts (Helvetica), so it can be searched and copied.
#![deny(missing_docs)]

mod layout;
mod lines;

use consign_ports::{DocumentData, DocumentError, DocumentKind, DocumentRenderer};

use layout::{render, Cell, Row, LEFT, RIGHT};
use lines::{priced_lines, tax_per_rate, total};

/// The PDF renderer.
#[derive(Debug, Clone, Copy, Default)]
pub struct PdfRenderer;

impl PdfRenderer {
    /// A renderer.
    pub fn new() -> Self {
        PdfRenderer
    }
}

fn text(cells: Vec<Cell>) -> Row {
    Row::Text(cells)
}

/// Title, seller, numbers and addresses: the head every document shares.
fn head(title: &str, data: &DocumentData, numbers: &[(&str, String)]) -> Vec<Row> {
    let order = &data.order;
    let customer = &order.customer;
    let mut rows = vec![text(vec![
        Cell::left(LEFT, title).bold().size(20.0),
        Cell::right(RIGHT, data.seller.name.clone()).bold(),
    ])];
    for line in &data.seller.address {
        rows.push(text(vec![Cell::right(RIGHT, line.clone())]));
    }
    if !data.seller.vat_number.is_empty() {
        rows.push(text(vec![Cell::right(
            RIGHT,
            format!("VAT no. {}", data.seller.vat_number),
        )]));
    }
    rows.push(Row::Gap(12.0));
    for (label, value) in numbers {
        rows.push(text(vec![
            Cell::left(LEFT, *label).bold(),
            Cell::left(LEFT + 110.0, value.clone()),
        ]));
    }
    rows.push(Row::Gap(12.0));
    rows.push(text(vec![Cell::left(LEFT, "Deliver to").bold()]));
    let name = format!("{} {}", customer.first_name, customer.last_name);
    for line in [
        name.trim(),
        customer.address.address.as_str(),
        &format!("{} {}", customer.address.zipcode, customer.address.city),
        customer.address.country.as_str(),
        customer.email.as_str(),
    ] {
        if !line.trim().is_empty() {
            rows.push(text(vec![Cell::left(LEFT, line.trim().to_owned())]));
        }
    }
    rows.push(Row::Gap(16.0));
    rows
}

fn numbers(data: &DocumentData) -> Vec<(&'static str, String)> {
    vec![
        ("Order", data.order.order.id().to_string()),
        ("Order date", data.order.created_at.format_utc()),
        ("Shipment", data.shipment.id.to_string()),
    ]
}

fn delivery_note(data: &DocumentData) -> Vec<u8> {
    let mut rows = head("Delivery note", data, &numbers(data));
    rows.push(text(vec![
        Cell::left(LEFT, "SKU").bold(),
        Cell::left(LEFT + 130.0, "Product").bold(),
        Cell::right(RIGHT, "Quantity").bold(),
    ]));
    rows.push(Row::Rule);
    let order = &data.order.order;
    for line in &data.shipment.lines {
        let (sku, name) = order
            .line(line.line_id)
            .map_or((String::new(), String::new()), |l| {
                (l.sku().to_owned(), l.name().to_owned())
            });
        rows.push(text(vec![
            Cell::left(LEFT, sku),
            Cell::left(LEFT + 130.0, name),
            Cell::right(RIGHT, line.quantity.to_string()),
        ]));
    }
    rows.push(Row::Rule);
    let units: u32 = data.shipment.lines.iter().map(|l| l.quantity).sum();
    rows.push(text(vec![
        Cell::left(LEFT, "Units").bold(),
        Cell::right(RIGHT, units.to_string()).bold(),
    ]));
    render(&format!("Delivery note {}", data.shipment.id), &rows)
}

fn priced_table(rows: &mut Vec<Row>, data: &DocumentData, with_vat: bool) {
    let currency = data.order.order.currency();
    rows.push(text(vec![
        Cell::left(LEFT, "SKU").bold(),
        Cell::left(LEFT + 90.0, "Product").bold(),
        Cell::right(LEFT + 300.0, "Qty").bold(),
        Cell::right(LEFT + 370.0, "Unit").bold(),
        Cell::right(LEFT + 425.0, if with_vat { "VAT %" } else { "" }).bold(),
        Cell::right(RIGHT, format!("Total {currency}")).bold(),
    ]));
    rows.push(Row::Rule);
    for line in priced_lines(data) {
        rows.push(text(vec![
            Cell::left(LEFT, line.sku.clone()),
            Cell::left(LEFT + 90.0, line.name.clone()),
            Cell::right(LEFT + 300.0, line.quantity.to_string()),
            Cell::right(LEFT + 370.0, line.unit.to_string()),
            Cell::right(
                LEFT + 425.0,
                if with_vat {
                    line.rate.to_string()
                } else {
                    String::new()
                },
            ),
            Cell::right(RIGHT, line.total.to_string()),
        ]));
    }
    rows.push(Row::Rule);
}

fn proforma(data: &DocumentData) -> Vec<u8> {
    let mut rows = head("Proforma invoice", data, &numbers(data));
    priced_table(&mut rows, data, false);
    let lines = priced_lines(data);
    let currency = data.order.order.currency();
    rows.push(text(vec![
        Cell::left(LEFT, format!("Total value ({currency})")).bold(),
        Cell::right(RIGHT, total(&lines, currency).to_string()).bold(),
    ]));
    if !data.seller.country_of_origin.is_empty() {
        rows.push(Row::Gap(8.0));
        rows.push(text(vec![Cell::left(
            LEFT,
            format!("Country of origin: {}", data.seller.country_of_origin),
        )]));
    }
    rows.push(text(vec![Cell::left(
        LEFT,
        "For customs purposes only; not a demand for payment.",
    )]));
    render(&format!("Proforma {}", data.shipment.id), &rows)
}

fn invoice(data: &DocumentData) -> Result<Vec<u8>, DocumentError> {
    let issued = data
        .invoice
        .as_ref()
        .ok_or_else(|| DocumentError("no invoice is issued for this shipment yet".into()))?;
    let mut numbers = numbers(data);
    numbers.insert(0, ("Invoice", issued.number.to_string()));
    numbers.insert(1, ("Invoice date", issued.issued_at.format_utc()));
    let mut rows = head("Invoice", data, &numbers);
    priced_table(&mut rows, data, true);
    let lines = priced_lines(data);
    let currency = data.order.order.currency();
    for (rate, gross, tax) in tax_per_rate(&lines, currency) {
        rows.push(text(vec![
            Cell::left(LEFT, format!("VAT {rate}% included in {gross}")),
            Cell::right(RIGHT, tax.to_string()),
        ]));
    }
    rows.push(text(vec![
        Cell::left(LEFT, format!("Total ({currency})")).bold(),
        Cell::right(RIGHT, total(&lines, currency).to_string()).bold(),
    ]));
    rows.push(Row::Gap(8.0));
    rows.push(text(vec![Cell::left(
        LEFT,
        "Paid: captured from the payment authorisation.",
    )]));
    Ok(render(&format!("Invoice {}", issued.number), &rows))
}

fn credit_note(data: &DocumentData) -> Result<Vec<u8>, DocumentError> {
    let ret = data
        .credit_note
        .as_ref()
        .ok_or_else(|| DocumentError("no return to credit".into()))?;
    let note = ret
        .credit_note
        .ok_or_else(|| DocumentError("the return is not refunded".into()))?;
    let mut numbers = numbers(data);
    numbers.insert(0, ("Credit note", format!("CN-{}", note.number)));
    numbers.insert(1, ("Date", note.issued_at.format_utc()));
    if let Some(invoice) = &data.invoice {
        numbers.push(("Corrects invoice", invoice.number.to_string()));
    }
    numbers.push(("Return", ret.id.to_string()));
    let mut rows = head("Credit note", data, &numbers);
    let currency = ret.refund.currency();
    rows.push(text(vec![
        Cell::left(LEFT, "SKU").bold(),
        Cell::left(LEFT + 90.0, "Product").bold(),
        Cell::right(LEFT + 300.0, "Qty").bold(),
        Cell::right(LEFT + 370.0, "Unit").bold(),
        Cell::right(LEFT + 425.0, "VAT %").bold(),
        Cell::right(RIGHT, format!("Total {currency}")).bold(),
    ]));
    rows.push(Row::Rule);
    for line in &ret.lines {
        let total = line
            .unit_price
            .times(line.quantity)
            .map_err(|e| DocumentError(e.to_string()))?;
        rows.push(text(vec![
            Cell::left(LEFT, line.sku.clone()),
            Cell::left(LEFT + 90.0, line.name.clone()),
            Cell::right(LEFT + 300.0, line.quantity.to_string()),
            Cell::right(LEFT + 370.0, line.unit_price.to_string()),
            Cell::right(LEFT + 425.0, line.tax_rate.to_string()),
            Cell::right(RIGHT, total.to_string()),
        ]));
    }
    rows.push(Row::Rule);
    for (label, amount, sign) in [
        ("Shipping refunded", ret.shipping, ""),
        ("Handling refunded", ret.handling, ""),
        ("Return cost", ret.return_cost, "-"),
        ("Voucher", ret.voucher, "-"),
    ] {
        if amount.minor() != 0 {
            rows.push(text(vec![
                Cell::left(LEFT, label),
                Cell::right(RIGHT, format!("{sign}{amount}")),
            ]));
        }
    }
    rows.push(text(vec![
        Cell::left(LEFT, "VAT included in the returned items"),
        Cell::right(RIGHT, ret.tax.to_string()),
    ]));
    rows.push(text(vec![
        Cell::left(LEFT, format!("Total refunded ({currency})")).bold(),
        Cell::right(RIGHT, ret.refund.to_string()).bold(),
    ]));
    rows.push(Row::Gap(8.0));
    rows.push(text(vec![Cell::left(
        LEFT,
        "Refunded to the original payment.",
    )]));
    Ok(render(&format!("Credit note CN-{}", note.number), &rows))
}

impl DocumentRenderer for PdfRenderer {
    fn render(&self, kind: DocumentKind, data: &DocumentData) -> Result<Vec<u8>, DocumentError> {
        match kind {
            DocumentKind::DeliveryNote => Ok(delivery_note(data)),
            DocumentKind::Proforma => Ok(proforma(data)),
            DocumentKind::Invoice => invoice(data),
            DocumentKind::CreditNote => credit_note(data),
        }
    }
}
