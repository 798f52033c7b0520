//! The OpenAPI document: served without a key, parses, and lists every route the server has.

use consign_tests::*;
use serde_json::Value;

#[test]
fn the_openapi_document_parses_and_lists_every_route() {
    let app = spawn_app(Backend::Sqlite);
    // At the root, outside the base path, and without a key.
    let response = ureq::get(&format!("{}/openapi.json", app.address))
        .call()
        .expect("openapi.json");
    assert_eq!(response.content_type(), "application/json");
    let reply = Reply {
        status: response.status(),
        content_type: response.content_type().to_owned(),
        retry_after: None,
        allow: None,
        replayed: None,
        body: response.into_string().unwrap(),
    };
    assert_eq!(reply.status, 200);
    let doc: Value = serde_json::from_str(&reply.body).expect("valid JSON");
    assert_eq!(doc["openapi"], "3.0.3");
    assert_eq!(
        doc["components"]["securitySchemes"]["apiKey"]["name"],
        "API-Authorization"
    );
    let expected = [
        ("post", "/api/order/order"),
        ("get", "/api/order/orders"),
        ("post", "/api/order/shipments"),
        ("get", "/api/order/shipments"),
        ("get", "/api/order/shipments/{shipment}"),
        ("put", "/api/order/shipments/{shipment}"),
        ("delete", "/api/order/shipments/{shipment}"),
        ("put", "/api/order/shipment"),
        ("put", "/api/order/capture"),
        ("get", "/api/order/documents/{shipment}/{file}"),
    ];
    let paths = doc["paths"].as_object().expect("paths");
    let mut count = 0;
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            count += 1;
            assert!(
                expected.contains(&(method.as_str(), path.as_str())),
                "undocumented route {method} {path}"
            );
            assert!(
                op["responses"]["200"].is_object() && op["responses"]["400"].is_object(),
                "{method} {path}"
            );
            for p in op["parameters"].as_array().unwrap() {
                assert!(
                    p["name"].is_string()
                        && ["query", "path", "header"].contains(&p["in"].as_str().unwrap())
                );
            }
            if let Some(body) = op.get("requestBody") {
                let schema = &body["content"]["application/json"]["schema"];
                assert_eq!(
                    schema["additionalProperties"], false,
                    "unknown fields are refused"
                );
                for required in schema["required"].as_array().unwrap() {
                    assert!(schema["properties"]
                        .get(required.as_str().unwrap())
                        .is_some());
                }
            }
        }
    }
    assert_eq!(count, expected.len(), "every route is documented once");
    // Each documented route answers (with a key) something other than 404/405.
    for (method, path) in expected {
        let concrete = path
            .trim_start_matches("/api/order")
            .replace("{shipment}", "1-1")
            .replace("{file}", "proforma.pdf");
        let reply = match method {
            "get" => app.get(&concrete),
            "delete" => app.delete(&concrete),
            "put" => app.put(&concrete, &serde_json::json!({})),
            _ => app.post(&concrete, &serde_json::json!({})),
        };
        // An unknown shipment's document is a 404 with its own message; anything else is routed.
        let routed =
            reply.status != 405 && (reply.status != 404 || reply.json()["msg"] != "not found");
        assert!(routed, "{method} {path} answered {}", reply.status);
    }
}
