//! The money on a shipment's documents: its lines, the shipping fee it carries, VAT per rate.

use std::collections::BTreeMap;

use consign_domain::{Money, ShipmentState, TaxRate};
use consign_ports::DocumentData;

/// One priced line of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricedLine {
    pub sku: String,
    pub name: String,
    pub quantity: u32,
    pub unit: Money,
    pub total: Money,
    pub rate: TaxRate,
}

/// The priced lines of a shipment, the shipping line if it carries the fee, and (for a captured
/// shipment) an adjustment if the captured amount differs from their sum, so the document's
/// total is always what was captured.
pub fn priced_lines(data: &DocumentData) -> Vec<PricedLine> {
    let order = &data.order.order;
    let shipment = &data.shipment;
    let mut lines: Vec<PricedLine> = shipment
        .lines
        .iter()
        .filter_map(|l| {
            let line = order.line(l.line_id)?;
            Some(PricedLine {
                sku: line.sku().to_owned(),
                name: line.name().to_owned(),
                quantity: l.quantity,
                unit: line.unit_price(),
                total: line.unit_price().times(l.quantity).ok()?,
                rate: line.tax_rate(),
            })
        })
        .collect();
    // Shipping is taxed at the highest rate on the order, as the goods it carries.
    let shipping_rate = order
        .lines()
        .iter()
        .map(|l| l.tax_rate())
        .max_by_key(|r| r.0)
        .unwrap_or(TaxRate(0));
    let carries_fee = match shipment.capture_amount {
        Some(_) => shipment.carries_shipping_fee,
        None => order
            .preview_capture(&shipment.lines, false)
            .map(|p| p.carries_shipping_fee())
            .unwrap_or(false),
    };
    if carries_fee && order.shipping_fee().minor() > 0 {
        lines.push(PricedLine {
            sku: String::new(),
            name: "Shipping".into(),
            quantity: 1,
            unit: order.shipping_fee(),
            total: order.shipping_fee(),
            rate: shipping_rate,
        });
    }
    if let (ShipmentState::Captured, Some(captured)) = (shipment.state, shipment.capture_amount) {
        let sum = total(&lines, order.currency());
        if let Ok(difference) = captured.minus(sum) {
            if difference.minor() != 0 {
                lines.push(PricedLine {
                    sku: String::new(),
                    name: "Adjustment".into(),
                    quantity: 1,
                    unit: difference,
                    total: difference,
                    rate: shipping_rate,
                });
            }
        }
    }
    lines
}

/// The sum of the lines' totals.
pub fn total(lines: &[PricedLine], currency: consign_domain::Currency) -> Money {
    lines
        .iter()
        .try_fold(Money::zero(currency), |sum, l| sum.plus(l.total))
        .unwrap_or(Money::zero(currency))
}

/// VAT included in the lines, per rate: (rate, gross, tax), rounded half up per rate.
pub fn tax_per_rate(
    lines: &[PricedLine],
    currency: consign_domain::Currency,
) -> Vec<(TaxRate, Money, Money)> {
    let mut gross: BTreeMap<u32, i64> = BTreeMap::new();
    for line in lines {
        *gross.entry(line.rate.0).or_default() += line.total.minor();
    }
    gross
        .into_iter()
        .map(|(rate, gross)| {
            let r = i128::from(rate);
            let divisor = 2 * (10_000 + r);
            let tax = (i128::from(gross) * r * 2 + (10_000 + r)).div_euclid(divisor);
            (
                TaxRate(rate),
                Money::from_minor(gross, currency),
                Money::from_minor(i64::try_from(tax).unwrap_or(0), currency),
            )
        })
        .collect()
}
