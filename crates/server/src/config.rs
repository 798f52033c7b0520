//! Configuration: every setting is declared once, in [`Settings`], as a command-line flag and an
//! environment variable with its default (`consign --help` prints them all). A configuration
//! file of `KEY=VALUE` lines may stand in for the environment; the environment wins. The
//! embedded default (SQLite file, sandbox gateway, 127.0.0.1:8080) needs none of it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use clap::{Args, CommandFactory, FromArgMatches, Parser};
use consign_payments::StripeConfig;
use consign_ports::Seller;
use consign_service::StoreSettings;

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value that does not parse, or settings that do not fit together.
    #[error("{key}: {why}")]
    Invalid {
        /// The setting.
        key: String,
        /// What is wrong.
        why: String,
    },
    /// A key the file should not hold.
    #[error("unknown setting {0} in the configuration file")]
    UnknownKey(String),
    /// The file could not be read.
    #[error("cannot read configuration file {path}: {why}")]
    File {
        /// The file.
        path: String,
        /// The error.
        why: String,
    },
}

/// A payment gateway an instance can enable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GatewayKind {
    /// Moves no money: captures succeed unless the reference says otherwise.
    Sandbox,
    /// Stripe PaymentIntents (`CONSIGN_STRIPE_*`).
    Stripe,
}

impl GatewayKind {
    /// The provider name orders carry.
    pub fn name(self) -> &'static str {
        match self {
            GatewayKind::Sandbox => "sandbox",
            GatewayKind::Stripe => "stripe",
        }
    }
}

/// Every setting, once: its flag, its environment variable and its default.
// No `Debug`: it would print the secrets; `Config`'s own masks them.
#[derive(Clone, Args)]
pub struct Settings {
    /// Address to listen on.
    #[arg(
        long,
        env = "CONSIGN_LISTEN",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub listen: SocketAddr,
    /// Database: sqlite://FILE (embedded) or postgres://USER@HOST/DB.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://consign.db",
        global = true,
        hide_env_values = true,
        value_parser = database_url
    )]
    pub database_url: String,
    /// Pooled database connections (default: per backend).
    #[arg(long, env = "CONSIGN_DB_POOL_SIZE", global = true,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub db_pool_size: Option<u32>,
    /// Longest wait for a pooled connection, or a row lock, before answering 503 (at most 10m).
    #[arg(long, env = "CONSIGN_DB_TIMEOUT", default_value = "5s", global = true, value_parser = db_timeout)]
    pub db_timeout: Duration,
    /// The base path of every call.
    #[arg(long, env = "CONSIGN_BASE_PATH", default_value = "/api/order", global = true, value_parser = base_path)]
    pub base_path: String,
    /// An API key to accept (stored hashed); without any key one is created at first start.
    #[arg(long, env = "CONSIGN_API_KEY", global = true, hide_env_values = true, value_parser = api_key)]
    pub api_key: Option<String>,
    /// The URL document links start with (default: http://<listen>).
    #[arg(long, env = "CONSIGN_PUBLIC_URL", global = true, value_parser = public_url)]
    pub public_url: Option<String>,
    /// The default payment gateway [default: the first of CONSIGN_GATEWAYS, else sandbox].
    #[arg(long, env = "CONSIGN_GATEWAY", global = true, value_enum)]
    pub gateway: Option<GatewayKind>,
    /// The enabled payment gateways, comma-separated (default: just the default one). Orders
    /// naming another provider are refused.
    #[arg(
        long,
        env = "CONSIGN_GATEWAYS",
        global = true,
        value_enum,
        value_delimiter = ','
    )]
    pub gateways: Vec<GatewayKind>,
    /// Stripe secret key (required when stripe is enabled).
    #[arg(
        long,
        env = "CONSIGN_STRIPE_SECRET_KEY",
        global = true,
        hide_env_values = true,
        value_parser = stripe_secret_key
    )]
    pub stripe_secret_key: Option<String>,
    /// Stripe API base URL.
    #[arg(long, env = "CONSIGN_STRIPE_API_BASE", global = true, value_parser = stripe_api_base)]
    pub stripe_api_base: Option<String>,
    /// PaymentIntents are authorised with request_multicapture.
    #[arg(long, env = "CONSIGN_STRIPE_MULTICAPTURE", default_value = "false", global = true, value_parser = flag)]
    pub stripe_multicapture: bool,
    /// Timeout of one Stripe call.
    #[arg(long, env = "CONSIGN_STRIPE_TIMEOUT", default_value = "30s", global = true, value_parser = positive_duration)]
    pub stripe_timeout: Duration,
    /// Pending captures older than this are replayed, this often.
    #[arg(long, env = "CONSIGN_RECOVERY_AFTER", default_value = "5s", global = true, value_parser = positive_duration)]
    pub recovery_after: Duration,
    /// Largest request body (at most 64MiB: a body is held whole while it is read).
    #[arg(long, env = "CONSIGN_MAX_BODY", default_value = "1MiB", global = true, value_parser = body_size)]
    pub max_body: usize,
    /// Latency of the sandbox gateway.
    #[arg(long, env = "CONSIGN_SANDBOX_LATENCY", default_value = "0ms", global = true, value_parser = duration)]
    pub sandbox_latency: Duration,
    /// HTTP worker threads (default: one per core).
    #[arg(long, env = "CONSIGN_WORKERS", global = true,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: Option<u16>,
    /// Where the default mail transport writes .eml files.
    #[arg(long, env = "CONSIGN_MAIL_DIR", default_value = "mail", global = true)]
    pub mail_dir: String,
    /// SMTP instead of the folder: smtps://user:pass@host:465.
    #[arg(long, env = "CONSIGN_SMTP_URL", global = true, hide_env_values = true, value_parser = smtp_url)]
    pub smtp_url: Option<String>,
    /// Sender of shipping confirmations.
    #[arg(
        long,
        env = "CONSIGN_MAIL_FROM",
        default_value = "shipping@localhost",
        global = true,
        value_parser = mail_from
    )]
    pub mail_from: String,
    /// Send a shipping confirmation when a request does not say sendEmail.
    #[arg(long, env = "CONSIGN_SEND_SHIPPING_CONFIRMATION", default_value = "true", global = true, value_parser = flag)]
    pub send_shipping_confirmation: bool,
    /// returnToStock of a return that does not say (Consign records it; it keeps no stock).
    #[arg(long, env = "CONSIGN_RETURN_TO_STOCK", default_value = "true", global = true, value_parser = flag)]
    pub return_to_stock: bool,
    /// How often the outbox is drained.
    #[arg(long, env = "CONSIGN_OUTBOX_INTERVAL", default_value = "2s", global = true, value_parser = positive_duration)]
    pub outbox_interval: Duration,
    /// Signs document links (default: a secret kept in the database).
    #[arg(
        long,
        env = "CONSIGN_DOCUMENT_SECRET",
        global = true,
        hide_env_values = true,
        value_parser = document_secret
    )]
    pub document_secret: Option<String>,
    /// How long a document link works.
    #[arg(long, env = "CONSIGN_DOCUMENT_TTL", default_value = "30d", global = true, value_parser = positive_duration)]
    pub document_ttl: Duration,
    /// Seller name on documents.
    #[arg(
        long,
        env = "CONSIGN_SELLER_NAME",
        default_value = "Consign",
        global = true
    )]
    pub seller_name: String,
    /// Seller address on documents, lines separated by |.
    #[arg(
        long,
        env = "CONSIGN_SELLER_ADDRESS",
        default_value = "",
        global = true
    )]
    pub seller_address: String,
    /// Seller VAT number on documents.
    #[arg(long, env = "CONSIGN_SELLER_VAT", default_value = "", global = true)]
    pub seller_vat: String,
    /// Country of origin on proformas.
    #[arg(
        long,
        env = "CONSIGN_COUNTRY_OF_ORIGIN",
        default_value = "",
        global = true
    )]
    pub country_of_origin: String,
    /// First wait before a failed mail is sent again (doubled per failure, at most an hour).
    #[arg(long, env = "CONSIGN_MAIL_RETRY_BASE", default_value = "5s", global = true, value_parser = up_to_an_hour)]
    pub mail_retry_base: Duration,
    /// How long one sender holds an outbox message (at most 1h).
    #[arg(long, env = "CONSIGN_OUTBOX_LEASE", default_value = "60s", global = true, value_parser = up_to_an_hour)]
    pub outbox_lease: Duration,
    /// Requests per second per API key, and per client address for requests a document link
    /// lets in without a key (bursts of twice that); 0: no limit.
    #[arg(long, env = "CONSIGN_RATE_LIMIT", default_value = "300", global = true)]
    pub rate_limit: u32,
    /// Failed authentications per second per client address (bursts of twice that); 0: none.
    #[arg(
        long,
        env = "CONSIGN_AUTH_FAILURE_LIMIT",
        default_value = "10",
        global = true
    )]
    pub auth_failure_limit: u32,
    /// A retry takes over an idempotency key whose request died after this long.
    #[arg(long, env = "CONSIGN_IDEMPOTENCY_TAKEOVER", default_value = "60s", global = true, value_parser = positive_duration)]
    pub idempotency_takeover: Duration,
    /// Bearer token that opens /metrics on the main listener (unset: /metrics is not served
    /// there).
    #[arg(
        long,
        env = "CONSIGN_METRICS_TOKEN",
        global = true,
        hide_env_values = true,
        value_parser = metrics_token
    )]
    pub metrics_token: Option<String>,
    /// A separate address serving /metrics without a token (for example 127.0.0.1:9090).
    #[arg(long, env = "CONSIGN_METRICS_LISTEN", global = true)]
    pub metrics_listen: Option<SocketAddr>,
}

/// Parses [`Settings`] alone (tests and configuration files build them from values).
#[derive(Parser)]
#[command(name = "consign")]
pub struct SettingsOnly {
    #[command(flatten)]
    settings: Settings,
}

/// Reads a configuration file into the process environment, for every key the environment does
/// not set itself (the environment wins). Called once at start, before any thread exists.
pub fn file_into_environment(path: &Path) -> Result<(), ConfigError> {
    for (key, value) in read_file(path)? {
        if unset_in_environment(&key) && !value.trim().is_empty() {
            std::env::set_var(key, value);
        }
    }
    Ok(())
}

/// Whether the environment leaves `key` to the configuration file: absent, or blank (`KEY=`
/// from a compose file's unset placeholder), which counts as unset everywhere.
fn unset_in_environment(key: &str) -> bool {
    std::env::var_os(key).is_none_or(|v| v.to_str().is_some_and(|v| v.trim().is_empty()))
}

/// Removes every setting the environment holds empty, so it counts as unset (its default), as
/// an empty value always has. Called once at start, before any thread exists.
pub fn empty_settings_unset() {
    for key in keys() {
        if std::env::var(&key).is_ok_and(|v| v.trim().is_empty()) {
            std::env::remove_var(&key);
        }
    }
}

/// Every setting, checked and put together.
#[derive(Clone)]
pub struct Config {
    /// Where to listen.
    pub listen: SocketAddr,
    /// `DATABASE_URL`.
    pub database_url: String,
    /// Pool size (default per backend).
    pub pool_size: Option<u32>,
    /// The longest wait for a pooled connection before answering 503.
    pub pool_timeout: Duration,
    /// The base path of every call.
    pub base_path: String,
    /// An API key to accept.
    pub api_key: Option<String>,
    /// The URL document links start with.
    pub public_url: String,
    /// The enabled gateways, the default first.
    pub gateways: Vec<GatewayKind>,
    /// Stripe's settings, when stripe is enabled.
    pub stripe: Option<StripeConfig>,
    /// Age and interval of recovery passes.
    pub recovery_after: Duration,
    /// Largest request body.
    pub max_body: usize,
    /// Sandbox latency.
    pub sandbox_latency: Duration,
    /// HTTP workers (default: one per core).
    pub workers: Option<usize>,
    /// The `.eml` folder.
    pub mail_dir: String,
    /// SMTP instead of the folder.
    pub smtp_url: Option<String>,
    /// How often the outbox is drained.
    pub outbox_interval: Duration,
    /// Signs document links.
    pub document_secret: Option<String>,
    /// Requests per second per API key; 0: none.
    pub rate_limit: u32,
    /// Failed authentications per second per client address; 0: none.
    pub auth_failure_limit: u32,
    /// How long a document link works.
    pub document_ttl: Duration,
    /// Bearer token for `/metrics` on the main listener.
    pub metrics_token: Option<String>,
    /// A separate `/metrics` listener.
    pub metrics_listen: Option<SocketAddr>,
    /// Seller, mail and idempotency settings of the service.
    pub store: StoreSettings,
}

/// A PostgreSQL URL as `check-config` shows it: its user (and any password) and its query
/// (where libpq also takes a password) hidden. A SQLite URL is a file name, shown whole.
pub fn shown_database_url(url: &str) -> String {
    let Some(rest) = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
    else {
        return url.to_owned();
    };
    let (place, query) = match rest.split_once('?') {
        Some((place, _)) => (place, "?***"),
        None => (rest, ""),
    };
    match place.rsplit_once('@') {
        Some((_, host)) => format!("postgres://***@{host}{query}"),
        None => format!("postgres://{place}{query}"),
    }
}

/// Every setting, secrets shown only as set or unset (a test's failed `unwrap` prints it).
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |value: bool| if value { "(set)" } else { "(unset)" };
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("database_url", &shown_database_url(&self.database_url))
            .field("pool_size", &self.pool_size)
            .field("pool_timeout", &self.pool_timeout)
            .field("base_path", &self.base_path)
            .field("api_key", &set(self.api_key.is_some()))
            .field("public_url", &self.public_url)
            .field("gateways", &self.gateways)
            .field("stripe", &self.stripe)
            .field("recovery_after", &self.recovery_after)
            .field("max_body", &self.max_body)
            .field("sandbox_latency", &self.sandbox_latency)
            .field("workers", &self.workers)
            .field("mail_dir", &self.mail_dir)
            .field("smtp_url", &set(self.smtp_url.is_some()))
            .field("outbox_interval", &self.outbox_interval)
            .field("document_secret", &set(self.document_secret.is_some()))
            .field("rate_limit", &self.rate_limit)
            .field("auth_failure_limit", &self.auth_failure_limit)
            .field("document_ttl", &self.document_ttl)
            .field("metrics_token", &set(self.metrics_token.is_some()))
            .field("metrics_listen", &self.metrics_listen)
            .field("store", &self.store)
            .finish()
    }
}

impl Config {
    /// The configuration from `file` (if any) overridden by the process environment.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut values = match file {
            Some(path) => read_file(path)?,
            None => BTreeMap::new(),
        };
        for key in keys() {
            match std::env::var(&key) {
                // Blank is unset: the file's value stands.
                Ok(value) if !value.trim().is_empty() => {
                    values.insert(key, value);
                }
                _ => {}
            }
        }
        Config::from_values(&values)
    }

    /// The configuration from explicit values, by environment name (tests build it this way).
    pub fn from_values(values: &BTreeMap<String, String>) -> Result<Config, ConfigError> {
        let command = SettingsOnly::command();
        let mut args = vec!["consign".to_owned()];
        // An empty value is an unset one, as it always was (`KEY=` in a compose file).
        for (key, value) in values.iter().filter(|(_, v)| !v.trim().is_empty()) {
            let arg = command
                .get_arguments()
                .find(|a| a.get_env().is_some_and(|e| e == key.as_str()))
                .ok_or_else(|| ConfigError::UnknownKey(key.clone()))?;
            let long = arg.get_long().unwrap_or_default();
            args.push(format!("--{long}={}", value.trim()));
        }
        // Only the values given count: the process environment is not read here.
        let matches = command
            // A `bool` setting is a flag that takes no value on a command line (only from the
            // environment); here each is given `--name=VALUE`, so it takes one.
            .mut_args(|arg| {
                let arg = arg.env(None);
                if matches!(arg.get_action(), clap::ArgAction::SetTrue) {
                    arg.action(clap::ArgAction::Set)
                } else {
                    arg
                }
            })
            .try_get_matches_from(args.iter().map(|a| a.as_str()))
            .map_err(|e| invalid_from_clap(&e, values))?;
        let settings = SettingsOnly::from_arg_matches(&matches)
            .map_err(|e| invalid_from_clap(&e, values))?
            .settings;
        Config::from_settings(settings)
    }

    /// Puts checked settings together.
    pub fn from_settings(s: Settings) -> Result<Config, ConfigError> {
        let invalid = |key: &str, why: &str| ConfigError::Invalid {
            key: key.to_owned(),
            why: why.to_owned(),
        };
        // The sandbox answers captures and refunds without moving money: reachable from
        // beyond this machine only when an operator named it.
        let named = s.gateway.is_some() || !s.gateways.is_empty();
        if !named && !s.listen.ip().is_loopback() {
            return Err(invalid(
                "CONSIGN_LISTEN",
                "beyond loopback with no gateway set, every capture would go to the sandbox, which moves no money: set CONSIGN_GATEWAY (stripe, or sandbox on purpose)",
            ));
        }
        let default = s
            .gateway
            .or(s.gateways.first().copied())
            .unwrap_or(GatewayKind::Sandbox);
        let mut gateways = vec![default];
        for g in &s.gateways {
            if !gateways.contains(g) {
                gateways.push(*g);
            }
        }
        if !s.gateways.is_empty() && !s.gateways.contains(&default) {
            return Err(invalid(
                "CONSIGN_GATEWAYS",
                "must include the default gateway (CONSIGN_GATEWAY)",
            ));
        }
        // Stripe's settings on an instance that does not capture with Stripe: most likely a
        // gateway setting forgotten, which would leave every capture to the sandbox.
        if !gateways.contains(&GatewayKind::Stripe) {
            let stray = [
                ("CONSIGN_STRIPE_SECRET_KEY", s.stripe_secret_key.is_some()),
                ("CONSIGN_STRIPE_API_BASE", s.stripe_api_base.is_some()),
                ("CONSIGN_STRIPE_MULTICAPTURE", s.stripe_multicapture),
            ];
            if let Some((key, _)) = stray.iter().find(|(_, set)| *set) {
                return Err(invalid(
                    key,
                    "set, but stripe is not enabled: add it to CONSIGN_GATEWAY or CONSIGN_GATEWAYS, or unset this",
                ));
            }
        }
        let stripe = if gateways.contains(&GatewayKind::Stripe) {
            let secret = s.stripe_secret_key.as_deref().ok_or_else(|| {
                invalid(
                    "CONSIGN_STRIPE_SECRET_KEY",
                    "required when stripe is enabled",
                )
            })?;
            let mut stripe = StripeConfig::new(secret);
            if let Some(base) = &s.stripe_api_base {
                // A live key moves real money: it goes to Stripe only, never to a stand-in
                // whose answers would book captures no money came with.
                let live = secret.starts_with("sk_live_") || secret.starts_with("rk_live_");
                if live && *base != stripe.api_base {
                    return Err(invalid(
                        "CONSIGN_STRIPE_API_BASE",
                        "a live Stripe key (sk_live_, rk_live_) is sent only to https://api.stripe.com: unset this, or use a test key",
                    ));
                }
                stripe.api_base = base.clone();
            }
            stripe.multicapture = s.stripe_multicapture;
            stripe.timeout = s.stripe_timeout;
            Some(stripe)
        } else {
            None
        };
        let millis = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        Ok(Config {
            public_url: s
                .public_url
                .unwrap_or_else(|| format!("http://{}", s.listen)),
            listen: s.listen,
            database_url: s.database_url,
            pool_size: s.db_pool_size,
            pool_timeout: s.db_timeout,
            base_path: s.base_path,
            api_key: s.api_key,
            gateways,
            stripe,
            recovery_after: s.recovery_after,
            max_body: s.max_body,
            sandbox_latency: s.sandbox_latency,
            workers: s.workers.map(usize::from),
            mail_dir: s.mail_dir,
            smtp_url: s.smtp_url,
            outbox_interval: s.outbox_interval,
            document_secret: s.document_secret,
            rate_limit: s.rate_limit,
            auth_failure_limit: s.auth_failure_limit,
            document_ttl: s.document_ttl,
            metrics_token: s.metrics_token.filter(|t| !t.is_empty()),
            metrics_listen: s.metrics_listen,
            store: StoreSettings {
                seller: Seller {
                    name: s.seller_name,
                    address: s
                        .seller_address
                        .split('|')
                        .map(|l| l.trim().to_owned())
                        .filter(|l| !l.is_empty())
                        .collect(),
                    vat_number: s.seller_vat,
                    country_of_origin: s.country_of_origin,
                },
                send_shipping_confirmation: s.send_shipping_confirmation,
                mail_from: s.mail_from,
                mail_retry_base_millis: millis(s.mail_retry_base),
                mail_lease_millis: millis(s.outbox_lease),
                idempotency_takeover_millis: millis(s.idempotency_takeover),
                return_to_stock: s.return_to_stock,
            },
        })
    }

    /// How long a clean stop lets the requests in flight finish: 10 s, or as long as one
    /// capture may take when that is longer (every call to Stripe and its retries with their
    /// backoff, or the sandbox's latency), plus a wait for a database connection. A request cut
    /// off mid-capture is settled by recovery, but its client gets no answer.
    pub fn drain_window(&self) -> Duration {
        let stripe = self.stripe.as_ref().map_or(Duration::ZERO, |s| {
            let calls = s.max_retries.saturating_add(1);
            // Each backoff is at most 2 s (the adapter's cap).
            s.timeout
                .saturating_mul(calls)
                .saturating_add(Duration::from_secs(2).saturating_mul(s.max_retries))
        });
        let capture = stripe.max(self.sandbox_latency);
        capture
            .saturating_add(self.pool_timeout)
            .max(Duration::from_secs(10))
    }

    /// The enabled gateways' provider names, the default first.
    pub fn gateway_names(&self) -> Vec<&'static str> {
        self.gateways.iter().map(|g| g.name()).collect()
    }
}

/// Every setting's environment name, in declaration order: the keys a configuration file may
/// set.
pub fn keys() -> Vec<String> {
    SettingsOnly::command()
        .get_arguments()
        .filter_map(|a| a.get_env())
        .map(|e| e.to_string_lossy().into_owned())
        .collect()
}

/// A setting refused while the command line and the environment were read, as the setting it
/// is about by environment name (clap's own message names the flag, and repeats the value,
/// secrets included); `None` when the error is about something else (a command's own
/// argument).
pub fn setting_error(error: &clap::Error) -> Option<ConfigError> {
    use clap::error::{ContextKind, ContextValue};
    let Some(ContextValue::String(flag)) = error.get(ContextKind::InvalidArg) else {
        return None;
    };
    let long = flag
        .trim_start_matches("--")
        .split(['=', ' ', '<'])
        .next()?;
    SettingsOnly::command()
        .get_arguments()
        .any(|a| a.get_long() == Some(long))
        .then(|| invalid_from_clap(error, &BTreeMap::new()))
}

/// A clap error as the setting it is about (by environment name, as operators write them); the
/// value is repeated only when it is one of `values` and not a secret's.
fn invalid_from_clap(error: &clap::Error, values: &BTreeMap<String, String>) -> ConfigError {
    use clap::error::{ContextKind, ContextValue};
    let flag = match error.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(arg)) => arg.clone(),
        _ => String::new(),
    };
    let long = flag
        .trim_start_matches("--")
        .split(['=', ' ', '<'])
        .next()
        .unwrap_or_default()
        .to_owned();
    let command = SettingsOnly::command();
    let arg = command
        .get_arguments()
        .find(|a| a.get_long() == Some(long.as_str()));
    let secret = arg.is_some_and(|a| a.is_hide_env_values_set());
    let key = arg
        .and_then(|a| a.get_env().map(|e| e.to_string_lossy().into_owned()))
        .unwrap_or(long);
    let why = match error.get(ContextKind::InvalidValue) {
        Some(ContextValue::String(value))
            if !secret && values.values().any(|v| v.trim() == value) =>
        {
            format!("invalid value {value:?}")
        }
        _ => error.kind().to_string(),
    };
    let detail = error.source().map(|s| format!(": {s}")).unwrap_or_default();
    ConfigError::Invalid {
        key,
        why: format!("{why}{detail}"),
    }
}

use std::error::Error as _;

/// `KEY=VALUE` lines; `#` starts a comment.
fn read_file(path: &Path) -> Result<BTreeMap<String, String>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
        path: path.display().to_string(),
        why: e.to_string(),
    })?;
    let known = keys();
    let mut values = BTreeMap::new();
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (key, value) = line.split_once('=').ok_or_else(|| ConfigError::Invalid {
            key: line.chars().take(40).collect(),
            why: "expected KEY=VALUE".into(),
        })?;
        let key = key.trim();
        if !known.iter().any(|k| k == key) {
            return Err(ConfigError::UnknownKey(key.to_owned()));
        }
        values.insert(key.to_owned(), value.trim().trim_matches('"').to_owned());
    }
    Ok(values)
}

/// The longest duration a setting takes: ten years. Longer ones overflow what they are added
/// to (a deadline of now plus a timeout, a document link's expiry in seconds).
const LONGEST: Duration = Duration::from_secs(3650 * 86_400);

/// `500ms`, `5s`, `2m`, `1h`, `30d`; at most 3650d.
pub fn duration(text: &str) -> Result<Duration, String> {
    let parsed = any_duration(text)?;
    if parsed > LONGEST {
        return Err(format!(
            "{text:?} is longer than the longest setting, 3650d"
        ));
    }
    Ok(parsed)
}

fn any_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("expected a duration such as 500ms, 5s, 2m, 1h or 30d, not {text:?}");
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().map_err(|_| bad())?;
    let seconds = |factor: u64| {
        n.checked_mul(factor)
            .map(Duration::from_secs)
            .ok_or_else(bad)
    };
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => seconds(1),
        "m" => seconds(60),
        "h" => seconds(3600),
        "d" => seconds(86_400),
        _ => Err(bad()),
    }
}

/// A duration above zero.
pub fn positive_duration(text: &str) -> Result<Duration, String> {
    duration(text).and_then(|d| {
        if d.is_zero() {
            Err("must be more than zero".into())
        } else {
            Ok(d)
        }
    })
}

/// `1048576`, `64KiB`, `1MiB`.
pub fn size(text: &str) -> Result<usize, String> {
    let bad = || format!("expected a size such as 1MiB, 64KiB or 1048576, not {text:?}");
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: usize = number.parse().map_err(|_| bad())?;
    let factor = match unit {
        "" | "B" => 1,
        "KiB" => 1024,
        "MiB" => 1024 * 1024,
        _ => return Err(bad()),
    };
    n.checked_mul(factor).filter(|n| *n > 0).ok_or_else(bad)
}

/// `true/false/1/0`.
fn flag(text: &str) -> Result<bool, String> {
    match text {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(format!("expected true or false, not {text:?}")),
    }
}

/// `/api/order`: segments of letters, digits and `-._~`; not `/` alone, which would put every
/// call, `/healthz` and `/metrics` among them, behind the API key.
fn base_path(text: &str) -> Result<String, String> {
    let trimmed = text.trim_end_matches('/');
    let plain = |segment: &str| {
        !segment.is_empty()
            && segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
    };
    let not_dots = |segment: &str| segment.bytes().any(|b| b != b'.');
    match trimmed.strip_prefix('/') {
        Some(rest) if rest.split('/').all(|s| plain(s) && not_dots(s)) => Ok(text.to_owned()),
        _ => Err(
            "expected a path such as /api/order: segments of letters, digits and -._~, not / alone"
                .into(),
        ),
    }
}

/// `sqlite://FILE`, a plain file path, or `postgres://...`. Any other scheme, or libpq's
/// `host=... dbname=...` form, is refused: read as a path, it would make a new, empty SQLite
/// file (named after what may hold a password) and start on it as if nothing were wrong.
fn database_url(text: &str) -> Result<String, String> {
    let url = text.trim();
    if let Some((scheme, _)) = url.split_once("://") {
        if !matches!(scheme, "sqlite" | "postgres" | "postgresql") {
            return Err("expected sqlite://FILE or postgres://USER@HOST/DB".into());
        }
    } else if libpq_keywords(url) {
        return Err(
            "libpq's keyword form is not read: write it as postgres://USER@HOST[:PORT]/DB".into(),
        );
    }
    Ok(url.to_owned())
}

/// Whether `text` starts as libpq's keyword form does (`host=db dbname=consign ...`); a SQLite
/// path or URI (`file:consign.db?mode=rwc`) does not.
fn libpq_keywords(text: &str) -> bool {
    const KEYWORDS: [&str; 12] = [
        "host",
        "hostaddr",
        "port",
        "dbname",
        "user",
        "password",
        "passfile",
        "sslmode",
        "service",
        "options",
        "application_name",
        "connect_timeout",
    ];
    text.split_once('=')
        .is_some_and(|(key, _)| KEYWORDS.contains(&key.trim()))
}

/// The URL document links start with: `http(s)://HOST[:PORT][/PATH]`, no query or fragment
/// (a link is this plus `/shipments/...`).
fn public_url(text: &str) -> Result<String, String> {
    let url = text.trim();
    let bad = || format!("expected http(s)://HOST[:PORT][/PATH], not {text:?}");
    let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
    let host = rest.split('/').next().unwrap_or_default();
    let plain = |c: char| c.is_ascii_graphic() && !"?#@\\\"<>`{}|^".contains(c);
    if !matches!(scheme, "http" | "https") || host.is_empty() || !url.chars().all(plain) {
        return Err(bad());
    }
    Ok(url.to_owned())
}

/// The database wait: above zero, at most ten minutes (PostgreSQL's `lock_timeout` takes it,
/// and twice it as the idle limit of a transaction; a request waits no longer anyway).
fn db_timeout(text: &str) -> Result<Duration, String> {
    at_most(positive_duration(text)?, Duration::from_secs(600), "10m")
}

/// A mail retry base or an outbox lease: above zero, at most an hour.
fn up_to_an_hour(text: &str) -> Result<Duration, String> {
    at_most(positive_duration(text)?, Duration::from_secs(3600), "1h")
}

fn at_most(value: Duration, limit: Duration, shown: &str) -> Result<Duration, String> {
    if value > limit {
        return Err(format!("must be at most {shown}"));
    }
    Ok(value)
}

/// The largest request body: at most 64MiB.
fn body_size(text: &str) -> Result<usize, String> {
    let n = size(text)?;
    if n > 64 * 1024 * 1024 {
        return Err("must be at most 64MiB".into());
    }
    Ok(n)
}

/// An SMTP server's URL, checked as the mail library reads it; credentials only over TLS
/// unless the server is on loopback.
fn smtp_url(text: &str) -> Result<String, String> {
    let url = text.trim();
    consign_mail::check_smtp_url(url)?;
    Ok(url.to_owned())
}

/// An API key given in the settings: what a client sends in a header, long enough that its
/// stored prefix (8 characters, kept to recognise it) is not the key.
fn api_key(text: &str) -> Result<String, String> {
    let key = text.trim();
    if !(24..=256).contains(&key.len()) || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("must be 24 to 256 printable characters without spaces".into());
    }
    Ok(key.to_owned())
}

/// A Stripe secret or restricted key (`sk_...`, `rk_...`), without the line end a secret file
/// often carries.
fn stripe_secret_key(text: &str) -> Result<String, String> {
    let key = text.trim();
    let plain = key.len() > 3 && key.bytes().all(|b| b.is_ascii_graphic());
    if !(plain && (key.starts_with("sk_") || key.starts_with("rk_"))) {
        return Err("must be a Stripe secret key (sk_...) or restricted key (rk_...)".into());
    }
    Ok(key.to_owned())
}

/// Stripe's API base: `https://HOST[:PORT]` (plain `http` only on loopback, for a local
/// stand-in), without a path: the adapter adds `/v1/...`, and a base ending in `/v1` would
/// make every call a 404, which Stripe's answers read as a decline.
fn stripe_api_base(text: &str) -> Result<String, String> {
    let base = text.trim().trim_end_matches('/');
    let bad = || format!("expected https://HOST[:PORT] without a path, not {text:?}");
    let (scheme, authority) = base.split_once("://").ok_or_else(bad)?;
    if authority.is_empty() || authority.contains(['/', '?', '#', '@', ' ']) {
        return Err(bad());
    }
    let host = match authority.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match scheme {
        "https" => Ok(base.to_owned()),
        "http" if loopback => Ok(base.to_owned()),
        "http" => Err("must be https: plain http only on loopback (a local stand-in)".into()),
        _ => Err(bad()),
    }
}

/// The key document links are signed with: long enough that a link does not give it away to
/// a search.
fn document_secret(text: &str) -> Result<String, String> {
    let secret = text.trim();
    if secret.len() < 32 {
        return Err("must be at least 32 characters".into());
    }
    Ok(secret.to_owned())
}

/// The sender of every mail: an address the mail library takes (`shop@example.com` or
/// `Shop <shop@example.com>`); any other would fail every message at its sending, for ever.
fn mail_from(text: &str) -> Result<String, String> {
    let from = text.trim();
    consign_mail::check_mailbox(from)?;
    Ok(from.to_owned())
}

/// The bearer token that opens `/metrics` (business figures).
fn metrics_token(text: &str) -> Result<String, String> {
    let token = text.trim();
    if token.len() < 16 || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("must be at least 16 printable characters without spaces".into());
    }
    Ok(token.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_embedded_default_needs_no_setting() {
        let config = Config::from_values(&BTreeMap::new()).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.database_url, "sqlite://consign.db");
        assert_eq!(config.base_path, "/api/order");
        assert_eq!(config.public_url, "http://127.0.0.1:8080");
        assert_eq!(config.max_body, 1024 * 1024);
        assert_eq!(config.recovery_after, Duration::from_secs(5));
        assert_eq!(config.gateway_names(), ["sandbox"]);
        assert_eq!(config.metrics_token, None);
        assert_eq!(config.auth_failure_limit, 10);
    }

    #[test]
    fn bad_values_name_their_setting() {
        for (key, value) in [
            ("CONSIGN_LISTEN", "nowhere"),
            ("CONSIGN_MAX_BODY", "1GB"),
            ("CONSIGN_RECOVERY_AFTER", "soon"),
            ("CONSIGN_BASE_PATH", "api"),
            ("CONSIGN_DB_TIMEOUT", "0s"),
            ("CONSIGN_GATEWAY", "adyen"),
            ("CONSIGN_WORKERS", "0"),
        ] {
            let error = Config::from_values(&values(&[(key, value)])).unwrap_err();
            assert!(error.to_string().starts_with(key), "{key}: {error}");
        }
        let error = Config::from_values(&values(&[("CONSIGN_LISTN", "x")])).unwrap_err();
        assert_eq!(
            error.to_string(),
            "unknown setting CONSIGN_LISTN in the configuration file"
        );
    }

    #[test]
    fn only_the_enabled_gateways_are_enabled() {
        let stripe = |extra: &[(&str, &str)]| {
            let mut pairs = vec![
                ("CONSIGN_GATEWAY", "stripe"),
                ("CONSIGN_STRIPE_SECRET_KEY", "sk_test_x"),
            ];
            pairs.extend_from_slice(extra);
            Config::from_values(&values(&pairs))
        };
        assert_eq!(stripe(&[]).unwrap().gateway_names(), ["stripe"]);
        assert_eq!(
            stripe(&[("CONSIGN_GATEWAYS", "stripe,sandbox")])
                .unwrap()
                .gateway_names(),
            ["stripe", "sandbox"]
        );
        let error = stripe(&[("CONSIGN_GATEWAYS", "sandbox")]).unwrap_err();
        assert!(error.to_string().starts_with("CONSIGN_GATEWAYS"), "{error}");
        // The list alone names the default: its first.
        let listed = Config::from_values(&values(&[
            ("CONSIGN_GATEWAYS", "stripe"),
            ("CONSIGN_STRIPE_SECRET_KEY", "sk_test_x"),
        ]))
        .unwrap();
        assert_eq!(listed.gateway_names(), ["stripe"]);
        let error = Config::from_values(&values(&[("CONSIGN_GATEWAY", "stripe")])).unwrap_err();
        assert!(
            error.to_string().starts_with("CONSIGN_STRIPE_SECRET_KEY"),
            "{error}"
        );
    }

    #[test]
    fn every_setting_is_declared_once_with_a_flag_and_an_environment_name() {
        let keys = keys();
        assert!(keys.len() >= 35, "{}", keys.len());
        let mut unique = keys.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), keys.len());
        for arg in SettingsOnly::command().get_arguments() {
            if arg.get_id() == "help" {
                continue;
            }
            assert!(
                arg.get_long().is_some() && arg.get_env().is_some(),
                "{}",
                arg.get_id()
            );
        }
    }

    #[test]
    fn an_empty_value_is_an_unset_one() {
        let config = Config::from_values(&values(&[
            ("CONSIGN_DOCUMENT_SECRET", ""),
            ("CONSIGN_API_KEY", " "),
            ("CONSIGN_PUBLIC_URL", ""),
            ("CONSIGN_WORKERS", ""),
        ]))
        .unwrap();
        assert_eq!(
            config.document_secret, None,
            "links are never signed with an empty key"
        );
        assert_eq!(config.api_key, None);
        assert_eq!(config.public_url, "http://127.0.0.1:8080");
        assert_eq!(config.workers, None);
    }

    #[test]
    fn settings_that_cannot_work_are_refused_naming_their_key() {
        let refused = |pairs: &[(&str, &str)], key: &str| {
            let error = Config::from_values(&values(pairs)).unwrap_err();
            assert!(error.to_string().starts_with(key), "{pairs:?}: {error}");
        };
        let with_stripe = |extra: (&'static str, &'static str)| {
            vec![
                ("CONSIGN_GATEWAY", "stripe"),
                ("CONSIGN_STRIPE_SECRET_KEY", "sk_test_x"),
                extra,
            ]
        };
        // A base with a path (every call a 404, read as a decline), without a scheme, or plain
        // http to Stripe itself (the key in clear).
        for base in [
            "api.stripe.com",
            "https://api.stripe.com/v1",
            "http://api.stripe.com",
            "ftp://api.stripe.com",
            "https://user@api.stripe.com",
        ] {
            refused(
                &with_stripe(("CONSIGN_STRIPE_API_BASE", base)),
                "CONSIGN_STRIPE_API_BASE",
            );
        }
        for (base, kept) in [
            ("https://api.stripe.com/", "https://api.stripe.com"),
            ("http://127.0.0.1:9", "http://127.0.0.1:9"),
            ("http://localhost:12111", "http://localhost:12111"),
            ("http://[::1]:8", "http://[::1]:8"),
        ] {
            let config =
                Config::from_values(&values(&with_stripe(("CONSIGN_STRIPE_API_BASE", base))))
                    .unwrap();
            assert_eq!(config.stripe.unwrap().api_base, kept);
        }
        refused(
            &[
                ("CONSIGN_GATEWAY", "stripe"),
                ("CONSIGN_STRIPE_SECRET_KEY", "pk_live_publishable"),
            ],
            "CONSIGN_STRIPE_SECRET_KEY",
        );
        assert_eq!(stripe_secret_key("sk_live_abc\n"), Ok("sk_live_abc".into()));
        refused(&[("CONSIGN_MAIL_FROM", "Shop Team")], "CONSIGN_MAIL_FROM");
        assert_eq!(
            mail_from("Shop <shop@example.com>\n"),
            Ok("Shop <shop@example.com>".into())
        );
        // A live key anywhere but Stripe: a stand-in's answers would book captures no money
        // came with.
        for key in ["sk_live_x", "rk_live_x"] {
            refused(
                &[
                    ("CONSIGN_GATEWAY", "stripe"),
                    ("CONSIGN_STRIPE_SECRET_KEY", key),
                    ("CONSIGN_STRIPE_API_BASE", "http://127.0.0.1:12111"),
                ],
                "CONSIGN_STRIPE_API_BASE",
            );
        }
        let live = Config::from_values(&values(&[
            ("CONSIGN_GATEWAY", "stripe"),
            ("CONSIGN_STRIPE_SECRET_KEY", "sk_live_x"),
            ("CONSIGN_STRIPE_API_BASE", "https://api.stripe.com/"),
        ]))
        .unwrap();
        assert_eq!(live.stripe.unwrap().api_base, "https://api.stripe.com");
        // Stripe's settings where Stripe does not capture: a gateway setting forgotten.
        refused(
            &[("CONSIGN_STRIPE_SECRET_KEY", "sk_live_x")],
            "CONSIGN_STRIPE_SECRET_KEY",
        );
        refused(
            &[("CONSIGN_STRIPE_MULTICAPTURE", "true")],
            "CONSIGN_STRIPE_MULTICAPTURE",
        );
        // Secrets too short to keep anything secret.
        refused(&[("CONSIGN_API_KEY", "changeme")], "CONSIGN_API_KEY");
        refused(
            &[("CONSIGN_DOCUMENT_SECRET", "x")],
            "CONSIGN_DOCUMENT_SECRET",
        );
        refused(&[("CONSIGN_METRICS_TOKEN", "abc")], "CONSIGN_METRICS_TOKEN");
        // Durations past what a clock can add.
        refused(
            &[("CONSIGN_DOCUMENT_TTL", "106751991167300d")],
            "CONSIGN_DOCUMENT_TTL",
        );
        refused(
            &[("CONSIGN_DB_TIMEOUT", "10000000000000000000s")],
            "CONSIGN_DB_TIMEOUT",
        );
        assert_eq!(duration("3650d"), Ok(LONGEST));
        assert!(duration("3651d").is_err());
    }

    /// Values that would start a server doing something else than asked, or pretending.
    #[test]
    fn values_that_would_mislead_are_refused_at_start() {
        let refused = |pairs: &[(&str, &str)], key: &str| match Config::from_values(&values(pairs))
        {
            Err(ConfigError::Invalid { key: named, .. }) => assert_eq!(named, key, "{pairs:?}"),
            other => panic!("{pairs:?}: {other:?}"),
        };
        let accepted = |pairs: &[(&str, &str)]| Config::from_values(&values(pairs)).unwrap();
        // The sandbox beyond this machine only when named.
        refused(&[("CONSIGN_LISTEN", "0.0.0.0:8080")], "CONSIGN_LISTEN");
        refused(&[("CONSIGN_LISTEN", "[::]:8080")], "CONSIGN_LISTEN");
        accepted(&[
            ("CONSIGN_LISTEN", "0.0.0.0:8080"),
            ("CONSIGN_GATEWAY", "sandbox"),
        ]);
        accepted(&[("CONSIGN_LISTEN", "[::1]:8080")]);
        // Limits past what the setting can mean.
        refused(&[("CONSIGN_DB_TIMEOUT", "13d")], "CONSIGN_DB_TIMEOUT");
        accepted(&[("CONSIGN_DB_TIMEOUT", "10m")]);
        refused(
            &[("CONSIGN_RECOVERY_AFTER", "0s")],
            "CONSIGN_RECOVERY_AFTER",
        );
        refused(&[("CONSIGN_MAX_BODY", "4000MiB")], "CONSIGN_MAX_BODY");
        accepted(&[("CONSIGN_MAX_BODY", "64MiB")]);
        refused(&[("CONSIGN_OUTBOX_LEASE", "2h")], "CONSIGN_OUTBOX_LEASE");
        refused(
            &[("CONSIGN_MAIL_RETRY_BASE", "61m")],
            "CONSIGN_MAIL_RETRY_BASE",
        );
        let hour = accepted(&[
            ("CONSIGN_MAIL_RETRY_BASE", "1h"),
            ("CONSIGN_OUTBOX_LEASE", "1h"),
        ]);
        assert_eq!(hour.store.mail_retry_base_millis, 3_600_000);
        assert_eq!(hour.store.mail_lease_millis, 3_600_000);
        // Paths and URLs that would answer, or link, nowhere.
        for path in ["/", "api", "/api/{id}", "/api//order", "/api/.."] {
            refused(&[("CONSIGN_BASE_PATH", path)], "CONSIGN_BASE_PATH");
        }
        accepted(&[("CONSIGN_BASE_PATH", "/v1/api-order_2")]);
        for url in [
            "example.com",
            "ftp://example.com",
            "https://",
            "https://shop.example/a?b=1",
        ] {
            refused(&[("CONSIGN_PUBLIC_URL", url)], "CONSIGN_PUBLIC_URL");
        }
        accepted(&[("CONSIGN_PUBLIC_URL", "https://shop.example:8443/consign")]);
        // A database the server would not use as meant.
        refused(
            &[("DATABASE_URL", "host=db dbname=consign password=hunter2")],
            "DATABASE_URL",
        );
        refused(&[("DATABASE_URL", "mysql://db/consign")], "DATABASE_URL");
        refused(&[("DATABASE_URL", "dbname=consign")], "DATABASE_URL");
        accepted(&[("DATABASE_URL", "data/consign.db")]);
        accepted(&[("DATABASE_URL", "file:consign.db?mode=rwc")]);
        accepted(&[("DATABASE_URL", "data/env=prod.db")]);
        // SMTP: a URL the mail library takes, credentials never in the clear off loopback.
        refused(
            &[("CONSIGN_SMTP_URL", "mail.example.com")],
            "CONSIGN_SMTP_URL",
        );
        refused(
            &[("CONSIGN_SMTP_URL", "smtp://shop:pw@mail.example.com:587")],
            "CONSIGN_SMTP_URL",
        );
        accepted(&[("CONSIGN_SMTP_URL", "smtp://shop:pw@127.0.0.1:2525")]);
        let smtp = accepted(&[(
            "CONSIGN_SMTP_URL",
            "smtp://shop:pw@mail.example.com:587?tls=required",
        )]);
        assert_eq!(
            smtp.smtp_url.as_deref(),
            Some("smtp://shop:pw@mail.example.com:587?tls=required")
        );
    }

    /// Every `bool` setting set either way from values, as from the environment (tests and
    /// `Config::load` build a configuration this way).
    #[test]
    fn flags_are_read_either_way_from_values() {
        for (text, expected) in [("false", false), ("0", false), ("true", true), ("1", true)] {
            let config = Config::from_values(&values(&[
                ("CONSIGN_SEND_SHIPPING_CONFIRMATION", text),
                ("CONSIGN_RETURN_TO_STOCK", text),
            ]))
            .unwrap();
            assert_eq!(
                (
                    config.store.send_shipping_confirmation,
                    config.store.return_to_stock
                ),
                (expected, expected),
                "{text}"
            );
        }
        let stripe = Config::from_values(&values(&[
            ("CONSIGN_GATEWAY", "stripe"),
            ("CONSIGN_STRIPE_SECRET_KEY", "sk_test_x"),
            ("CONSIGN_STRIPE_MULTICAPTURE", "true"),
        ]))
        .unwrap();
        assert!(stripe.stripe.unwrap().multicapture);
    }

    #[test]
    fn debug_output_shows_no_secret() {
        let config = Config::from_values(&values(&[
            ("DATABASE_URL", "postgres://consign:pw-db-9@db/consign"),
            ("CONSIGN_API_KEY", "key-abcdefghijklmnopqrstuvwxyz"),
            ("CONSIGN_GATEWAY", "stripe"),
            ("CONSIGN_STRIPE_SECRET_KEY", "sk_test_stripe-secret"),
            (
                "CONSIGN_SMTP_URL",
                "smtps://shop:pw-smtp-9@mail.example.com",
            ),
            (
                "CONSIGN_DOCUMENT_SECRET",
                "document-secret-0123456789abcdefghij",
            ),
            ("CONSIGN_METRICS_TOKEN", "metrics-token-0123456789"),
        ]))
        .unwrap();
        let shown = format!("{config:?}");
        for secret in [
            "pw-db-9",
            "abcdefghijklmnopqrstuvwxyz",
            "stripe-secret",
            "pw-smtp-9",
            "document-secret",
            "metrics-token",
        ] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("api_key: \"(set)\""), "{shown}");
    }

    #[test]
    fn a_clean_stop_waits_as_long_as_a_capture_may_take() {
        let drain =
            |pairs: &[(&str, &str)]| Config::from_values(&values(pairs)).unwrap().drain_window();
        assert_eq!(drain(&[]), Duration::from_secs(10));
        // Stripe: three calls of 30 s, two backoffs of at most 2 s, a connection's wait of 5 s.
        assert_eq!(
            drain(&[
                ("CONSIGN_GATEWAY", "stripe"),
                ("CONSIGN_STRIPE_SECRET_KEY", "sk_test_x")
            ]),
            Duration::from_secs(99)
        );
        assert_eq!(
            drain(&[("CONSIGN_SANDBOX_LATENCY", "20s")]),
            Duration::from_secs(25)
        );
    }

    #[test]
    fn sizes_and_durations_read_their_units() {
        assert_eq!(size("64KiB"), Ok(65_536));
        assert_eq!(size("100"), Ok(100));
        assert_eq!(duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(duration("2m"), Ok(Duration::from_secs(120)));
        assert!(positive_duration("0s").is_err());
        assert!(duration("5 s").is_err());
    }
}
