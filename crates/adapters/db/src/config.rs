//! Which database, and how many connections.

use std::time::Duration;

/// The backend a URL selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `postgres://...` or `postgresql://...`.
    Postgres,
    /// `sqlite://PATH`, `sqlite:///ABS/PATH`, or a plain file path.
    Sqlite,
}

/// Database settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbConfig {
    /// The backend.
    pub backend: Backend,
    /// What the driver opens: the PostgreSQL URL, or the SQLite file path.
    pub target: String,
    /// Connections in the pool (also the bound on concurrent blocking database work).
    pub pool_size: u32,
    /// How long a request waits for a connection before it is answered 503.
    pub connection_timeout: Duration,
}

impl DbConfig {
    /// Reads `DATABASE_URL`-style text; the pool size defaults per backend.
    ///
    /// ```
    /// use consign_db::{Backend, DbConfig};
    /// assert_eq!(DbConfig::from_url("sqlite://consign.db").target, "consign.db");
    /// assert_eq!(DbConfig::from_url("sqlite:///var/lib/consign.db").target, "/var/lib/consign.db");
    /// assert_eq!(DbConfig::from_url("postgres://db/consign").backend, Backend::Postgres);
    /// assert_eq!(DbConfig::from_url("data/consign.db").backend, Backend::Sqlite);
    /// ```
    pub fn from_url(url: &str) -> DbConfig {
        let (backend, target) =
            if url.starts_with("postgres://") || url.starts_with("postgresql://") {
                (Backend::Postgres, postgres_connection_url(url))
            } else if let Some(path) = url.strip_prefix("sqlite://") {
                (Backend::Sqlite, path.to_owned())
            } else {
                (
                    Backend::Sqlite,
                    url.strip_prefix("sqlite:").unwrap_or(url).to_owned(),
                )
            };
        DbConfig {
            backend,
            target,
            pool_size: match backend {
                Backend::Postgres => 16,
                Backend::Sqlite => 8,
            },
            connection_timeout: Duration::from_secs(5),
        }
    }
}

/// The URL libpq is given: the operator's, with `gssencmode=disable` added unless it names a
/// `gssencmode` of its own, and `sslmode=disable` added when every host it names is loopback
/// and it names no `sslmode`.
///
/// Why GSSAPI: libpq built with GSSAPI otherwise asks Kerberos for credentials on every new
/// connection. That costs a lookup per connect, and when the process exits while a pool
/// thread is still connecting, the Kerberos library (already torn down) aborts the process.
/// Sites that do use GSSAPI encryption say so in the URL and keep it.
///
/// Why TLS on loopback: libpq's default (`prefer`) encrypts whenever the server offers TLS,
/// also on 127.0.0.1, where the traffic never leaves the kernel and whoever could read it
/// could read the process too. Under load that encryption was about a fifth of Consign's CPU
/// per request (docs/benchmarks.md). Any other host keeps libpq's default, and a URL that
/// names an `sslmode` (or its hosts as a `host` parameter) is left as the operator wrote it.
///
/// ```
/// use consign_db::postgres_connection_url;
/// assert_eq!(postgres_connection_url("postgres://db/c"), "postgres://db/c?gssencmode=disable");
/// assert_eq!(
///     postgres_connection_url("postgres://db/c?sslmode=require"),
///     "postgres://db/c?sslmode=require&gssencmode=disable"
/// );
/// assert_eq!(
///     postgres_connection_url("postgres://db/c?gssencmode=require"),
///     "postgres://db/c?gssencmode=require"
/// );
/// assert_eq!(
///     postgres_connection_url("postgres://u@127.0.0.1:5432/c"),
///     "postgres://u@127.0.0.1:5432/c?gssencmode=disable&sslmode=disable"
/// );
/// assert_eq!(
///     postgres_connection_url("postgresql://u:p@localhost,[::1]:5433/c?application_name=x"),
///     "postgresql://u:p@localhost,[::1]:5433/c?application_name=x&gssencmode=disable&sslmode=disable"
/// );
/// assert_eq!(
///     postgres_connection_url("postgres://u@127.0.0.1/c?sslmode=verify-full"),
///     "postgres://u@127.0.0.1/c?sslmode=verify-full&gssencmode=disable"
/// );
/// assert_eq!(
///     postgres_connection_url("postgres://u@127.0.0.1,db.example.com/c"),
///     "postgres://u@127.0.0.1,db.example.com/c?gssencmode=disable"
/// );
/// ```
pub fn postgres_connection_url(url: &str) -> String {
    let mut added = Vec::new();
    if !url_names(url, "gssencmode") {
        added.push("gssencmode=disable");
    }
    if !url_names(url, "sslmode") && only_loopback_hosts(url) {
        added.push("sslmode=disable");
    }
    match (added.is_empty(), url.contains('?')) {
        (true, _) => url.to_owned(),
        (false, true) => format!("{url}&{}", added.join("&")),
        (false, false) => format!("{url}?{}", added.join("&")),
    }
}

/// Whether the URL's query names `parameter`.
fn url_names(url: &str, parameter: &str) -> bool {
    url.split_once('?').is_some_and(|(_, query)| {
        query
            .split('&')
            .any(|pair| pair.split('=').next() == Some(parameter))
    })
}

/// Whether the URL names hosts in its authority only, and each of them is loopback.
fn only_loopback_hosts(url: &str) -> bool {
    if url_names(url, "host") || url_names(url, "hostaddr") {
        return false;
    }
    let Some((_, rest)) = url.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let hosts = authority
        .rsplit_once('@')
        .map_or(authority, |(_, hosts)| hosts);
    !hosts.is_empty()
        && hosts.split(',').all(|host| {
            let name = match host.strip_prefix('[') {
                Some(v6) => v6.split(']').next().unwrap_or_default(),
                None => host.split(':').next().unwrap_or_default(),
            };
            name == "localhost"
                || name
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        })
}
