//! `consign-floor`: the least a server can spend on one create-shipment over HTTP, for
//! `consign-bench --floor` to measure beside Consign.
//!
//! It is built from the parts Consign is built from (actix-web with its default workers, Diesel)
//! and does only what no implementation of the exchange can skip: it reads the request, checks
//! the key, parses and checks the JSON, makes the ceiling's two writes (the reserve, then the
//! settle with its invoice), answers a body as long as Consign's, and writes an access log line.
//! Everything else Consign does (the domain's plan, the capture through a gateway, signed
//! document links, idempotency, rate limits, metrics) is left out, so what it spends per request
//! is a floor for Consign's, not a model of it.
//!
//! - On PostgreSQL each write is one prepared statement that commits
//!   (`bench/pgbench/ceiling.sql`), on a connection blocking its worker for the statement, as
//!   Consign's short transactions do.
//! - On SQLite the two writes go to the ceiling's own writer thread (`sqlite_writer`, the same
//!   group commit as Consign's writer), which the worker awaits as Consign's workers await
//!   theirs. Its throughput beside the ceiling's is what the HTTP exchange alone costs a
//!   single writer's groups.
//!
//! Environment, as `consign` reads it: `CONSIGN_LISTEN`, `DATABASE_URL`, `CONSIGN_API_KEY`; and
//! `CONSIGN_FLOOR_ORDERS`, the orders `consign-bench` seeded (request order ids wrap onto them).

#[path = "../cpu.rs"]
#[allow(dead_code)]
mod cpu;
#[path = "../prepared.rs"]
#[allow(dead_code)]
mod prepared;
#[path = "../sqlite_writer.rs"]
#[allow(dead_code)] // a later capture's start: the floor captures every shipment at creation
mod sqlite_writer;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Instant;

use actix_web::http::StatusCode;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use diesel::pg::PgConnection;
use diesel::sql_types::BigInt;
use diesel::{Connection, QueryableByName, RunQueryDsl};
use prepared::{sql, stmt};
use serde::Deserialize;
use sqlite_writer::{Counters, Job};

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

/// Where the writes go.
enum Store {
    /// Each worker's own connection to this URL.
    Postgres(String),
    /// The one writer thread's queue, and its commits so far.
    Sqlite {
        queue: mpsc::Sender<Job>,
        commits: Arc<AtomicU64>,
    },
}

struct Floor {
    store: Store,
    key: String,
    orders: i64,
    /// Statements sent (PostgreSQL) or writes queued (SQLite).
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

/// PostgreSQL's reserve and settle, each one prepared statement that commits: the shipment's
/// number.
fn ship_postgres(database_url: &str, order: i64) -> Result<i64, String> {
    CONNECTION.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(PgConnection::establish(database_url).map_err(|e| e.to_string())?);
        }
        let conn = slot.as_mut().ok_or("no connection")?;
        let number = stmt::<Reserve>(vec![order, order, order])
            .get_result::<Number>(conn)
            .map_err(|e| e.to_string())?
            .n;
        stmt::<Settle>(vec![order, order, number, order, number, order, number])
            .execute(conn)
            .map_err(|e| e.to_string())?;
        Ok(number)
    })
}

/// SQLite's reserve with capture and its settle, each answered once the writer's commit that
/// holds it is durable: the shipment's number.
async fn ship_sqlite(queue: &mpsc::Sender<Job>, order: i64) -> Result<i64, String> {
    let number = write(queue, true, move |c, _| {
        sqlite_writer::reserve(c, order, true)
    })
    .await?;
    write(queue, false, move |c, k| {
        sqlite_writer::settle(c, k, order, number, false)
    })
    .await?;
    Ok(number)
}

/// Queues `work` on the writer and awaits its commit.
async fn write(
    queue: &mpsc::Sender<Job>,
    more_follows: bool,
    work: impl FnOnce(&mut diesel::SqliteConnection, &mut Counters) -> diesel::QueryResult<i64>
        + Send
        + 'static,
) -> Result<i64, String> {
    let (reply, answer) = tokio::sync::oneshot::channel();
    sqlite_writer::queue(queue, more_follows, work, move |done| {
        let _ = reply.send(done);
    })?;
    answer.await.map_err(|_| "the writer stopped".to_string())?
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
    let answer = match check(&req, &body, &floor) {
        Err((status, msg)) => no(status, &msg),
        Ok((asked, order)) => {
            let shipped = match &floor.store {
                Store::Postgres(url) => ship_postgres(url, order),
                Store::Sqlite { queue, .. } => ship_sqlite(queue, order).await,
            };
            match shipped {
                Ok(number) => {
                    floor.statements.fetch_add(2, Ordering::Relaxed);
                    answer(&req, asked, number)
                }
                Err(e) => no(StatusCode::SERVICE_UNAVAILABLE, &e),
            }
        }
    };
    // One write per line, as Consign's logger makes: stderr is unbuffered, and written piece
    // by piece the line cost the floor nine system calls a request.
    let line = format!(
        "INFO request method={} path={} status={} micros={}\n",
        req.method(),
        req.path(),
        answer.status().as_u16(),
        started.elapsed().as_micros()
    );
    let _ = std::io::stderr().write_all(line.as_bytes());
    answer
}

/// The key and the body checked: the order asked for, and the seeded order it maps onto.
fn check(
    req: &HttpRequest,
    body: &[u8],
    floor: &Floor,
) -> Result<(i64, i64), (StatusCode, String)> {
    let key = req
        .headers()
        .get("API-Authorization")
        .and_then(|v| v.to_str().ok());
    if key != Some(floor.key.as_str()) {
        return Err((StatusCode::UNAUTHORIZED, "unauthorized".into()));
    }
    let request: CreateShipment =
        serde_json::from_slice(body).map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))?;
    if request.products.is_empty() || request.products.values().any(|&q| q < 1) {
        return Err((
            StatusCode::BAD_REQUEST,
            "products: a quantity of 1 or more".into(),
        ));
    }
    Ok((
        request.order,
        (request.order - 1).rem_euclid(floor.orders) + 1,
    ))
}

/// The answer for shipment `number` of order `asked`, as long as Consign's.
fn answer(req: &HttpRequest, asked: i64, number: i64) -> HttpResponse {
    let shipment = format!("{asked}-{number}");
    let base = format!("http://{}/api/order", req.connection_info().host());
    let answer = serde_json::json!({
        "status": "ok",
        "order": asked,
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
    let commits = match &floor.store {
        Store::Postgres(_) => 0,
        Store::Sqlite { commits, .. } => commits.load(Ordering::Relaxed),
    };
    HttpResponse::Ok().body(format!(
        "consign_db_statements_total {}\nconsign_db_writer_commits_total {commits}\n",
        floor.statements.load(Ordering::Relaxed)
    ))
}

fn main() -> std::io::Result<()> {
    let setting = |name: &str| {
        std::env::var(name).map_err(|_| std::io::Error::other(format!("{name} is not set")))
    };
    let database = consign_db::DbConfig::from_url(&setting("DATABASE_URL")?);
    let store = match database.backend {
        consign_db::Backend::Postgres => Store::Postgres(database.target),
        consign_db::Backend::Sqlite => {
            // Named as Consign's writer, so that the benchmark reads its CPU the same way.
            let writer = sqlite_writer::start(&database.target, "consign-sqlite-writer")
                .map_err(std::io::Error::other)?;
            // It runs until the process ends.
            drop(writer.thread);
            Store::Sqlite {
                queue: writer.queue,
                commits: writer.commits,
            }
        }
    };
    let floor = Arc::new(Floor {
        store,
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
