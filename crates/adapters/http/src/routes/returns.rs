//! `POST <base>/return`, `PUT <base>/returns/<returnId>`, `GET <base>/returns`.

use actix_web::web;
use consign_domain::{OrderId, ReturnId};
use consign_ports::ReturnQuery;
use consign_service::{CostAsk, RefundResult, ReturnAsk};
use serde_json::{json, Value};

use crate::answer::Answer;
use crate::edge::lenient::{flag, Amount, Flag};
use crate::edge::requests::{CreateReturn, ReturnsQuery, UpdateReturn};
use crate::edge::{Body, Params};
use crate::error::ApiError;
use crate::idempotency::RequestKey;
use crate::routes::shipments::page;
use crate::{render, ApiState};

/// The create-return handler.
#[utoipa::path(
    post,
    path = "/return",
    summary = "Create a return of a captured shipment and, with refund.refundPayment, refund it",
    request_body = CreateReturn
)]
pub async fn create_return(
    state: web::Data<ApiState>,
    body: Body<CreateReturn>,
    request_key: Option<web::ReqData<RequestKey>>,
) -> Result<Answer, ApiError> {
    let request_key = request_key.map(|k| k.into_inner().0);
    create(&state, &body.request, request_key)
        .await
        .map(|answer| answer.xml(body.xml))
        .map_err(|error| body.refuse(error))
}

/// A cost given as an amount or taken from the shipment; both at once is a 400.
fn cost(
    amount: &Option<Amount>,
    from_shipment: Option<Flag>,
    name: &str,
) -> Result<CostAsk, ApiError> {
    match (amount, flag(from_shipment, false)) {
        (Some(_), true) => Err(ApiError::BadRequest(format!(
            "fields {name} and {name}FromShipment: give one of them"
        ))),
        (Some(amount), false) => Ok(CostAsk::Given(amount.text().to_owned())),
        (None, true) => Ok(CostAsk::FromShipment),
        (None, false) => Ok(CostAsk::None),
    }
}

async fn create(
    state: &ApiState,
    r: &CreateReturn,
    request_key: Option<String>,
) -> Result<Answer, ApiError> {
    let refund = r.refund.as_ref();
    let ask = ReturnAsk {
        shipment: r.shipment.0,
        lines: r.products.as_ref().map(|p| p.0.clone()),
        shipping: cost(
            &r.shipping_cost,
            r.shipping_cost_from_shipment,
            "shippingCost",
        )?,
        handling: cost(
            &r.handling_cost,
            r.handling_cost_from_shipment,
            "handlingCost",
        )?,
        voucher: cost(
            &r.voucher_value,
            r.voucher_value_from_shipment,
            "voucherValue",
        )?,
        return_cost: r.return_cost.as_ref().map(|a| a.text().to_owned()),
        refund: flag(refund.and_then(|f| f.refund_payment), false),
        send_email: flag(refund.and_then(|f| f.send_email), false),
        return_to_stock: r.return_stock.map(|f| f.0),
        comment: r.comment.as_ref().map(|c| c.0.clone()).unwrap_or_default(),
    };
    let outcome = state.consign.create_return(ask, request_key).await?;
    let view = &outcome.view;
    let mut answer = Answer::ok([
        ("order", Value::from(view.shipment.order.0)),
        ("return", view.id.0.into()),
        ("returnCompleted", view.completed.into()),
        (
            "returnedItems",
            view.lines
                .iter()
                .map(|l| Value::from(l.line_id.to_string()))
                .collect(),
        ),
    ]);
    let fields = &mut answer.fields;
    if !outcome.not_returned.is_empty() {
        fields.insert(
            "notReturned".into(),
            outcome
                .not_returned
                .iter()
                .map(|n| json!({"lineId": n.line_id.to_string(), "msg": n.msg}))
                .collect(),
        );
    }
    match &outcome.refund {
        Some(RefundResult::Refunded) => {
            fields.insert("refund".into(), json!({"status": "ok"}));
        }
        Some(RefundResult::Declined { message }) => {
            fields.insert("refund".into(), json!({"status": "no", "msg": message}));
        }
        // Neither made nor refused yet: not "ok", which would tell the client the money is back.
        Some(RefundResult::Settling) => {
            fields.insert(
                "refund".into(),
                json!({"status": "pending", "msg": SETTLING_MSG}),
            );
        }
        None => {}
    }
    fields.insert("refundValue".into(), render::amount(view.refund));
    if view.credit_note.is_some() {
        fields.insert(
            "creditNote".into(),
            state.settings.documents.credit_note_url(view).into(),
        );
    }
    Ok(answer)
}

/// What a create-return answer says of a refund the provider accepted and is still settling.
const SETTLING_MSG: &str = "the payment provider accepted the refund and is still settling it; \
     the return's refundState stays pending until it is refunded or declined";

/// A return id from a path segment, or a 400 naming it.
fn return_id(text: &str) -> Result<ReturnId, ApiError> {
    crate::edge::lenient::parse_digits(text)
        .ok()
        .and_then(|n| i64::try_from(n).ok())
        .filter(|n| *n > 0)
        .map(ReturnId)
        .ok_or_else(|| ApiError::BadRequest("field returnId: must be a positive integer".into()))
}

/// The update-return handler.
#[utoipa::path(
    put,
    path = "/returns/{returnId}",
    summary = "Complete a return, set it pending, or refund what it still owes",
    params(("returnId" = String, Path, description = "The return id from create return")),
    request_body = UpdateReturn
)]
pub async fn update_return(
    state: web::Data<ApiState>,
    path: web::Path<String>,
    body: Body<UpdateReturn>,
) -> Result<Answer, ApiError> {
    let raw = path.into_inner();
    let r = &body.request;
    let update = async {
        let id = return_id(&raw)?;
        let view = state
            .consign
            .update_return(
                id,
                r.completed.map(|f| f.0),
                flag(r.refund_payment, false),
                r.send_email.map(|f| f.0),
            )
            .await?;
        Ok(Answer::ok([(
            "return",
            render::return_object(&view, Some(&state.settings.documents)),
        )]))
    };
    update
        .await
        .map(|answer: Answer| answer.xml(body.xml))
        .map_err(|error: ApiError| body.refuse(error))
}

/// `GET <base>/returns`: newest first.
#[utoipa::path(
    get,
    path = "/returns",
    summary = "List returns, newest first",
    params(ReturnsQuery)
)]
pub async fn list_returns(
    state: web::Data<ApiState>,
    Params(query): Params<ReturnsQuery>,
) -> Result<Answer, ApiError> {
    let xml = flag(query.xml, false);
    let list = async {
        let (limit, _) = page(query.limit, None, 100, 100)?;
        let page = match query.page {
            None => 1,
            Some(p) if p.0 >= 1 => p.0,
            Some(_) => {
                return Err(ApiError::BadRequest(
                    "parameter page: must be a whole number from 1".into(),
                ))
            }
        };
        let returns = state
            .consign
            .list_returns(ReturnQuery {
                id: query.return_id.map(|r| ReturnId(r.0)),
                shipment: query.shipment.map(|s| s.0),
                order: query.order.map(|o| OrderId(o.0)),
                customer_id: query.customer_id.map(|c| c.0),
                newer_than: query.newer_than.map(|d| d.0),
                older_than: query.older_than.map(|d| d.0),
                limit,
                offset: (page - 1).saturating_mul(limit),
            })
            .await?;
        let links = &state.settings.documents;
        Ok(Answer::ok([(
            "returns",
            Value::Array(
                returns
                    .iter()
                    .map(|r| render::return_object(r, Some(links)))
                    .collect(),
            ),
        )]))
    };
    list.await
        .map(|answer: Answer| answer.xml(xml))
        .map_err(|error: ApiError| error.answered(xml, Default::default()))
}
