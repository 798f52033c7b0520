//! Wiring: the one builder `main` and the integration tests share.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{App, HttpServer};
use consign_db::{Database, DbConfig, DbError};
use consign_documents::PdfRenderer;
use consign_http::{ApiState, HttpSettings, RequestMetrics};
use consign_mail::{FolderMailer, SmtpMailer};
use consign_payments::{SandboxConfig, SandboxGateway, StripeError, StripeGateway};
use consign_ports::{MailError, Mailer};
use consign_service::{Consign, Gateways, Ports, ServiceError};

use crate::config::{Config, GatewayKind};
use crate::system::{OsRandom, SystemClock};

/// Why the application could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database could not be opened or migrated.
    #[error(transparent)]
    Database(#[from] DbError),
    /// The payment gateway could not be set up.
    #[error("payment gateway: {0}")]
    Gateway(#[from] StripeError),
    /// Stripe is enabled without its settings.
    #[error("payment gateway: stripe is enabled without CONSIGN_STRIPE_SECRET_KEY")]
    NoStripeSettings,
    /// The mail transport could not be set up.
    #[error("mail: {0}")]
    Mail(#[from] MailError),
    /// Keys could not be provisioned.
    #[error("cannot provision API keys: {0}")]
    Keys(#[from] ServiceError),
    /// The address could not be bound.
    #[error("cannot listen on {address}: {why}")]
    Listen {
        /// The address.
        address: String,
        /// The error.
        why: String,
    },
}

/// The use cases over real adapters, without the HTTP server (CLI commands use this).
pub struct Core {
    /// The use cases.
    pub consign: Consign,
    /// The database.
    pub database: Database,
    /// The sandbox gateway, when enabled (it moves no money).
    pub sandbox: Option<Arc<SandboxGateway>>,
}

impl Core {
    /// Opens the database (applying migrations) and wires the service.
    pub fn open(config: &Config) -> Result<Core, StartError> {
        let mut db_config = DbConfig::from_url(&config.database_url);
        if let Some(size) = config.pool_size {
            db_config.pool_size = size;
        }
        db_config.connection_timeout = config.pool_timeout;
        let database = Database::open(&db_config)?;
        // Only the gateways the operator enabled: an order naming another provider is refused.
        let mut gateways = Gateways::new();
        let mut sandbox = None;
        for kind in &config.gateways {
            match kind {
                GatewayKind::Sandbox => {
                    let gateway = Arc::new(SandboxGateway::new(SandboxConfig {
                        latency: config.sandbox_latency,
                        ..SandboxConfig::default()
                    }));
                    sandbox = Some(gateway.clone());
                    gateways = gateways.with(gateway);
                }
                GatewayKind::Stripe => {
                    let stripe = config.stripe.clone().ok_or(StartError::NoStripeSettings)?;
                    gateways = gateways.with(Arc::new(StripeGateway::new(stripe)?));
                }
            }
        }
        let mailer: Arc<dyn Mailer> = match &config.smtp_url {
            Some(url) => Arc::new(SmtpMailer::from_url(url)?),
            None => Arc::new(FolderMailer::new(&config.mail_dir)),
        };
        let consign = Consign::new(
            Ports {
                store: Arc::new(database.clone()),
                returns: Arc::new(database.clone()),
                keys: Arc::new(database.clone()),
                idempotency: Arc::new(database.clone()),
                renderer: Arc::new(PdfRenderer::new()),
                mailer,
                clock: Arc::new(SystemClock),
                ids: Arc::new(OsRandom),
            },
            gateways,
            config.store.clone(),
        );
        Ok(Core {
            consign,
            database,
            sandbox,
        })
    }
}

/// A running Consign: HTTP server, recovery worker, and what tests want to look at.
pub struct Application {
    server: actix_web::dev::Server,
    /// Recovery and the outbox: stopped once the server has drained, before the checkpoint.
    background: Vec<actix_web::rt::task::JoinHandle<()>>,
    port: u16,
    /// The wired core.
    pub core: Core,
    /// A key created on this start because none existed: shown once, never stored in clear.
    pub created_key: Option<String>,
}

impl Application {
    /// Opens everything and binds the listener; the server runs once awaited.
    pub async fn build(config: Config) -> Result<Application, StartError> {
        let core = Core::open(&config)?;
        let created_key = provision_keys(&core.consign, &config).await?;
        let listener = TcpListener::bind(config.listen).map_err(|e| StartError::Listen {
            address: config.listen.to_string(),
            why: e.to_string(),
        })?;
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        let public_url = if config.listen.port() == 0 {
            // Tests bind port 0: links must carry the port actually bound.
            format!("http://{}:{port}", config.listen.ip())
        } else {
            config.public_url.clone()
        };
        let state = ApiState {
            metrics: actix_web::web::Data::new(RequestMetrics::default()),
            consign: core.consign.clone(),
            settings: Arc::new(
                HttpSettings::new(
                    &config.base_path,
                    &public_url,
                    config.max_body,
                    config
                        .document_secret
                        .as_deref()
                        .unwrap_or(core.database.document_secret()),
                    i64::try_from(config.document_ttl.as_secs()).unwrap_or(i64::MAX / 2),
                )
                .with_rate_limit(config.rate_limit)
                .with_auth_failure_limit(config.auth_failure_limit)
                .with_metrics_token(config.metrics_token.clone()),
            ),
        };
        if let Some(address) = config.metrics_listen {
            let metrics_state = state.clone();
            let metrics_server = HttpServer::new(move || {
                App::new().configure(consign_http::metrics_routes(metrics_state.clone()))
            })
            .workers(1)
            .shutdown_timeout(1)
            .bind(address)
            .map_err(|e| StartError::Listen {
                address: address.to_string(),
                why: e.to_string(),
            })?
            .run();
            actix_web::rt::spawn(metrics_server);
        }
        let drain = config.drain_window();
        let drain_seconds = drain.as_secs() + u64::from(drain.subsec_nanos() > 0);
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(actix_web::middleware::from_fn(consign_http::header_limits))
                .wrap(actix_web::middleware::from_fn(consign_http::telemetry))
                .configure(consign_http::routes(state.clone()))
        })
        // SIGTERM/SIGINT: stop accepting, let requests in flight finish (a capture included).
        .shutdown_timeout(drain_seconds)
        .client_request_timeout(std::time::Duration::from_secs(10))
        .client_disconnect_timeout(std::time::Duration::from_secs(2));
        if let Some(workers) = config.workers {
            server = server.workers(workers);
        }
        let server = server
            .listen(listener)
            .map_err(|e| StartError::Listen {
                address: config.listen.to_string(),
                why: e.to_string(),
            })?
            .run();
        let background = vec![
            spawn_recovery(core.consign.clone(), config.recovery_after),
            spawn_outbox(core.consign.clone(), config.outbox_interval),
        ];
        Ok(Application {
            server,
            background,
            port,
            core,
            created_key,
        })
    }

    /// The port bound (useful with port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until the process is told to stop (SIGINT/SIGTERM: graceful).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let served = self.server.await;
        // The requests in flight have finished. Stop the background passes too (each is safe
        // to cut short, as a crash is: what it left open the next start recovers), so that no
        // write follows the checkpoint; then, on SQLite, leave every write in the file.
        for task in &self.background {
            task.abort();
        }
        for task in self.background {
            let _ = task.await;
        }
        if let Err(error) = self.core.database.checkpoint_at_stop().await {
            tracing::warn!(%error, "database not checkpointed at the stop");
        }
        served
    }
}

/// `CONSIGN_API_KEY` is stored (hashed) if new; with no key at all, one is created.
async fn provision_keys(consign: &Consign, config: &Config) -> Result<Option<String>, StartError> {
    if let Some(key) = &config.api_key {
        consign.ensure_api_key(key, "CONSIGN_API_KEY").await?;
        return Ok(None);
    }
    if consign.list_api_keys().await?.is_empty() {
        let (_, key) = consign.create_api_key("first start").await?;
        return Ok(Some(key));
    }
    Ok(None)
}

/// Settles captures and refunds left pending by crashes or unknown outcomes: once at start, then at every
/// `age` interval, replaying attempts older than `age`.
fn spawn_recovery(consign: Consign, age: Duration) -> actix_web::rt::task::JoinHandle<()> {
    let age_millis = i64::try_from(age.as_millis()).unwrap_or(i64::MAX);
    let interval = age.max(Duration::from_secs(1));
    actix_web::rt::spawn(async move {
        loop {
            if let Err(error) = consign.recover_pending_captures(age_millis).await {
                tracing::warn!(%error, "recovery pass failed; will try again");
            }
            if let Err(error) = consign.recover_pending_refunds(age_millis).await {
                tracing::warn!(%error, "refund recovery pass failed; will try again");
            }
            if let Err(error) = consign.purge_idempotency_records().await {
                tracing::warn!(%error, "could not purge old idempotency records");
            }
            actix_web::rt::time::sleep(interval).await;
        }
    })
}

/// Sends the shipping confirmations the outbox holds: every `interval`, and again at once while
/// there is more to send.
fn spawn_outbox(consign: Consign, interval: Duration) -> actix_web::rt::task::JoinHandle<()> {
    actix_web::rt::spawn(async move {
        loop {
            match consign.deliver_outbox().await {
                Ok(report) if report.sent + report.failed + report.refused > 0 => continue,
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "outbox pass failed; will try again"),
            }
            actix_web::rt::time::sleep(interval).await;
        }
    })
}
