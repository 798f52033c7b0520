//! `POST <base>/order`: import an order with its payment authorisation (Consign's small form of
//! Centra's Create order).

use actix_web::web;
use consign_domain::{Money, OrderId, PaymentAuthorization};
use consign_ports::{Address, Customer, LineImport, OrderImport};
use serde_json::{json, Value};

use crate::answer::Answer;
use crate::edge::lenient::{text, MAX_LINES};
use crate::edge::requests::ImportOrder;
use crate::edge::Body;
use crate::error::ApiError;
use crate::idempotency::RequestKey;
use crate::ApiState;

/// The handler.
#[utoipa::path(
    post,
    path = "/order",
    summary = "Import an order with its payment authorisation",
    request_body = ImportOrder
)]
pub async fn import_order(
    state: web::Data<ApiState>,
    body: Body<ImportOrder>,
    request_key: Option<web::ReqData<RequestKey>>,
) -> Result<Answer, ApiError> {
    let request_key = request_key.map(|k| k.into_inner().0);
    handle(&state, &body.request, request_key)
        .await
        .map(|answer| answer.xml(body.xml))
        .map_err(|error| body.refuse(error))
}

async fn handle(
    state: &ApiState,
    r: &ImportOrder,
    request_key: Option<String>,
) -> Result<Answer, ApiError> {
    let import = to_import(r)?;
    let imported = state.consign.import_order(import, request_key).await?;
    let products: Vec<Value> = imported
        .order
        .lines()
        .iter()
        .map(|l| json!({"lineId": l.line_id().to_string(), "sku": l.sku(), "qty": l.quantity()}))
        .collect();
    Ok(Answer::ok([
        ("order", Value::from(imported.order.id().0)),
        ("customerId", imported.customer_id.to_string().into()),
        ("products", Value::Array(products)),
    ]))
}

/// The import as the service takes it; amounts are read in the order's currency here.
fn to_import(r: &ImportOrder) -> Result<OrderImport, ApiError> {
    let currency = r.currency.0;
    let bad = |field: &str, why: String| ApiError::BadRequest(format!("field {field}: {why}"));
    if !deliverable_address(&r.email.0) {
        return Err(bad("email", "must be an email address".into()));
    }
    if r.products.is_empty() || r.products.len() > MAX_LINES {
        return Err(bad("products", format!("must hold 1 to {MAX_LINES} lines")));
    }
    let lines = r
        .products
        .iter()
        .enumerate()
        .map(|(i, p)| {
            Ok(LineImport {
                sku: p.sku.0.clone(),
                name: text(p.name.clone()),
                quantity: p.qty.0,
                unit_price: p
                    .price
                    .money(currency)
                    .map_err(|e| bad(&format!("products[{i}].price"), e.to_string()))?,
                tax_rate: p.vat.0,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let shipping_fee = match &r.shipping_value {
        Some(amount) => amount
            .money(currency)
            .map_err(|e| bad("shippingValue", e.to_string()))?,
        None => Money::zero(currency),
    };
    let payment = r
        .payment
        .as_ref()
        .map(|p| {
            Ok::<_, ApiError>(PaymentAuthorization {
                provider: p.provider.0.clone(),
                reference: p.reference.0.clone(),
                amount: p
                    .amount
                    .money(currency)
                    .map_err(|e| bad("payment.amount", e.to_string()))?,
            })
        })
        .transpose()?;
    let address = r
        .address
        .as_ref()
        .map_or_else(Address::default, |a| Address {
            address: text(a.address.clone()),
            zipcode: text(a.zipcode.clone()),
            city: text(a.city.clone()),
            country: text(a.country.clone()),
        });
    Ok(OrderImport {
        id: r.order.map(|o| OrderId(o.0)),
        currency,
        customer: Customer {
            email: r.email.0.clone(),
            first_name: text(r.first_name.clone()),
            last_name: text(r.last_name.clone()),
            address,
        },
        lines,
        shipping_fee,
        payment,
    })
}

/// Whether mail can be addressed to `text`: `local@domain`, the local part and the domain as the
/// mail adapter's library checks them (a domain of IDNA labels, or an IP literal, also passes).
/// Why here: an address it refuses would otherwise be found only when each confirmation is
/// sent, and retried for ever, where the importing client can mend it now.
fn deliverable_address(text: &str) -> bool {
    use email_address::EmailAddress;
    let Some((local, domain)) = text.rsplit_once('@') else {
        return false;
    };
    let international = !domain.is_ascii()
        && domain.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
    let ip_literal = domain
        .strip_prefix('[')
        .and_then(|ip| ip.strip_suffix(']'))
        .is_some_and(|ip| ip.parse::<std::net::IpAddr>().is_ok());
    EmailAddress::is_valid_local_part(local)
        && (EmailAddress::is_valid_domain(domain) || international || ip_literal)
}

#[cfg(test)]
mod tests {
    use super::deliverable_address;

    #[test]
    fn only_addresses_mail_can_go_to_pass() {
        for good in [
            "anna@example.com",
            "anna.svensson+shop@mail.example.se",
            "anna@localhost",
            "åsa@exämple-shop.se",
            "anna@[127.0.0.1]",
        ] {
            assert!(deliverable_address(good), "{good}");
        }
        for bad in [
            "anna@",
            "@example.com",
            "anna",
            "anna svensson@example.com",
            "anna@exa mple.com",
            "anna@example..com",
            "anna@-example.com",
            "anna@example.com\r\nBcc: x@y.z",
        ] {
            assert!(!deliverable_address(bad), "{bad}");
        }
    }
}
