//! The OpenAPI document: served without a key, parses, and lists every route the server has.

use consign_tests::*;
use serde_json::Value;

/// A schema, or the component a `$ref` (possibly wrapped in a one-item `oneOf` for an optional
/// field) points to.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    let target = schema.get("$ref").or_else(|| {
        schema["oneOf"]
            .as_array()
            .and_then(|all| all.iter().find_map(|s| s.get("$ref")))
    });
    match target.and_then(Value::as_str) {
        Some(reference) => {
            let name = reference.trim_start_matches("#/components/schemas/");
            let found = &doc["components"]["schemas"][name];
            assert!(found.is_object(), "{reference} does not resolve");
            found
        }
        None => schema,
    }
}

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
    assert_eq!(doc["openapi"], "3.1.0");
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
        ("post", "/api/order/return"),
        ("put", "/api/order/returns/{returnId}"),
        ("get", "/api/order/returns"),
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
                let schema = resolve(&doc, &body["content"]["application/json"]["schema"]);
                assert_eq!(
                    schema["additionalProperties"], false,
                    "{method} {path}: unknown fields are refused"
                );
                let properties = schema["properties"].as_object().unwrap();
                for required in schema["required"].as_array().into_iter().flatten() {
                    assert!(properties.contains_key(required.as_str().unwrap()));
                }
                // Every field's schema is there, directly or by a reference that resolves.
                for (name, field) in properties {
                    let field = resolve(&doc, field);
                    assert!(
                        field.get("type").is_some() || field.get("oneOf").is_some(),
                        "{method} {path}: field {name} has no schema: {field}"
                    );
                }
            }
        }
    }
    assert_eq!(count, expected.len(), "every route is documented once");
    // An id as digits: as many as the largest id an import accepts (i64::MAX, 19 digits).
    let id = &doc["components"]["schemas"]["Id"]["oneOf"][1]["pattern"];
    assert_eq!(
        id, "^[0-9]{1,19}$",
        "{}",
        doc["components"]["schemas"]["Id"]
    );
    // Every reference anywhere in the document resolves.
    fn references<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref") {
                    out.push(r);
                }
                map.values().for_each(|v| references(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| references(v, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    references(&doc, &mut all);
    assert!(all.len() > 20, "the document uses its components");
    for reference in all {
        let name = reference.trim_start_matches("#/components/schemas/");
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "{reference} does not resolve"
        );
    }
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
