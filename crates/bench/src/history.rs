//! Tables with history: earlier captured shipments, then fresh statistics, so the database
//! plans as it would in production (plans made on empty tables fall back to sequential scans).

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection, SqliteConnection};

/// A connection of either backend, for the bench's own SQL.
pub enum Raw {
    Pg(PgConnection),
    Sqlite(SqliteConnection),
}

impl Raw {
    pub fn open(url: &str, sqlite_path: Option<&str>) -> Result<Raw, String> {
        match sqlite_path {
            Some(path) => {
                let mut conn = SqliteConnection::establish(path).map_err(|e| e.to_string())?;
                conn.batch_execute("PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")
                    .map_err(|e| e.to_string())?;
                Ok(Raw::Sqlite(conn))
            }
            None => PgConnection::establish(&consign_db::postgres_connection_url(url))
                .map(Raw::Pg)
                .map_err(|e| e.to_string()),
        }
    }

    pub fn exec(&mut self, sql: &str) -> Result<(), String> {
        match self {
            Raw::Pg(c) => c.batch_execute(sql),
            Raw::Sqlite(c) => c.batch_execute(sql),
        }
        .map_err(|e| format!("{e}: {}", sql.chars().take(120).collect::<String>()))
    }
}

/// `count` earlier shipments: orders of five captured one-unit shipments each, with their
/// lines, capture attempts and invoices, then statistics.
pub fn seed_history(conn: &mut Raw, count: usize) -> Result<(), String> {
    let orders = count.div_ceil(5).max(1) as i64;
    let first = 5_000_000i64;
    let last = first + orders - 1;
    let series = |body: &str| {
        format!(
            "WITH RECURSIVE s(g) AS (SELECT {first} UNION ALL SELECT g + 1 FROM s WHERE g < {last}) {body}"
        )
    };
    let shipments = |body: &str| {
        format!(
            "WITH RECURSIVE s(g) AS (SELECT {first} UNION ALL SELECT g + 1 FROM s WHERE g < {last}), \
             k(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM k WHERE n < 5) {body}"
        )
    };
    conn.exec(&series(
        "INSERT INTO orders (id, currency, customer_id, email, first_name, last_name, address, zipcode, city, country, shipping_fee, payment_provider, payment_reference, authorized, committed, shipping_fee_committed, next_shipment_number, created_at, updated_at) \
         SELECT g, 'SEK', 1, 'history@example.com', 'H', 'H', 'Street 1', '11122', 'Stockholm', 'SE', 0, 'sandbox', 'auth', 5000, 5000, 0, 6, g, g FROM s",
    ))?;
    conn.exec(&series(
        "INSERT INTO order_lines (order_id, line_id, position, sku, name, unit_price, tax_rate, quantity, allocated, in_capture) \
         SELECT g, g + 10000000, 0, 'SKU', 'Item', 1000, 2500, 5, 5, 5 FROM s",
    ))?;
    conn.exec(&shipments(
        "INSERT INTO shipments (order_id, number, state, gtg, shipped, carrier, service, packages, tracking, return_slip_tracking, capture_amount, carries_shipping_fee, capture_reference, created_at, updated_at, shipped_at, needs_review, internal_comment) \
         SELECT g, n, 'captured', 1, 1, 'DHL', '', 1, 'T', '', 1000, 0, 'ref', g, g, g, 0, '' FROM s, k",
    ))?;
    conn.exec(&shipments(
        "INSERT INTO shipment_lines (order_id, number, line_id, quantity) SELECT g, n, g + 10000000, 1 FROM s, k",
    ))?;
    conn.exec(&shipments(
        "INSERT INTO capture_attempts (order_id, number, attempt, idempotency_key, amount, final_capture, state, provider_reference, created_at, updated_at, passes, void_on_decline) \
         SELECT g, n, 1, 'history-' || g || '-' || n, 1000, 0, 'succeeded', 'ref', g, g, 0, 1 FROM s, k",
    ))?;
    conn.exec(&shipments(&format!(
        "INSERT INTO invoices (number, order_id, shipment_number, amount, issued_at) \
         SELECT (g - {first}) * 5 + n, g, n, 1000, g FROM s, k"
    )))?;
    conn.exec(&format!(
        "UPDATE counters SET value = {} WHERE name = 'invoice_number'",
        orders * 5
    ))?;
    analyze(conn)
}

/// Fresh statistics for the planner.
pub fn analyze(conn: &mut Raw) -> Result<(), String> {
    conn.exec("ANALYZE")
}
