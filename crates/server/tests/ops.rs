//! Operations of the real binary: graceful shutdown on SIGTERM (leaving SQLite's file whole),
//! and logs that never hold keys or tokens.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::Duration;

use consign_db::testing::Throwaway;
use consign_provider_stand_in::StandIn;
use serde_json::json;
use support::{agent, call, import_and_ship, rows_of_the_file_alone, start_with, Server, KEY};

fn order(id: i64) -> serde_json::Value {
    json!({"order": id, "currency": "SEK", "email": "a@example.com",
        "products": [{"sku": "A", "qty": 3, "price": "10.00", "vat": "25"}],
        "payment": {"provider": "sandbox", "reference": format!("auth-{id}"), "amount": "30.00"}})
}

/// Starts the server with its standard error written to a file of its own (`name`, with this
/// process's id), `env` set as well; answers the server and the file's path.
fn start_logging_to(
    db: &Throwaway,
    stand_in: &StandIn,
    name: &str,
    env: &[(&str, &str)],
) -> (Server, PathBuf) {
    let log = std::env::temp_dir().join(format!("{name}-{}.txt", std::process::id()));
    let log_path = log.display().to_string();
    let mut all = vec![("STDERR_TO", log_path.as_str())];
    all.extend_from_slice(env);
    (start_with(&db.url, stand_in, None, &all), log)
}

/// Stops `server` with SIGTERM, waits for it to exit, and answers what it logged (the file is
/// removed).
fn stop_and_read_log(server: Server, log: &Path) -> String {
    let Server { mut child, .. } = server;
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
    let text = std::fs::read_to_string(log).unwrap();
    std::fs::remove_file(log).ok();
    text
}

#[test]
fn sigterm_finishes_the_request_in_flight_refuses_new_ones_and_exits_0() {
    let db = Throwaway::sqlite();
    let stand_in = StandIn::start_in_background();
    let server = start_with(
        &db.url,
        &stand_in,
        None,
        &[("CONSIGN_SANDBOX_LATENCY", "1500ms")],
    );
    let line = call(&server.base, "POST", "/order", Some(&order(1))).unwrap()["products"][0]
        ["lineId"]
        .clone();
    let base = server.base.clone();
    let in_flight = thread::spawn(move || {
        call(
            &base,
            "POST",
            "/shipments",
            Some(&json!({"order": 1, "products": {line.as_str().unwrap(): 1}})),
        )
    });
    thread::sleep(Duration::from_millis(400));
    let Server { mut child, base } = server;
    let signalled = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(signalled.success());
    thread::sleep(Duration::from_millis(300));
    let refused = agent()
        .get(&format!("{base}/orders"))
        .set("API-Authorization", KEY)
        .call();
    assert!(
        matches!(refused, Err(ureq::Error::Transport(_))),
        "a new request after SIGTERM must be refused: {refused:?}"
    );
    let answer = in_flight
        .join()
        .unwrap()
        .expect("the request in flight completes");
    assert_eq!(answer["status"], "ok", "{answer}");
    assert_eq!(answer["shipment"], "1-1");
    let status = child.wait().unwrap();
    assert!(status.success(), "exit status {status:?}");
}

#[test]
fn logs_carry_request_ids_and_never_keys_or_tokens() {
    let db = Throwaway::sqlite();
    let stand_in = StandIn::start_in_background();
    let (server, log) = start_logging_to(
        &db,
        &stand_in,
        "consign-log",
        &[("RUST_LOG", "info"), ("CONSIGN_LOG_FORMAT", "json")],
    );
    let created = import_and_ship(&server.base, &order(2), 1);
    let url = created["invoice"].as_str().unwrap().to_owned();
    let token = url.split("token=").nth(1).unwrap().to_owned();
    let response = agent()
        .get(&url)
        .set("X-Request-Id", "trace-42")
        .call()
        .unwrap();
    assert_eq!(
        response.header("X-Request-Id"),
        Some("trace-42"),
        "a client's request id is echoed"
    );
    let generated = agent()
        .get(&format!("{}/orders", server.base))
        .set("API-Authorization", KEY)
        .call()
        .unwrap();
    assert!(generated
        .header("X-Request-Id")
        .is_some_and(|id| !id.is_empty()));
    let text = stop_and_read_log(server, &log);
    assert!(
        text.contains("\"request_id\":\"trace-42\""),
        "JSON access log with the request id:\n{text}"
    );
    assert!(
        text.lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('{')),
        "one JSON object per line"
    );
    assert!(!text.contains(KEY), "an API key reached the logs");
    assert!(!text.contains(&token), "a document token reached the logs");
}

#[test]
fn plain_logs_written_to_a_file_carry_no_colour_codes() {
    let db = Throwaway::sqlite();
    let stand_in = StandIn::start_in_background();
    let (server, log) =
        start_logging_to(&db, &stand_in, "consign-plain-log", &[("RUST_LOG", "info")]);
    call(&server.base, "GET", "/orders", None).unwrap();
    let text = stop_and_read_log(server, &log);
    assert!(text.contains("request"), "the access log is there:\n{text}");
    assert!(
        !text.contains('\u{1b}'),
        "colour codes in a log file:\n{text}"
    );
}

/// A listing whose later part cannot be read (a fault point fails every read of a part that
/// starts after an order) is answered 200 by then: the client gets a broken answer, never a
/// shorter list that looks whole, and the log at the default level says what happened, since
/// the access log line says 200.
#[test]
fn a_listing_cut_off_after_its_200_is_logged_at_error_level() {
    let db = Throwaway::sqlite();
    let stand_in = StandIn::start_in_background();
    let (server, log) = start_logging_to(
        &db,
        &stand_in,
        "consign-cut-log",
        &[
            ("RUST_LOG", "warn"),
            ("FAILPOINTS", "later-order-part=return"),
        ],
    );
    // More orders than the first part reads.
    let first_part = usize::try_from(consign_service::FIRST_PART).unwrap();
    for id in 1..=i64::try_from(first_part + 2).unwrap() {
        call(&server.base, "POST", "/order", Some(&order(id))).unwrap();
    }
    // The answer breaks off: before its head when the part fails with the first chunk still
    // unsent, as here, or in its body.
    let whole = agent()
        .get(&format!("{}/orders", server.base))
        .set("API-Authorization", KEY)
        .call()
        .ok()
        .and_then(|response| response.into_string().ok());
    assert_eq!(whole, None, "a broken answer, not a whole one");
    let text = stop_and_read_log(server, &log);
    assert!(
        text.contains("a listing's later part could not be read")
            && text.contains("fault point later-order-part"),
        "the cut is logged:\n{text}"
    );
}

/// An operator who copies the embedded database after a clean stop copies one file: it must
/// hold every write, with nothing left only in SQLite's log beside it.
#[test]
fn after_a_clean_stop_the_sqlite_file_alone_holds_every_write() {
    let db = Throwaway::sqlite();
    let stand_in = StandIn::start_in_background();
    let server = start_with(&db.url, &stand_in, None, &[]);
    let created = import_and_ship(&server.base, &order(3), 2);
    assert_eq!(created["shipment"], "3-1", "{created}");
    let Server { mut child, .. } = server;
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());

    let rows = rows_of_the_file_alone(&db.config.target);
    assert!(
        rows.iter()
            .any(|r| r.starts_with("shipments") && r.contains("order_id: 3")),
        "the copied file lacks the shipment: {rows:#?}"
    );
}
