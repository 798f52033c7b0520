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
/// `gssencmode` of its own.
///
/// Why: libpq built with GSSAPI otherwise asks Kerberos for credentials on every new
/// connection. That costs a lookup per connect, and when the process exits while a pool
/// thread is still connecting, the Kerberos library (already torn down) aborts the process.
/// Sites that do use GSSAPI encryption say so in the URL and keep it.
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
/// ```
pub fn postgres_connection_url(url: &str) -> String {
    if url.contains("gssencmode=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&gssencmode=disable")
    } else {
        format!("{url}?gssencmode=disable")
    }
}
