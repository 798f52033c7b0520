//! # consign-tests
//!
//! Hexagonal integration tests: the real `consign` application (HTTP adapter, Diesel store on
//! a throwaway SQLite file or PostgreSQL database, sandbox gateway) served on loopback and driven
//! over HTTP, as a warehouse client would. [`spawn_app`] is the one entry point.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub use consign_db::testing::HeldLock;
use consign_db::testing::{postgres_required, Throwaway};
use consign_db::Database;
use consign_documents::PdfRenderer;
use consign_mail::FolderMailer;
use consign_payments::SandboxGateway;
use consign_ports::Clock;
use consign_server::{Application, Config, OsRandom};
use consign_service::Ports;
use serde_json::{json, Value};

pub mod stripe_rig;

/// The API key every test app accepts.
pub const TEST_KEY: &str = "csk_integration-test-key-0123456789";

/// Which database a test app runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A throwaway SQLite file (the embedded default).
    Sqlite,
    /// A throwaway PostgreSQL database.
    Postgres,
}

/// SQLite always; PostgreSQL too when reachable (required with `CI=true`).
pub fn backends() -> Vec<Backend> {
    match Throwaway::postgres() {
        Ok(_) => vec![Backend::Sqlite, Backend::Postgres],
        Err(why) if postgres_required() => panic!("CI=true but PostgreSQL is unreachable: {why}"),
        Err(why) => {
            eprintln!("SKIPPED on PostgreSQL (unreachable: {why}); set CI=true to require it");
            vec![Backend::Sqlite]
        }
    }
}

/// A running app and the handles a test needs to look behind the API.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    /// The base path of every call.
    pub base: String,
    /// The store, for dumps.
    pub database: Database,
    /// The sandbox gateway, for what it really captured.
    pub sandbox: Arc<SandboxGateway>,
    /// Which backend.
    pub backend: Backend,
    runtime: tokio::runtime::Runtime,
    throwaway: Option<Throwaway>,
}

/// An answer: status, headers of interest, body text.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Content-Type.
    pub content_type: String,
    /// Retry-After, if any.
    pub retry_after: Option<String>,
    /// Allow, if any.
    pub allow: Option<String>,
    /// Idempotent-Replayed, if any.
    pub replayed: Option<String>,
    /// The body.
    pub body: String,
}

impl Reply {
    /// The body as JSON (panics if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// Starts the real application on a free loopback port with a fresh database.
pub fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, &[])
}

/// A fresh throwaway database of `backend`.
pub fn throwaway(backend: Backend) -> Throwaway {
    match backend {
        Backend::Sqlite => Throwaway::sqlite(),
        Backend::Postgres => Throwaway::postgres().expect("PostgreSQL for this test"),
    }
}

/// As [`spawn_app`], with extra settings (`("CONSIGN_MAX_BODY", "64KiB")`).
pub fn spawn_app_with(backend: Backend, settings: &[(&str, &str)]) -> TestApp {
    let db = throwaway(backend);
    let url = db.url.clone();
    let mut app = spawn_app_on(backend, &url, settings);
    app.throwaway = Some(db);
    app
}

/// The service's ports on real adapters: `database` for every store, PDF documents, mail into
/// a folder under the temporary directory named `mail`, OS randomness and `clock`. For tests
/// that drive the service itself, with a gateway of their choosing.
pub fn real_ports(database: &Database, mail: &str, clock: Arc<dyn Clock>) -> Ports {
    Ports {
        store: Arc::new(database.clone()),
        returns: Arc::new(database.clone()),
        keys: Arc::new(database.clone()),
        idempotency: Arc::new(database.clone()),
        renderer: Arc::new(PdfRenderer::new()),
        mailer: Arc::new(FolderMailer::new(std::env::temp_dir().join(mail))),
        clock,
        ids: Arc::new(OsRandom),
    }
}

/// Another instance on an existing database (`url`), as a second server behind a load balancer.
pub fn spawn_app_on(backend: Backend, url: &str, settings: &[(&str, &str)]) -> TestApp {
    let mut values: BTreeMap<String, String> = [
        ("CONSIGN_LISTEN", "127.0.0.1:0"),
        ("CONSIGN_API_KEY", TEST_KEY),
        ("CONSIGN_WORKERS", "2"),
        ("CONSIGN_RECOVERY_AFTER", "1s"),
        ("CONSIGN_OUTBOX_INTERVAL", "200ms"),
        ("CONSIGN_MAIL_RETRY_BASE", "100ms"),
        // Tests send wrong keys on purpose from one address; the limiter has its own test.
        ("CONSIGN_AUTH_FAILURE_LIMIT", "0"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    values.insert("DATABASE_URL".into(), url.to_owned());
    let mail_dir = std::env::temp_dir().join(format!("consign-test-mail-{}", std::process::id()));
    values.insert("CONSIGN_MAIL_DIR".into(), mail_dir.display().to_string());
    for (k, v) in settings {
        values.insert((*k).to_owned(), (*v).to_owned());
    }
    let config = Config::from_values(&values).expect("test configuration");
    let base = config.base_path.clone();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let app = Application::build(config)
                .await
                .expect("application starts");
            sender
                .send((
                    app.port(),
                    app.core.database.clone(),
                    // An instance without the sandbox gets one nobody calls: it captures nothing.
                    app.core
                        .sandbox
                        .clone()
                        .unwrap_or_else(|| Arc::new(SandboxGateway::new(Default::default()))),
                ))
                .expect("test still waiting");
            app.run_until_stopped().await
        })
    });
    let (port, database, sandbox) = receiver
        .recv_timeout(Duration::from_secs(30))
        .expect("application started");
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        base,
        database,
        sandbox,
        backend,
        runtime: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime"),
        throwaway: None,
    }
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(30))
        .build()
}

fn reply(result: Result<ureq::Response, ureq::Error>) -> Reply {
    let response = match result {
        Ok(response) => response,
        Err(ureq::Error::Status(_, response)) => response,
        Err(ureq::Error::Transport(t)) => panic!("transport error: {t}"),
    };
    Reply {
        status: response.status(),
        content_type: response.content_type().to_owned(),
        retry_after: response.header("Retry-After").map(str::to_owned),
        allow: response.header("Allow").map(str::to_owned),
        replayed: response.header("Idempotent-Replayed").map(str::to_owned),
        body: response.into_string().unwrap_or_default(),
    }
}

impl TestApp {
    /// The URL of a call under the base path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}{path}", self.address, self.base)
    }

    /// Ends every connection the server holds to its PostgreSQL database, as a database restart
    /// or failover does; answers how many (0 on SQLite).
    pub fn cut_database_connections(&self) -> usize {
        self.throwaway
            .as_ref()
            .map_or(0, Throwaway::cut_connections)
    }

    /// Holds order `order`'s row lock from a session outside the server until the answer is
    /// dropped (PostgreSQL; `None` on SQLite).
    pub fn hold_order_lock(&self, order: i64) -> Option<HeldLock> {
        self.throwaway.as_ref()?.hold_order_lock(order)
    }

    /// Sends a raw request. `headers` are added as given; nothing else is set for the caller.
    pub fn raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Reply {
        let mut request = agent().request(method, &self.url(path));
        for (name, value) in headers {
            request = request.set(name, value);
        }
        reply(match body {
            Some(bytes) => request.send_bytes(bytes),
            None => request.call(),
        })
    }

    /// POSTs JSON with the test key.
    pub fn post(&self, path: &str, body: &Value) -> Reply {
        self.raw(
            "POST",
            path,
            &[
                ("API-Authorization", TEST_KEY),
                ("Content-Type", "application/json"),
            ],
            Some(body.to_string().as_bytes()),
        )
    }

    /// PUTs JSON with the test key.
    pub fn put(&self, path: &str, body: &Value) -> Reply {
        self.raw(
            "PUT",
            path,
            &[
                ("API-Authorization", TEST_KEY),
                ("Content-Type", "application/json"),
            ],
            Some(body.to_string().as_bytes()),
        )
    }

    /// DELETEs with the test key.
    pub fn delete(&self, path: &str) -> Reply {
        self.raw("DELETE", path, &[("API-Authorization", TEST_KEY)], None)
    }

    /// GETs with the test key.
    pub fn get(&self, path: &str) -> Reply {
        self.raw("GET", path, &[("API-Authorization", TEST_KEY)], None)
    }

    /// Imports `order` and answers its line ids, in the order given.
    pub fn import(&self, order: &Value) -> Vec<String> {
        let reply = self.post("/order", order);
        let answer = reply.json();
        assert_eq!(answer["status"], "ok", "import failed: {}", reply.body);
        answer["products"]
            .as_array()
            .expect("products")
            .iter()
            .map(|p| p["lineId"].as_str().expect("lineId").to_owned())
            .collect()
    }

    /// One order as `GET orders` lists it.
    pub fn order(&self, id: i64) -> Value {
        let answer = self.get(&format!("/orders?order={id}")).json();
        answer["orders"][0].clone()
    }

    /// Every business row in the database, for before/after comparisons.
    pub fn dump(&self) -> Vec<String> {
        self.runtime
            .block_on(self.database.dump())
            .expect("dump the database")
    }
}

/// The design's example order: 2 x 249.50 + 1 x 199.00 + 49.00 shipping = 747.00 SEK.
pub fn example_order(id: i64, payment_reference: &str) -> Value {
    json!({
        "order": id,
        "currency": "SEK",
        "email": "anna@example.com",
        "firstName": "Anna",
        "lastName": "Svensson",
        "address": {"address": "Storgatan 1", "zipcode": "11122", "city": "Stockholm", "country": "SE"},
        "products": [
            {"sku": "TSHIRT-M", "name": "T-shirt", "qty": 2, "price": "249.50", "vat": "25"},
            {"sku": "CAP", "name": "Cap", "qty": 1, "price": "199.00", "vat": "25"}
        ],
        "shippingValue": "49.00",
        "payment": {"provider": "sandbox", "reference": payment_reference, "amount": "747.00"}
    })
}
