//! Documents over HTTP: signed links, real PDFs, no invoice before the capture, gap-free invoice
//! numbers under concurrent captures.

use std::sync::Arc;

use consign_tests::*;
use serde_json::json;

fn fetch(url: &str, key: Option<&str>) -> (u16, String, Vec<u8>) {
    let mut request = ureq::get(url);
    if let Some(key) = key {
        request = request.set("API-Authorization", key);
    }
    let response = match request.call() {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{e}"),
    };
    let status = response.status();
    let content_type = response.content_type().to_owned();
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut response.into_reader(), &mut body).unwrap();
    (status, content_type, body)
}

#[test]
fn signed_links_serve_real_pdfs_without_a_key_and_nothing_else() {
    let app = spawn_app(Backend::Sqlite);
    let ids = app.import(&example_order(600, "auth-600"));
    let created = app
        .post(
            "/shipments",
            &json!({"order": 600, "products": {ids[0].clone(): 1}}),
        )
        .json();
    for field in ["deliveryNote", "proforma", "invoice"] {
        let url = created[field].as_str().unwrap();
        let (status, content_type, body) = fetch(url, None);
        assert_eq!(
            (status, content_type.as_str()),
            (200, "application/pdf"),
            "{field}"
        );
        assert!(body.starts_with(b"%PDF-"), "{field} is a PDF");
        assert!(body.len() > 500);
    }
    // The token of one kind does not open another kind or shipment.
    let note = created["deliveryNote"].as_str().unwrap();
    let token = note.split("token=").nth(1).unwrap();
    let proforma_with_note_token = format!(
        "{}/api/order/documents/600-1/proforma.pdf?token={token}",
        app.address
    );
    assert_eq!(fetch(&proforma_with_note_token, None).0, 401);
    let other_shipment = format!(
        "{}/api/order/documents/600-2/delivery-note.pdf?token={token}",
        app.address
    );
    assert_eq!(fetch(&other_shipment, None).0, 401);
    let tampered = note.replace("token=", "token=9");
    assert_eq!(fetch(&tampered, None).0, 401);
    let bare = note.split('?').next().unwrap();
    assert_eq!(
        fetch(bare, None).0,
        401,
        "without a token the key is needed"
    );
    assert_eq!(
        fetch(bare, Some(TEST_KEY)).0,
        200,
        "with the key no token is needed"
    );
    // Unknown shipments and kinds are 404 with the usual body.
    let (status, _, body) = fetch(
        &format!("{}/api/order/documents/999-1/proforma.pdf", app.address),
        Some(TEST_KEY),
    );
    assert_eq!(status, 404);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&body).unwrap()["msg"],
        "shipment does not exist"
    );
    assert_eq!(
        fetch(
            &format!("{}/api/order/documents/600-1/receipt.pdf", app.address),
            Some(TEST_KEY)
        )
        .0,
        404
    );
}

#[test]
fn no_invoice_exists_before_the_capture() {
    let app = spawn_app(Backend::Sqlite);
    let ids = app.import(&example_order(610, "auth-610"));
    let created = app
        .post(
            "/shipments",
            &json!({"order": 610, "products": {ids[0].clone(): 1}, "capture": false}),
        )
        .json();
    assert!(created.get("invoice").is_none());
    let (status, _, body) = fetch(
        &format!("{}/api/order/documents/610-1/invoice.pdf", app.address),
        Some(TEST_KEY),
    );
    assert_eq!(status, 404);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&body).unwrap()["msg"],
        "invoice does not exist"
    );
    app.put("/capture", &json!({"shipment": "610-1"}));
    assert_eq!(
        fetch(
            &format!("{}/api/order/documents/610-1/invoice.pdf", app.address),
            Some(TEST_KEY)
        )
        .0,
        200
    );
}

#[test]
fn invoice_numbers_have_no_gaps_or_duplicates_under_concurrent_captures() {
    for backend in backends() {
        let app = Arc::new(spawn_app(backend));
        let mut lines = Vec::new();
        for id in 0..10 {
            lines.push(app.import(&example_order(700 + id, &format!("auth-{id}"))));
        }
        let handles: Vec<_> = (0..30usize)
            .map(|i| {
                let app = app.clone();
                let line = lines[i % 10][i % 2].clone();
                let capture = i % 3 != 0;
                std::thread::spawn(move || {
                    let created = app.post("/shipments", &json!({"order": 700 + (i % 10) as i64, "products": {line: 1}, "capture": capture})).json();
                    if !capture {
                        if let Some(id) = created["shipment"].as_str() {
                            app.put("/capture", &json!({"shipment": id}));
                        }
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.join().unwrap();
        }
        let numbers: Vec<i64> = app
            .dump()
            .iter()
            .filter_map(|row| row.strip_prefix("invoices ("))
            .map(|row| row.split(',').next().unwrap().parse().unwrap())
            .collect();
        let captured: usize = (0..10)
            .map(|id| {
                app.order(700 + id)["shipments"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|s| s["captureState"] == "captured")
                    .count()
            })
            .sum();
        assert!(captured >= 10, "{backend:?}: {captured}");
        assert_eq!(
            numbers.len(),
            captured,
            "{backend:?}: one invoice per captured shipment"
        );
        assert_eq!(
            numbers,
            (1..=captured as i64).collect::<Vec<_>>(),
            "{backend:?}: 1..n, no gap, no duplicate"
        );
    }
}
