//! Running the real `consign` binary for these tests.
#![allow(dead_code)] // each test binary uses a part of these helpers

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use consign_provider_stand_in::{StandIn, SECRET_KEY};
use serde_json::Value;

pub const KEY: &str = "csk_crash-test-key-00000000000000";

pub struct Server {
    pub child: Child,
    pub base: String,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(20))
        .build()
}

pub fn start(db_url: &str, stand_in: &StandIn, fault_point: Option<&str>) -> Server {
    start_with(db_url, stand_in, fault_point, &[])
}

pub fn start_with(
    db_url: &str,
    stand_in: &StandIn,
    fault_point: Option<&str>,
    extra: &[(&str, &str)],
) -> Server {
    start_at(free_port(), db_url, stand_in, fault_point, extra)
}

/// As [`start_with`], on a given port (a restart keeps its address, as behind a load balancer).
pub fn start_at(
    port: u16,
    db_url: &str,
    stand_in: &StandIn,
    fault_point: Option<&str>,
    extra: &[(&str, &str)],
) -> Server {
    let mut command = Command::new(env!("CARGO_BIN_EXE_consign"));
    command
        .env("CONSIGN_LISTEN", format!("127.0.0.1:{port}"))
        .env("DATABASE_URL", db_url)
        .env("CONSIGN_API_KEY", KEY)
        .env("CONSIGN_GATEWAY", "stripe")
        // These tests use both: Stripe through the stand-in, and the sandbox.
        .env("CONSIGN_GATEWAYS", "stripe,sandbox")
        .env("CONSIGN_STRIPE_SECRET_KEY", SECRET_KEY)
        .env("CONSIGN_STRIPE_API_BASE", &stand_in.url)
        .env("CONSIGN_STRIPE_MULTICAPTURE", "true")
        .env("CONSIGN_STRIPE_TIMEOUT", "2s")
        .env("CONSIGN_RECOVERY_AFTER", "1s")
        .env("CONSIGN_WORKERS", "2")
        .env("RUST_LOG", "error")
        .env(
            "CONSIGN_MAIL_DIR",
            std::env::temp_dir().join(format!("consign-test-mail-{}", std::process::id())),
        )
        .env_remove("FAILPOINTS")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some((_, path)) = extra.iter().find(|(k, _)| *k == "STDERR_TO") {
        let file = std::fs::File::create(path).expect("log file");
        command.stderr(Stdio::from(file));
    }
    if let Some(point) = fault_point {
        command.env("FAILPOINTS", format!("{point}=sleep(20000)"));
    }
    for (key, value) in extra.iter().filter(|(k, _)| *k != "STDERR_TO") {
        command.env(key, value);
    }
    let child = command.spawn().expect("start consign");
    let server = Server {
        child,
        base: format!("http://127.0.0.1:{port}/api/order"),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while agent()
        .get(&format!("{}/orders", server.base))
        .set("API-Authorization", KEY)
        .call()
        .is_err()
    {
        assert!(Instant::now() < deadline, "consign did not start");
        thread::sleep(Duration::from_millis(50));
    }
    server
}

pub fn call(base: &str, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
    call_keyed(base, method, path, body, None)
}

/// [`call`], with an `Idempotency-Key` when `key` is given.
pub fn call_keyed(
    base: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
    key: Option<&str>,
) -> Result<Value, String> {
    let mut request = agent()
        .request(method, &format!("{base}{path}"))
        .set("API-Authorization", KEY)
        .set("Content-Type", "application/json");
    if let Some(key) = key {
        request = request.set("Idempotency-Key", key);
    }
    let result = match body {
        Some(body) => request.send_string(&body.to_string()),
        None => request.call(),
    };
    match result {
        Ok(response) | Err(ureq::Error::Status(_, response)) => Ok(serde_json::from_str(
            &response.into_string().unwrap_or_default(),
        )
        .unwrap_or(Value::Null)),
        Err(ureq::Error::Transport(t)) => Err(t.to_string()),
    }
}

/// Imports `order` and ships `units` of its first line: the create's answer.
pub fn import_and_ship(base: &str, order: &Value, units: u32) -> Value {
    let imported = call(base, "POST", "/order", Some(order)).unwrap();
    let line = imported["products"][0]["lineId"]
        .as_str()
        .unwrap()
        .to_owned();
    let shipment = serde_json::json!({"order": order["order"], "products": {line: units}});
    call(base, "POST", "/shipments", Some(&shipment)).unwrap()
}

/// Every row of a copy of the SQLite file at `path` taken alone, without its log beside it.
pub fn rows_of_the_file_alone(path: &str) -> Vec<String> {
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(consign_db::testing::rows_of_the_file_alone(path))
}

/// `consign <args>` run as an operator would, on `db_url`, configured as the test server was.
pub fn operator_command(db_url: &str, stand_in: &StandIn, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_consign"))
        .env("DATABASE_URL", db_url)
        .env("CONSIGN_GATEWAYS", "stripe,sandbox")
        .env("CONSIGN_STRIPE_SECRET_KEY", SECRET_KEY)
        .env("CONSIGN_STRIPE_API_BASE", &stand_in.url)
        .env("RUST_LOG", "error")
        .args(args)
        .output()
        .expect("run consign")
}

/// Stops `server` as an orchestrator does (SIGTERM) and waits for it.
pub fn stop(server: Server) {
    let Server { mut child, .. } = server;
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}
