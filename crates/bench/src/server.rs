//! The measured `consign` process: started, timed to ready, and read from /proc.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const KEY: &str = "csk_bench-key-000000000000000000";

/// Opens `/metrics` on the measured server, for its count of statements sent.
const METRICS_TOKEN: &str = "bench-metrics-token";

pub struct Server {
    pub child: Child,
    pub base: String,
    /// `http://host:port`, where `/metrics` is.
    root: String,
    /// From spawn to `/readyz` answering 200.
    pub ready_after: Duration,
    /// The folder its confirmation mails are written to: this run's own, in `--mail-dir`,
    /// removed once the server has stopped (a folder shared by every run grew by the run's
    /// mails each time, tens of thousands of files a minute of load, and was never emptied).
    mail_dir: PathBuf,
}

pub fn binary(explicit: Option<&str>) -> Result<String, String> {
    if let Some(path) = explicit {
        return Ok(path.to_owned());
    }
    sibling("consign").map_err(|me| {
        format!(
            "no consign binary next to {me}; build it with `cargo build --release -p consign-server` or pass --server"
        )
    })
}

/// The program `name` next to this one, or this one's path when there is none.
pub fn sibling(name: &str) -> Result<String, String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let sibling = me.with_file_name(name);
    if sibling.exists() {
        Ok(sibling.display().to_string())
    } else {
        Err(me.display().to_string())
    }
}

/// The mails written to `folder` (its `.eml` files; 0 when it was never created).
pub fn mails_in(folder: &std::path::Path) -> usize {
    std::fs::read_dir(folder).map_or(0, |entries| {
        entries
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
            .count()
    })
}

pub async fn start(
    binary: &str,
    database_url: &str,
    latency_ms: u64,
    pool: Option<u32>,
    extra_env: &[(&str, String)],
    mail_parent: &Path,
) -> Result<Server, String> {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let address = format!("http://127.0.0.1:{port}");
    let mail_dir = mail_parent.join(format!("consign-bench-mail-{}-{port}", std::process::id()));
    let mut command = Command::new(binary);
    command
        .env("CONSIGN_LISTEN", format!("127.0.0.1:{port}"))
        .env("DATABASE_URL", database_url)
        .env("CONSIGN_API_KEY", KEY)
        .env("CONSIGN_SANDBOX_LATENCY", format!("{latency_ms}ms"))
        .env("CONSIGN_MAIL_DIR", &mail_dir)
        // The default log level: the access log line of every request is part of the cost.
        .env_remove("RUST_LOG")
        // The load generator uses one key; the per-key limit would measure itself.
        .env("CONSIGN_RATE_LIMIT", "0")
        .env("CONSIGN_METRICS_TOKEN", METRICS_TOKEN)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(pool) = pool {
        command.env("CONSIGN_DB_POOL_SIZE", pool.to_string());
    }
    command.envs(extra_env.iter().map(|(name, value)| (name, value)));
    let started = Instant::now();
    let child = command
        .spawn()
        .map_err(|e| format!("cannot start {binary}: {e}"))?;
    let client = reqwest::Client::new();
    loop {
        if let Ok(r) = client.get(format!("{address}/readyz")).send().await {
            if r.status().is_success() {
                break;
            }
        }
        if started.elapsed() > Duration::from_secs(60) {
            return Err(format!("{binary} did not become ready"));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(Server {
        child,
        base: format!("{address}/api/order"),
        root: address,
        ready_after: started.elapsed(),
        mail_dir,
    })
}

impl Server {
    /// User + system CPU seconds the process has used.
    pub fn cpu_seconds(&self) -> f64 {
        crate::cpu::of_process(self.child.id())
    }

    /// Statements the server has sent to its database (`consign_db_statements_total` in its
    /// metrics): on PostgreSQL, its round trips.
    pub async fn statements_sent(&self, client: &reqwest::Client) -> Result<u64, String> {
        self.counter(client, "consign_db_statements_total").await
    }

    /// Commits of the server's SQLite writer (`consign_db_writer_commits_total`; 0 on
    /// PostgreSQL).
    pub async fn writer_commits(&self, client: &reqwest::Client) -> Result<u64, String> {
        self.counter(client, "consign_db_writer_commits_total")
            .await
    }

    /// The SQLite writer thread's CPU seconds so far (`None` without one).
    pub fn writer_cpu_seconds(&self) -> Option<f64> {
        crate::cpu::of_thread(&self.child.id().to_string(), "consign-sqlite")
    }

    /// The value of counter `name` in the server's metrics.
    async fn counter(&self, client: &reqwest::Client, name: &str) -> Result<u64, String> {
        let text = client
            .get(format!("{}/metrics", self.root))
            .bearer_auth(METRICS_TOKEN)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| format!("metrics: {e}"))?
            .text()
            .await
            .map_err(|e| format!("metrics: {e}"))?;
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| format!("metrics: no {name}"))
    }

    /// Peak resident memory, MiB.
    pub fn peak_rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    }

    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        // Drop removes the mail folder.
    }

    /// The folder the server writes its confirmation mails to.
    pub fn mail_dir(&self) -> &Path {
        &self.mail_dir
    }
}

impl Drop for Server {
    /// A run that ends on an error still stops the server it started; its mail folder goes
    /// with it.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.mail_dir);
    }
}
