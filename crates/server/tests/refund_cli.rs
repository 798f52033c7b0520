//! `consign refund settle`: an operator settles a refund the real binary's recovery flagged for
//! review, on the same database, from what the provider shows (as `capture_cli.rs` for
//! captures).

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

/// `consign refund settle ...` on `db_url`, configured as the test server was.
fn settle(db_url: &str, stand_in: &StandIn, args: &[&str]) -> Output {
    let mut all = vec!["refund", "settle"];
    all.extend_from_slice(args);
    operator_command(db_url, stand_in, &all)
}

fn the_return(server: &Server, id: i64) -> Value {
    call(&server.base, "GET", &format!("/returns?return={id}"), None).unwrap()["returns"][0].clone()
}

#[test]
fn an_operator_settles_a_refund_under_review_from_the_command_line() {
    let db = Throwaway::sqlite();
    let stand_in = StandIn::start_in_background();
    stand_in.authorize("pi_72", 3_000, "SEK", true);
    let server = start_with(&db.url, &stand_in, None, &[]);
    let order = json!({"order": 72, "currency": "SEK", "email": "a@example.com",
        "products": [{"sku": "A", "qty": 3, "price": "10.00", "vat": "25"}],
        "payment": {"provider": "stripe", "reference": "pi_72", "amount": "30.00"}});
    let created = import_and_ship(&server.base, &order, 3);
    assert_eq!(created["shipment"], "72-1", "{created}");
    // The refund is made at the provider, but no answer ever arrives: not at creation, not in
    // any of recovery's passes (one a second), until it needs review.
    stand_in.inject(
        std::iter::once(Fault::DropAfterProcessing).chain((0..60).map(|_| Fault::Status(500))),
    );
    let returned = call(
        &server.base,
        "POST",
        "/return",
        Some(&json!({"shipment": "72-1", "refund": {"refundPayment": true}})),
    )
    .unwrap();
    assert_eq!(returned["status"], "no", "{returned}");
    let id = returned["return"].as_i64().expect("the return's id");

    // Not under review yet: refused, nothing changes.
    let early = settle(
        &db.url,
        &stand_in,
        &[&id.to_string(), "--refunded", "re_early"],
    );
    assert!(!early.status.success());
    assert!(
        String::from_utf8_lossy(&early.stderr).contains("not waiting for review"),
        "{early:?}"
    );

    let deadline = Instant::now() + Duration::from_secs(60);
    while the_return(&server, id)["refundState"] != "needsReview" {
        assert!(Instant::now() < deadline, "never flagged for review");
        thread::sleep(Duration::from_millis(200));
    }
    stop(server);
    let made = stand_in.refund_ledger()[0].id.clone();

    let settled = settle(&db.url, &stand_in, &[&id.to_string(), "--refunded", &made]);
    assert!(settled.status.success(), "{settled:?}");
    assert_eq!(
        String::from_utf8_lossy(&settled.stdout).trim(),
        format!("return {id}: refund refunded")
    );
    // The settlement is in the database file itself (the command copies SQLite's log into it).
    let rows = rows_of_the_file_alone(&db.config.target);
    assert!(
        rows.iter()
            .any(|r| r.starts_with("refund_hand_settlements") && r.contains(&made)),
        "{rows:#?}"
    );
    // Once settled it is not settled again, either way.
    let again = settle(
        &db.url,
        &stand_in,
        &[&id.to_string(), "--not-refunded", "x"],
    );
    assert!(!again.status.success(), "{again:?}");

    let server = start_with(&db.url, &stand_in, None, &[]);
    let listed = the_return(&server, id);
    assert_eq!(listed["refundState"], "refunded", "{listed}");
    assert_eq!(listed["completed"], json!(true), "{listed}");
    assert!(listed["creditNote"].is_string(), "{listed}");
    assert_eq!(stand_in.refund_ledger().len(), 1, "refunded once");
    stop(server);
}

#[test]
fn the_command_wants_one_finding_and_a_return_it_can_read() {
    let db = Throwaway::sqlite();
    let stand_in = StandIn::start_in_background();
    for (args, says) in [
        (&["7"][..], "--refunded"),
        (
            &["7", "--refunded", "re_1", "--not-refunded", "x"][..],
            "cannot be used with",
        ),
        (&["7", "--refunded", " "][..], "not empty"),
        (&["0", "--not-refunded", "x"][..], "invalid value '0'"),
        (&["72-1", "--not-refunded", "x"][..], "invalid value '72-1'"),
        (
            &["7", "--not-refunded", "x"][..],
            "Return with id=7 does not exist",
        ),
    ] {
        let output = settle(&db.url, &stand_in, args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?}: {output:?}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}
