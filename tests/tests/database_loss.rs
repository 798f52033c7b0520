//! The database going away under the service (a PostgreSQL restart or failover ends every
//! connection): requests are answered 503 with a Centra-style error, never 500, so clients
//! retry with their key; nothing is half written, and the service recovers on its own.

use consign_tests::*;
use serde_json::json;

#[test]
fn connections_ended_by_the_database_are_answered_503_and_replaced() {
    // PostgreSQL only (SQLite's file has no connection to lose); required in CI.
    if !backends().contains(&Backend::Postgres) {
        return;
    }
    let app = spawn_app(Backend::Postgres);
    let ids = app.import(&example_order(9100, "auth-9100"));
    // Every pooled connection is used once, so the pool holds live ones to lose.
    for _ in 0..4 {
        assert_eq!(app.get("/orders?order=9100").status, 200);
    }
    assert!(app.cut_database_connections() >= 1, "no connection to end");
    // Sent without an Idempotency-Key: a request answered 503 that had written anything would
    // show as an earlier shipment (the one made would not be 9100-1) or a second capture.
    let body = json!({"order": 9100, "products": {ids[0].clone(): 1}});
    let mut unavailable = 0;
    let created = loop {
        let reply = app.post("/shipments", &body);
        match reply.status {
            200 => break reply.json(),
            503 => {
                assert_eq!(reply.json()["status"], "no", "{}", reply.body);
                unavailable += 1;
                assert!(unavailable <= 32, "the pool never replaced its connections");
            }
            other => panic!(
                "answered {other} after the connections ended: {}",
                reply.body
            ),
        }
    };
    assert_eq!(created["status"], "ok", "{created}");
    assert_eq!(created["shipment"], "9100-1", "{created}");
    assert!(unavailable >= 1, "no request met an ended connection");
    // One T-shirt with the shipping fee, captured once, as the books say.
    assert_eq!(app.sandbox.captured_minor(), 29_850);
    let order = app.get("/orders?order=9100").json();
    assert_eq!(order["orders"][0]["capturedValue"].to_string(), "298.50");
}

#[test]
fn a_write_behind_a_lock_held_elsewhere_is_answered_503_and_writes_nothing() {
    // PostgreSQL only (SQLite has one writer, and its wait is bounded by its turn); required in
    // CI.
    if !backends().contains(&Backend::Postgres) {
        return;
    }
    let app = spawn_app_with(Backend::Postgres, &[("CONSIGN_DB_TIMEOUT", "1s")]);
    let ids = app.import(&example_order(9200, "auth-9200"));
    let body = json!({"order": 9200, "products": {ids[0].clone(): 1}});
    let held = app.hold_order_lock(9200).expect("a PostgreSQL session");
    let (answered, wait_for_answer) = std::sync::mpsc::channel::<()>();
    // The lock is let go once the request is answered, or after 20 s: a server that waits
    // for it as long as it is held then answers (and the test fails) instead of hanging.
    let holder = std::thread::spawn(move || {
        let _ = wait_for_answer.recv_timeout(std::time::Duration::from_secs(20));
        drop(held);
    });
    let behind_the_lock = app.post("/shipments", &body);
    answered.send(()).ok();
    holder.join().expect("the lock's holder");
    assert_eq!(behind_the_lock.status, 503, "{}", behind_the_lock.body);
    assert_eq!(
        behind_the_lock.json()["status"],
        "no",
        "{}",
        behind_the_lock.body
    );
    assert_eq!(app.sandbox.captured_minor(), 0, "captured behind the lock");
    // With the lock gone the same request goes through, as the first shipment: the answered
    // 503 wrote nothing.
    let created = app.post("/shipments", &body);
    assert_eq!(created.status, 200, "{}", created.body);
    assert_eq!(created.json()["shipment"], "9200-1", "{}", created.body);
    assert_eq!(app.sandbox.captured_minor(), 29_850);
}
