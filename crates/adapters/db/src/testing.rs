//! Throwaway databases for tests (feature `test-support`): a fresh SQLite file, or a fresh
//! PostgreSQL database created from a server URL and dropped afterwards.

use std::sync::atomic::{AtomicU32, Ordering};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::Text;

use consign_domain::{
    Currency, LineId, Money, OrderId, PaymentAuthorization, Providers, ShipmentLine,
    ShipmentRequest, TaxRate,
};
use consign_ports::{
    Customer, LineImport, OrderImport, OrderStore, Reservation, ShipmentDetails, StoreError,
    Timestamp,
};

use crate::config::{postgres_connection_url, Backend, DbConfig};
use crate::Database;

/// The PostgreSQL server tests use: `CONSIGN_TEST_POSTGRES`, else the local default.
pub fn postgres_server_url() -> String {
    std::env::var("CONSIGN_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}_{}_{}_{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Every row of a copy of the SQLite file at `path` taken alone, without its log beside it:
/// what an operator who copies only the database file gets.
pub async fn rows_of_the_file_alone(path: &str) -> Vec<String> {
    let copy = format!("{}.copy.db", unique_name(path));
    std::fs::copy(path, &copy).expect("copy the database file");
    let copied =
        crate::Database::open(&DbConfig::from_url(&format!("sqlite://{copy}"))).expect("open");
    let rows = copied.dump().await.expect("dump");
    drop(copied);
    for suffix in ["", "-wal", "-shm"] {
        std::fs::remove_file(format!("{copy}{suffix}")).ok();
    }
    rows
}

/// A row lock held by a session of its own; its transaction ends (and the lock goes) when this
/// is dropped and the session closes.
pub struct HeldLock(#[allow(dead_code)] PgConnection);

/// A database that exists only for one test; removed on drop.
pub struct Throwaway {
    /// `DATABASE_URL`-style text for it.
    pub url: String,
    /// Its configuration.
    pub config: DbConfig,
    admin_url: Option<String>,
    name: String,
}

impl Throwaway {
    /// A new SQLite file in the temporary directory.
    pub fn sqlite() -> Throwaway {
        let name = unique_name("consign_test");
        let path = std::env::temp_dir().join(format!("{name}.db"));
        let url = format!("sqlite://{}", path.display());
        Throwaway {
            config: DbConfig::from_url(&url),
            url,
            admin_url: None,
            name,
        }
    }

    /// A new, empty PostgreSQL database, or why none could be made.
    pub fn postgres() -> Result<Throwaway, String> {
        let server = postgres_server_url();
        let admin_url =
            postgres_connection_url(&format!("{}/postgres", server.trim_end_matches('/')));
        let mut admin = PgConnection::establish(&admin_url).map_err(|e| e.to_string())?;
        let name = unique_name("consign_test");
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .map_err(|e| e.to_string())?;
        let url = format!("{}/{name}", server.trim_end_matches('/'));
        Ok(Throwaway {
            config: DbConfig::from_url(&url),
            url,
            admin_url: Some(admin_url),
            name,
        })
    }

    /// Ends every connection to this PostgreSQL database from the server side, as a restart
    /// or a failover does (`pg_terminate_backend`); answers how many were ended. Nothing on
    /// SQLite.
    pub fn cut_connections(&self) -> usize {
        #[derive(QueryableByName)]
        struct Ended {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            ended: i64,
        }
        let Some(admin_url) = &self.admin_url else {
            return 0;
        };
        let mut admin = PgConnection::establish(admin_url).expect("connect as admin");
        let ended: Ended = diesel::sql_query(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) AS ended \
             FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind::<Text, _>(&self.name)
        .get_result(&mut admin)
        .expect("end the connections");
        usize::try_from(ended.ended).unwrap_or(0)
    }

    /// A session outside Consign, on this PostgreSQL database, that holds order `order`'s row
    /// lock until the answer is dropped: a peer frozen inside its transaction, or an operator's
    /// `psql` left open in one. `None` on SQLite.
    pub fn hold_order_lock(&self, order: i64) -> Option<HeldLock> {
        self.admin_url.as_ref()?;
        let mut session = PgConnection::establish(&self.config.target).expect("connect");
        session
            .batch_execute(&format!(
                "BEGIN; SELECT id FROM orders WHERE id = {order} FOR UPDATE"
            ))
            .expect("lock the order's row");
        Some(HeldLock(session))
    }

    /// The SHA-256 hashes in `api_keys`, read with a connection of its own.
    pub fn key_hashes(&self) -> Vec<String> {
        #[derive(QueryableByName)]
        struct Hash {
            #[diesel(sql_type = Text)]
            key_hash: String,
        }
        let query = diesel::sql_query("SELECT key_hash FROM api_keys ORDER BY id");
        let rows: Vec<Hash> = match self.config.backend {
            Backend::Postgres => {
                query.load(&mut PgConnection::establish(&self.config.target).expect("connect"))
            }
            Backend::Sqlite => {
                query.load(&mut SqliteConnection::establish(&self.config.target).expect("open"))
            }
        }
        .expect("read api_keys");
        rows.into_iter().map(|r| r.key_hash).collect()
    }
}

impl Drop for Throwaway {
    fn drop(&mut self) {
        match &self.admin_url {
            Some(admin_url) => {
                if let Ok(mut admin) = PgConnection::establish(admin_url) {
                    let _ = admin.batch_execute(&format!(
                        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                        self.name
                    ));
                }
            }
            None => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", self.config.target));
                }
            }
        }
    }
}

/// Whether a missing PostgreSQL must fail the run (`CI=true`) rather than skip.
pub fn postgres_required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Imports order `id`: one line of `quantity` units at 10.00, authorized in full, no fee.
pub async fn import_one_line_order(db: &Database, id: i64, quantity: u32) -> LineId {
    let sek: Currency = "SEK".parse().expect("a currency");
    let imported = db
        .import_order(
            OrderImport {
                id: Some(OrderId(id)),
                currency: sek,
                customer: Customer {
                    email: "s@example.com".into(),
                    ..Customer::default()
                },
                lines: vec![LineImport {
                    sku: "B".into(),
                    name: "B".into(),
                    unit_price: Money::from_minor(1_000, sek),
                    tax_rate: TaxRate(2500),
                    quantity,
                }],
                shipping_fee: Money::zero(sek),
                payment: Some(PaymentAuthorization {
                    provider: "sandbox".into(),
                    reference: "auth".into(),
                    amount: Money::from_minor(1_000 * i64::from(quantity), sek),
                }),
            },
            None,
            Timestamp(1),
        )
        .await
        .expect("import");
    imported.order.lines()[0].line_id()
}

/// Ships `quantity` units of order `id`'s `line`, captured or not.
pub async fn ship_from_one_line(
    db: &Database,
    id: i64,
    line: LineId,
    quantity: u32,
    capture: bool,
) -> Result<Reservation, StoreError> {
    db.reserve_shipment(
        OrderId(id),
        ShipmentRequest {
            lines: vec![ShipmentLine {
                line_id: line,
                quantity,
            }],
            capture,
            deduct_previous_costs: false,
        },
        Providers::any(),
        ShipmentDetails::default(),
        None,
        Timestamp(2),
    )
    .await
}
