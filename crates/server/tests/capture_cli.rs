//! `consign capture settle`: an operator settles a capture the real binary's recovery flagged
//! for review, on the same database, from what the provider shows.

mod support;

use std::process::Output;
use std::thread;
use std::time::{Duration, Instant};

use consign_db::testing::Throwaway;
use consign_provider_stand_in::{Fault, StandIn};
use serde_json::{json, Value};
use support::{
    call, import_and_ship, operator_command, rows_of_the_file_alone, start_with, stop, Server,
};

/// `consign capture settle ...` on `db_url`, configured as the test server was.
fn settle(db_url: &str, stand_in: &StandIn, args: &[&str]) -> Output {
    let mut all = vec!["capture", "settle"];
    all.extend_from_slice(args);
    operator_command(db_url, stand_in, &all)
}

fn shipment(server: &Server, id: &str) -> Value {
    call(&server.base, "GET", &format!("/shipments/{id}"), None).unwrap()["shipments"][0].clone()
}

#[test]
fn an_operator_settles_a_capture_under_review_from_the_command_line() {
    let db = Throwaway::sqlite();
    let stand_in = StandIn::start_in_background();
    stand_in.authorize("pi_71", 3_000, "SEK", true);
    // The capture is made at the provider, but no answer ever arrives: not at creation, not in
    // any of recovery's passes (one a second), until it needs review.
    stand_in.inject(
        std::iter::once(Fault::DropAfterProcessing).chain((0..60).map(|_| Fault::Status(500))),
    );
    let server = start_with(&db.url, &stand_in, None, &[]);
    let order = json!({"order": 71, "currency": "SEK", "email": "a@example.com",
        "products": [{"sku": "A", "qty": 3, "price": "10.00", "vat": "25"}],
        "payment": {"provider": "stripe", "reference": "pi_71", "amount": "30.00"}});
    let created = import_and_ship(&server.base, &order, 3);
    assert_eq!(created["shipment"], "71-1", "{created}");
    assert_eq!(shipment(&server, "71-1")["captureState"], "pending");

    // Not under review yet: refused, nothing changes.
    let early = settle(&db.url, &stand_in, &["71-1", "--captured", "ch_early"]);
    assert!(!early.status.success());
    assert!(
        String::from_utf8_lossy(&early.stderr).contains("no capture waiting for review"),
        "{early:?}"
    );

    let deadline = Instant::now() + Duration::from_secs(60);
    while shipment(&server, "71-1")["captureState"] != "needsReview" {
        assert!(Instant::now() < deadline, "never flagged for review");
        thread::sleep(Duration::from_millis(200));
    }
    stop(server);
    let charge = stand_in.ledger()[0].charge.clone();

    let settled = settle(&db.url, &stand_in, &["71-1", "--captured", &charge]);
    assert!(settled.status.success(), "{settled:?}");
    assert_eq!(
        String::from_utf8_lossy(&settled.stdout).trim(),
        "shipment 71-1: captured"
    );
    // The settlement is in the database file itself: the command copies SQLite's log into the
    // file before it ends (its connections close as the process exits, in no set order).
    let rows = rows_of_the_file_alone(&db.config.target);
    assert!(
        rows.iter().any(|r| r.starts_with("shipments")
            && r.contains("order_id: 71")
            && r.contains("state: \"captured\"")),
        "{rows:#?}"
    );
    // Once settled it is not settled again, either way.
    let again = settle(&db.url, &stand_in, &["71-1", "--not-captured", "not found"]);
    assert!(!again.status.success(), "{again:?}");

    let server = start_with(&db.url, &stand_in, None, &[]);
    let listed = shipment(&server, "71-1");
    assert_eq!(listed["captureState"], "captured", "{listed}");
    assert_eq!(listed["captureValue"].to_string(), "30.00", "{listed}");
    let order = call(&server.base, "GET", "/orders?order=71", None).unwrap();
    assert_eq!(
        order["orders"][0]["capturedValue"].to_string(),
        "30.00",
        "{order}"
    );
    assert_eq!(stand_in.ledger().len(), 1, "captured once");
    stop(server);
}

#[test]
fn the_command_wants_one_finding_and_a_shipment_it_can_read() {
    let db = Throwaway::sqlite();
    let stand_in = StandIn::start_in_background();
    for (args, says) in [
        (&["71-1"][..], "--captured"),
        (
            &["71-1", "--captured", "ch_1", "--not-captured", "x"][..],
            "cannot be used with",
        ),
        (&["71-1", "--captured", " "][..], "not empty"),
        (&["71", "--not-captured", "x"][..], "invalid value '71'"),
        (
            &["71-1", "--not-captured", "x"][..],
            "shipment does not exist",
        ),
    ] {
        let output = settle(&db.url, &stand_in, args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?}: {output:?}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}
