//! `consign-floor`: the least a server can spend on one create-shipment over HTTP on
//! PostgreSQL, for `consign-bench --floor` to measure beside Consign.
//!
//! It is built from the parts Consign is built from (actix-web with its default workers, Diesel
//! on libpq, a connection blocking its worker for the statement, as Consign's short
//! transactions do) and does only what no implementation of the exchange can skip: it reads the
//! request, checks the key, parses and checks the JSON, runs the ceiling's two prepared
//! statements (`bench/pgbench/ceiling.sql`: the reserve, then the settle with its invoice),
//! answers a body as long as Consign's, and writes an access log line. Everything else Consign
//! does (the domain's plan, the capture through a gateway, signed document links, idempotency,
//! rate limits, metrics) is left out, so its CPU per request is a floor for Consign's, not a
//! model of it.
//!
//! Environment, as `consign` reads it: `CONSIGN_LISTEN`, `DATABASE_URL`, `CONSIGN_API_KEY`; and
//! `CONSIGN_FLOOR_ORDERS`, the orders `consign-bench` seeded (request order ids wrap onto them).

#[path = "../prepared.rs"]
#[allow(dead_code)]
mod prepared;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use actix_web::http::StatusCode;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use diesel::pg::PgConnection;
use diesel::sql_types::BigInt;
use diesel::{Connection, QueryableByName, RunQueryDsl};
use prepared::{sql, stmt};
use serde::Deserialize;

sql!(
    Reserve,
    "WITH o AS (
  UPDATE orders SET next_shipment_number = next_shipment_number + 1, committed = committed + 1000,
    updated_at = 1 WHERE id = ? RETURNING id, next_shipment_number - 1 AS n),
s AS (
  INSERT INTO shipments (order_id, number, state, gtg, shipped, carrier, service, packages, tracking,
    return_slip_tracking, capture_amount, carries_shipping_fee, created_at, updated_at, needs_review,
    internal_comment)
  SELECT id, n, 'pending', 0, 0, '', '', 0, '', '', 1000, 0, 0, 0, 0, '' FROM o),
l AS (
  INSERT INTO shipment_lines (order_id, number, line_id, quantity) SELECT id, n, id, 1 FROM o),
a AS (
  UPDATE order_lines SET allocated = allocated + 1, in_capture = in_capture + 1
  WHERE order_id = ? AND line_id = ? AND allocated + 1 <= quantity RETURNING 1),
c AS (
  INSERT INTO capture_attempts (order_id, number, attempt, idempotency_key, amount, final_capture,
    state, created_at, updated_at, passes, void_on_decline)
  SELECT id, n, 1, 'bench-' || id || '-' || n, 1000, 0, 'pending', 0, 0, 0, 1 FROM o)
SELECT n::bigint AS n FROM o"
);

sql!(
    Settle,
    "WITH a AS (
  UPDATE capture_attempts SET state = 'succeeded', provider_reference = 'ref', updated_at = 1
  WHERE order_id = ? AND idempotency_key = 'bench-' || ? || '-' || ?
    AND state IN ('pending', 'unknown', 'needs_review') RETURNING number),
s AS (
  UPDATE shipments SET state = 'captured', capture_reference = 'ref', needs_review = 0, updated_at = 1
  WHERE order_id = ? AND number = ? AND state = 'pending' AND EXISTS (SELECT 1 FROM a)),
v AS (
  UPDATE counters SET value = value + 1 WHERE name = 'invoice_number' AND EXISTS (SELECT 1 FROM a)
  RETURNING value)
INSERT INTO invoices (number, order_id, shipment_number, amount, issued_at)
SELECT value, ?, ?, 1000, 0 FROM v"
);

/// Create-shipment's fields, checked as strictly as Consign checks them.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // read by serde's checks, not by the floor
struct CreateShipment {
    order: i64,
    products: BTreeMap<String, i64>,
    #[serde(default)]
    capture: Option<bool>,
}

#[derive(QueryableByName)]
struct Number {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

struct Floor {
    database_url: String,
    key: String,
    orders: i64,
    statements: AtomicU64,
}

thread_local! {
    /// Each worker's connection: the worker blocks on it for its statements, as Consign's
    /// workers block on theirs.
    static CONNECTION: RefCell<Option<PgConnection>> = const { RefCell::new(None) };
}

fn no(status: StatusCode, msg: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("application/json")
        .body(serde_json::json!({"status": "no", "msg": msg}).to_string())
}

/// The reserve and the settle, each one prepared statement that commits: the shipment's number.
fn ship(floor: &Floor, order: i64) -> Result<i64, String> {
    CONNECTION.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(PgConnection::establish(&floor.database_url).map_err(|e| e.to_string())?);
        }
        let conn = slot.as_mut().ok_or("no connection")?;
        let number = stmt::<Reserve>(vec![order, order, order])
            .get_result::<Number>(conn)
            .map_err(|e| e.to_string())?
            .n;
        stmt::<Settle>(vec![order, order, number, order, number, order, number])
            .execute(conn)
            .map_err(|e| e.to_string())?;
        floor.statements.fetch_add(2, Ordering::Relaxed);
        Ok(number)
    })
}

/// A document link as long as Consign's (path, expiry and signature).
fn link(base: &str, shipment: &str, document: &str) -> String {
    format!(
        "{base}/documents/{shipment}/{document}.pdf?token=1798239962.{}",
        "0".repeat(64)
    )
}

async fn create(req: HttpRequest, body: web::Bytes, floor: web::Data<Arc<Floor>>) -> HttpResponse {
    let started = Instant::now();
    let answer = answer(&req, &body, &floor);
    let _ = writeln!(
        std::io::stderr().lock(),
        "INFO request method={} path={} status={} micros={}",
        req.method(),
        req.path(),
        answer.status().as_u16(),
        started.elapsed().as_micros()
    );
    answer
}

fn answer(req: &HttpRequest, body: &[u8], floor: &Floor) -> HttpResponse {
    let key = req
        .headers()
        .get("API-Authorization")
        .and_then(|v| v.to_str().ok());
    if key != Some(floor.key.as_str()) {
        return no(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let request: CreateShipment = match serde_json::from_slice(body) {
        Ok(request) => request,
        Err(e) => return no(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    if request.products.is_empty() || request.products.values().any(|&q| q < 1) {
        return no(StatusCode::BAD_REQUEST, "products: a quantity of 1 or more");
    }
    let order = (request.order - 1).rem_euclid(floor.orders) + 1;
    let number = match ship(floor, order) {
        Ok(number) => number,
        Err(e) => return no(StatusCode::SERVICE_UNAVAILABLE, &e),
    };
    let shipment = format!("{}-{number}", request.order);
    let base = format!("http://{}/api/order", req.connection_info().host());
    let answer = serde_json::json!({
        "status": "ok",
        "order": request.order,
        "shipment": shipment,
        "deliveryNote": link(&base, &shipment, "delivery-note"),
        "proforma": link(&base, &shipment, "proforma"),
        "invoice": link(&base, &shipment, "invoice"),
    });
    HttpResponse::Ok()
        .content_type("application/json")
        .body(answer.to_string())
}

async fn ready() -> HttpResponse {
    HttpResponse::Ok().finish()
}

async fn metrics(floor: web::Data<Arc<Floor>>) -> HttpResponse {
    HttpResponse::Ok().body(format!(
        "consign_db_statements_total {}\n",
        floor.statements.load(Ordering::Relaxed)
    ))
}

fn main() -> std::io::Result<()> {
    let setting = |name: &str| {
        std::env::var(name).map_err(|_| std::io::Error::other(format!("{name} is not set")))
    };
    let floor = Arc::new(Floor {
        database_url: setting("DATABASE_URL")?,
        key: setting("CONSIGN_API_KEY")?,
        orders: setting("CONSIGN_FLOOR_ORDERS")?
            .parse::<i64>()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| std::io::Error::other("CONSIGN_FLOOR_ORDERS: a count of orders"))?,
        statements: AtomicU64::new(0),
    });
    let listen = setting("CONSIGN_LISTEN")?;
    actix_web::rt::System::new().block_on(
        HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(floor.clone()))
                .route("/readyz", web::get().to(ready))
                .route("/metrics", web::get().to(metrics))
                .route("/api/order/shipments", web::post().to(create))
        })
        .bind(listen)?
        .run(),
    )
}
