//! Configuration: environment variables, optionally preceded by a file of the same keys.
//! The embedded default (SQLite file, sandbox gateway, 127.0.0.1:8080) needs none of it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use consign_payments::StripeConfig;
use consign_ports::Seller;
use consign_service::StoreSettings;

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value that does not parse.
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

/// Every setting, with its default.
#[derive(Debug, Clone)]
pub struct Config {
    /// `CONSIGN_LISTEN`.
    pub listen: SocketAddr,
    /// `DATABASE_URL`.
    pub database_url: String,
    /// `CONSIGN_DB_POOL_SIZE` (default per backend).
    pub pool_size: Option<u32>,
    /// `CONSIGN_DB_TIMEOUT`: the longest wait for a pooled connection before answering 503.
    pub pool_timeout: Duration,
    /// `CONSIGN_BASE_PATH`.
    pub base_path: String,
    /// `CONSIGN_API_KEY`.
    pub api_key: Option<String>,
    /// `CONSIGN_PUBLIC_URL` (default `http://<listen>`).
    pub public_url: String,
    /// `CONSIGN_GATEWAY` = `stripe`: the Stripe settings (`CONSIGN_STRIPE_*`). The sandbox is
    /// always available besides.
    pub stripe: Option<StripeConfig>,
    /// `CONSIGN_RECOVERY_AFTER`.
    pub recovery_after: Duration,
    /// `CONSIGN_MAX_BODY`.
    pub max_body: usize,
    /// `CONSIGN_SANDBOX_LATENCY`.
    pub sandbox_latency: Duration,
    /// `CONSIGN_WORKERS` (HTTP worker threads; default: one per core).
    pub workers: Option<usize>,
    /// `CONSIGN_MAIL_DIR`: where the default transport writes `.eml` files.
    pub mail_dir: String,
    /// `CONSIGN_SMTP_URL`: SMTP instead of the folder.
    pub smtp_url: Option<String>,
    /// `CONSIGN_OUTBOX_INTERVAL`: how often the outbox is drained.
    pub outbox_interval: Duration,
    /// `CONSIGN_DOCUMENT_SECRET`: signs document links (default: a secret kept in the database).
    pub document_secret: Option<String>,
    /// `CONSIGN_RATE_LIMIT`: requests per second per API key (bursts of twice that); 0: none.
    pub rate_limit: u32,
    /// `CONSIGN_DOCUMENT_TTL`: how long a document link works.
    pub document_ttl: Duration,
    /// Store settings: seller (`CONSIGN_SELLER_NAME`, `CONSIGN_SELLER_ADDRESS` with `|` between
    /// lines, `CONSIGN_SELLER_VAT`, `CONSIGN_COUNTRY_OF_ORIGIN`), `CONSIGN_MAIL_FROM`,
    /// `CONSIGN_SEND_SHIPPING_CONFIRMATION`.
    pub store: StoreSettings,
}

/// The keys a configuration file may set (the same names as the environment).
pub const KEYS: &[&str] = &[
    "CONSIGN_LISTEN",
    "DATABASE_URL",
    "CONSIGN_DB_POOL_SIZE",
    "CONSIGN_DB_TIMEOUT",
    "CONSIGN_BASE_PATH",
    "CONSIGN_API_KEY",
    "CONSIGN_PUBLIC_URL",
    "CONSIGN_GATEWAY",
    "CONSIGN_STRIPE_SECRET_KEY",
    "CONSIGN_STRIPE_API_BASE",
    "CONSIGN_STRIPE_MULTICAPTURE",
    "CONSIGN_STRIPE_TIMEOUT",
    "CONSIGN_RECOVERY_AFTER",
    "CONSIGN_MAX_BODY",
    "CONSIGN_SANDBOX_LATENCY",
    "CONSIGN_WORKERS",
    "CONSIGN_MAIL_DIR",
    "CONSIGN_SMTP_URL",
    "CONSIGN_MAIL_FROM",
    "CONSIGN_SEND_SHIPPING_CONFIRMATION",
    "CONSIGN_OUTBOX_INTERVAL",
    "CONSIGN_DOCUMENT_SECRET",
    "CONSIGN_DOCUMENT_TTL",
    "CONSIGN_SELLER_NAME",
    "CONSIGN_SELLER_ADDRESS",
    "CONSIGN_SELLER_VAT",
    "CONSIGN_COUNTRY_OF_ORIGIN",
    "CONSIGN_MAIL_RETRY_BASE",
    "CONSIGN_OUTBOX_LEASE",
    "CONSIGN_RATE_LIMIT",
    "CONSIGN_IDEMPOTENCY_TAKEOVER",
];

impl Config {
    /// The configuration from `file` (if any) overridden by the process environment.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut values = BTreeMap::new();
        if let Some(path) = file {
            values.extend(read_file(path)?);
        }
        for key in KEYS {
            if let Ok(value) = std::env::var(key) {
                values.insert((*key).to_owned(), value);
            }
        }
        Config::from_values(&values)
    }

    /// The configuration from explicit values (tests build it this way).
    pub fn from_values(values: &BTreeMap<String, String>) -> Result<Config, ConfigError> {
        let get = |key: &str| {
            values
                .get(key)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let invalid = |key: &str, why: &str| ConfigError::Invalid {
            key: key.to_owned(),
            why: why.to_owned(),
        };
        let listen: SocketAddr = get("CONSIGN_LISTEN")
            .unwrap_or_else(|| "127.0.0.1:8080".into())
            .parse()
            .map_err(|_| {
                invalid(
                    "CONSIGN_LISTEN",
                    "expected an address such as 127.0.0.1:8080",
                )
            })?;
        let base_path = get("CONSIGN_BASE_PATH").unwrap_or_else(|| "/api/order".into());
        if !base_path.starts_with('/') || base_path.contains(char::is_whitespace) {
            return Err(invalid(
                "CONSIGN_BASE_PATH",
                "must start with / and hold no spaces",
            ));
        }
        let stripe = match get("CONSIGN_GATEWAY").as_deref().unwrap_or("sandbox") {
            "sandbox" => None,
            "stripe" => Some(stripe_config(&get)?),
            _ => return Err(invalid("CONSIGN_GATEWAY", "expected sandbox or stripe")),
        };
        let number = |key: &str| -> Result<Option<u64>, ConfigError> {
            get(key)
                .map(|v| {
                    v.parse::<u64>()
                        .map_err(|_| invalid(key, "expected a whole number"))
                })
                .transpose()
        };
        Ok(Config {
            public_url: get("CONSIGN_PUBLIC_URL").unwrap_or_else(|| format!("http://{listen}")),
            listen,
            database_url: get("DATABASE_URL").unwrap_or_else(|| "sqlite://consign.db".into()),
            pool_size: number("CONSIGN_DB_POOL_SIZE")?
                .map(|n| u32::try_from(n.clamp(1, 1024)).unwrap_or(1024)),
            pool_timeout: duration(get("CONSIGN_DB_TIMEOUT").as_deref().unwrap_or("5s"))
                .filter(|d| !d.is_zero())
                .ok_or_else(|| invalid("CONSIGN_DB_TIMEOUT", "expected a duration such as 5s"))?,
            base_path,
            api_key: get("CONSIGN_API_KEY"),
            stripe,
            recovery_after: duration(get("CONSIGN_RECOVERY_AFTER").as_deref().unwrap_or("5s"))
                .ok_or_else(|| {
                    invalid(
                        "CONSIGN_RECOVERY_AFTER",
                        "expected a duration such as 5s or 500ms",
                    )
                })?,
            max_body: bytes(get("CONSIGN_MAX_BODY").as_deref().unwrap_or("1MiB")).ok_or_else(
                || {
                    invalid(
                        "CONSIGN_MAX_BODY",
                        "expected a size such as 1MiB, 64KiB or 1048576",
                    )
                },
            )?,
            sandbox_latency: duration(get("CONSIGN_SANDBOX_LATENCY").as_deref().unwrap_or("0ms"))
                .ok_or_else(|| {
                invalid(
                    "CONSIGN_SANDBOX_LATENCY",
                    "expected a duration such as 200ms",
                )
            })?,
            workers: number("CONSIGN_WORKERS")?.map(|n| n.clamp(1, 256) as usize),
            mail_dir: get("CONSIGN_MAIL_DIR").unwrap_or_else(|| "mail".into()),
            smtp_url: get("CONSIGN_SMTP_URL"),
            outbox_interval: duration(get("CONSIGN_OUTBOX_INTERVAL").as_deref().unwrap_or("2s"))
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    invalid("CONSIGN_OUTBOX_INTERVAL", "expected a duration such as 2s")
                })?,
            document_secret: get("CONSIGN_DOCUMENT_SECRET"),
            rate_limit: u32::try_from(number("CONSIGN_RATE_LIMIT")?.unwrap_or(300))
                .map_err(|_| invalid("CONSIGN_RATE_LIMIT", "too large"))?,
            document_ttl: duration(get("CONSIGN_DOCUMENT_TTL").as_deref().unwrap_or("30d"))
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    invalid("CONSIGN_DOCUMENT_TTL", "expected a duration such as 30d")
                })?,
            store: StoreSettings {
                seller: Seller {
                    name: get("CONSIGN_SELLER_NAME").unwrap_or_else(|| "Consign".into()),
                    address: get("CONSIGN_SELLER_ADDRESS")
                        .map(|a| a.split('|').map(|l| l.trim().to_owned()).collect())
                        .unwrap_or_default(),
                    vat_number: get("CONSIGN_SELLER_VAT").unwrap_or_default(),
                    country_of_origin: get("CONSIGN_COUNTRY_OF_ORIGIN").unwrap_or_default(),
                },
                send_shipping_confirmation: match get("CONSIGN_SEND_SHIPPING_CONFIRMATION")
                    .as_deref()
                {
                    None | Some("true") | Some("1") => true,
                    Some("false") | Some("0") => false,
                    Some(_) => {
                        return Err(invalid(
                            "CONSIGN_SEND_SHIPPING_CONFIRMATION",
                            "expected true or false",
                        ))
                    }
                },
                mail_from: get("CONSIGN_MAIL_FROM").unwrap_or_else(|| "shipping@localhost".into()),
                mail_retry_base_millis: duration(
                    get("CONSIGN_MAIL_RETRY_BASE").as_deref().unwrap_or("5s"),
                )
                .filter(|d| !d.is_zero())
                .map(|d| i64::try_from(d.as_millis()).unwrap_or(3_600_000))
                .ok_or_else(|| {
                    invalid("CONSIGN_MAIL_RETRY_BASE", "expected a duration such as 5s")
                })?,
                mail_lease_millis: duration(
                    get("CONSIGN_OUTBOX_LEASE").as_deref().unwrap_or("60s"),
                )
                .filter(|d| !d.is_zero())
                .map(|d| i64::try_from(d.as_millis()).unwrap_or(3_600_000))
                .ok_or_else(|| {
                    invalid("CONSIGN_OUTBOX_LEASE", "expected a duration such as 60s")
                })?,
                idempotency_takeover_millis: duration(
                    get("CONSIGN_IDEMPOTENCY_TAKEOVER")
                        .as_deref()
                        .unwrap_or("60s"),
                )
                .filter(|d| !d.is_zero())
                .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
                .ok_or_else(|| {
                    invalid(
                        "CONSIGN_IDEMPOTENCY_TAKEOVER",
                        "expected a duration such as 60s",
                    )
                })?,
            },
        })
    }
}

/// `CONSIGN_STRIPE_*`, read when `CONSIGN_GATEWAY=stripe`.
fn stripe_config(get: &dyn Fn(&str) -> Option<String>) -> Result<StripeConfig, ConfigError> {
    let invalid = |key: &str, why: &str| ConfigError::Invalid {
        key: key.to_owned(),
        why: why.to_owned(),
    };
    let secret = get("CONSIGN_STRIPE_SECRET_KEY").ok_or_else(|| {
        invalid(
            "CONSIGN_STRIPE_SECRET_KEY",
            "required with CONSIGN_GATEWAY=stripe",
        )
    })?;
    let mut stripe = StripeConfig::new(&secret);
    if let Some(base) = get("CONSIGN_STRIPE_API_BASE") {
        stripe.api_base = base;
    }
    stripe.multicapture = match get("CONSIGN_STRIPE_MULTICAPTURE").as_deref() {
        None | Some("false") | Some("0") => false,
        Some("true") | Some("1") => true,
        Some(_) => {
            return Err(invalid(
                "CONSIGN_STRIPE_MULTICAPTURE",
                "expected true or false",
            ))
        }
    };
    if let Some(timeout) = get("CONSIGN_STRIPE_TIMEOUT") {
        stripe.timeout = duration(&timeout)
            .filter(|d| !d.is_zero())
            .ok_or_else(|| invalid("CONSIGN_STRIPE_TIMEOUT", "expected a duration such as 10s"))?;
    }
    Ok(stripe)
}

/// `KEY=VALUE` lines; `#` starts a comment.
fn read_file(path: &Path) -> Result<BTreeMap<String, String>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
        path: path.display().to_string(),
        why: e.to_string(),
    })?;
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
        if !KEYS.contains(&key) {
            return Err(ConfigError::UnknownKey(key.to_owned()));
        }
        values.insert(key.to_owned(), value.trim().trim_matches('"').to_owned());
    }
    Ok(values)
}

/// `500ms`, `5s`, `2m`.
fn duration(text: &str) -> Option<Duration> {
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit())?);
    let n: u64 = number.parse().ok()?;
    match unit {
        "ms" => Some(Duration::from_millis(n)),
        "s" => Some(Duration::from_secs(n)),
        "m" => Some(Duration::from_secs(n * 60)),
        "h" => Some(Duration::from_secs(n * 3600)),
        "d" => Some(Duration::from_secs(n * 86_400)),
        _ => None,
    }
}

/// `1048576`, `64KiB`, `1MiB`.
fn bytes(text: &str) -> Option<usize> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: usize = number.parse().ok()?;
    let factor = match unit {
        "" | "B" => 1,
        "KiB" => 1024,
        "MiB" => 1024 * 1024,
        _ => return None,
    };
    n.checked_mul(factor).filter(|n| *n > 0)
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
    }

    #[test]
    fn bad_values_name_their_setting() {
        for (key, value) in [
            ("CONSIGN_LISTEN", "nowhere"),
            ("CONSIGN_MAX_BODY", "1GB"),
            ("CONSIGN_RECOVERY_AFTER", "soon"),
            ("CONSIGN_BASE_PATH", "api"),
        ] {
            let error = Config::from_values(&values(&[(key, value)])).unwrap_err();
            assert!(error.to_string().starts_with(key), "{error}");
        }
    }

    #[test]
    fn sizes_and_durations_read_their_units() {
        assert_eq!(bytes("64KiB"), Some(65_536));
        assert_eq!(bytes("100"), Some(100));
        assert_eq!(duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(duration("2m"), Some(Duration::from_secs(120)));
    }
}
