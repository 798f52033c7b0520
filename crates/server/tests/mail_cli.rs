//! `consign mail refused` and `consign mail resend`: an operator finds the confirmations the
//! mail server refused for good and, once the customer's mailbox is mended, sends one again.

mod support;

use std::time::{Duration, Instant};

use consign_db::testing::Throwaway;
use consign_provider_stand_in::smtp::SmtpSink;
use consign_provider_stand_in::StandIn;
use serde_json::json;
use support::{call, operator_command, start_with, stop};

#[test]
fn an_operator_lists_refused_confirmations_and_sends_one_again() {
    let db = Throwaway::sqlite();
    let sink = SmtpSink::start();
    sink.refuse_recipient("gone@example.com");
    let stand_in = StandIn::start_in_background();
    let smtp = sink.url();
    let mail = [
        ("CONSIGN_SMTP_URL", smtp.as_str()),
        ("CONSIGN_OUTBOX_INTERVAL", "100ms"),
    ];
    let server = start_with(&db.url, &stand_in, None, &mail);
    let order = json!({"order": 72, "currency": "SEK", "email": "gone@example.com",
        "products": [{"sku": "A", "qty": 3, "price": "10.00", "vat": "25"}],
        "payment": {"provider": "sandbox", "reference": "auth-72", "amount": "30.00"}});
    let imported = call(&server.base, "POST", "/order", Some(&order)).unwrap();
    let line = imported["products"][0]["lineId"]
        .as_str()
        .unwrap()
        .to_owned();
    let shipped = json!({"order": 72, "products": {line: 1}, "shipped": true, "tracking": "T72"});
    let created = call(&server.base, "POST", "/shipments", Some(&shipped)).unwrap();
    assert_eq!(created["status"], "ok", "{created}");

    let refused = || {
        let listed = operator_command(&db.url, &stand_in, &["mail", "refused"]);
        assert!(listed.status.success(), "{listed:?}");
        String::from_utf8_lossy(&listed.stdout).into_owned()
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    let listed = loop {
        let listed = refused();
        if !listed.contains("no refused confirmations") {
            break listed;
        }
        assert!(Instant::now() < deadline, "never refused");
        std::thread::sleep(Duration::from_millis(100));
    };
    stop(server);
    let row: Vec<&str> = listed.trim().split('\t').collect();
    assert_eq!(row.len(), 4, "{listed}");
    assert_eq!(&row[1..3], ["72-1", "shipping"], "{listed}");
    assert!(row[3].contains("5.1.1 no such mailbox"), "{listed}");
    let id = row[0];

    // Mended at the mail server: sent again by the next start's outbox, once.
    let resent = operator_command(&db.url, &stand_in, &["mail", "resend", id]);
    assert!(resent.status.success(), "{resent:?}");
    assert!(String::from_utf8_lossy(&resent.stdout).contains("queued again"));
    let again = operator_command(&db.url, &stand_in, &["mail", "resend", id]);
    assert!(!again.status.success(), "only a refused one: {again:?}");
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("is not a refused confirmation"),
        "{again:?}"
    );
    assert!(refused().contains("no refused confirmations"));
    let mended = SmtpSink::start();
    let smtp = mended.url();
    let mail = [
        ("CONSIGN_SMTP_URL", smtp.as_str()),
        ("CONSIGN_OUTBOX_INTERVAL", "100ms"),
    ];
    let server = start_with(&db.url, &stand_in, None, &mail);
    let deadline = Instant::now() + Duration::from_secs(15);
    while mended.messages().is_empty() {
        assert!(Instant::now() < deadline, "never sent again");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    stop(server);
    assert_eq!(mended.messages().len(), 1);
    assert!(mended.messages()[0].contains("To: gone@example.com"));
}
