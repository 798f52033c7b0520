//! The OpenAPI 3 document, generated from the same route table and field lists the handlers
//! validate with, so it cannot drift from what the server accepts. Served at `/openapi.json`.

use serde_json::{json, Map, Value};

use crate::routes::{complete_shipment, create_shipment, import_order, list_orders, shipments};

/// One operation: method, path under the base, summary, and its body fields or query params.
struct Operation {
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    body: Option<&'static [&'static str]>,
    query: &'static [&'static str],
    path_shipment: bool,
}

const OPERATIONS: &[Operation] = &[
    Operation {
        method: "post",
        path: "/order",
        summary: "Import an order with its payment authorisation",
        body: Some(import_order::FIELDS),
        query: &[],
        path_shipment: false,
    },
    Operation {
        method: "get",
        path: "/orders",
        summary: "List orders with lines, quantities and shipments",
        body: None,
        query: list_orders::PARAMS,
        path_shipment: false,
    },
    Operation {
        method: "post",
        path: "/shipments",
        summary: "Create a shipment and, by default, capture its amount",
        body: Some(create_shipment::FIELDS),
        query: &[],
        path_shipment: false,
    },
    Operation {
        method: "get",
        path: "/shipments",
        summary: "List shipments (by default good to go, not shipped)",
        body: None,
        query: shipments::LIST_PARAMS,
        path_shipment: false,
    },
    Operation {
        method: "get",
        path: "/shipments/{shipment}",
        summary: "One shipment",
        body: None,
        query: shipments::GET_PARAMS,
        path_shipment: true,
    },
    Operation {
        method: "put",
        path: "/shipments/{shipment}",
        summary: "Update an uncaptured shipment's lines, or good to go",
        body: Some(shipments::UPDATE_FIELDS),
        query: &[],
        path_shipment: true,
    },
    Operation {
        method: "delete",
        path: "/shipments/{shipment}",
        summary: "Delete an uncaptured shipment, releasing its units",
        body: None,
        query: shipments::DELETE_PARAMS,
        path_shipment: true,
    },
    Operation {
        method: "put",
        path: "/shipment",
        summary: "Complete a shipment: capture, good to go, shipped, tracking",
        body: Some(complete_shipment::COMPLETE_FIELDS),
        query: &[],
        path_shipment: false,
    },
    Operation {
        method: "put",
        path: "/capture",
        summary: "Capture an uncaptured shipment",
        body: Some(complete_shipment::CAPTURE_FIELDS),
        query: &[],
        path_shipment: false,
    },
    Operation {
        method: "get",
        path: "/documents/{shipment}/{file}",
        summary: "A shipment's delivery note, proforma or invoice as PDF (API key, or the link's signed token)",
        body: None,
        query: &["token"],
        path_shipment: true,
    },
];

fn id_schema() -> Value {
    json!({"oneOf": [{"type": "integer", "minimum": 1}, {"type": "string", "pattern": "^[0-9]{1,18}$"}]})
}

fn flag_schema() -> Value {
    json!({"oneOf": [{"type": "boolean"}, {"type": "integer", "enum": [0, 1]}, {"type": "string", "enum": ["true", "false", "1", "0"]}]})
}

fn amount_schema() -> Value {
    json!({"oneOf": [{"type": "number", "minimum": 0}, {"type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?$"}]})
}

fn text(max: usize) -> Value {
    json!({"type": "string", "maxLength": max})
}

/// The schema of a field, by name: the names are Centra's and mean the same in every call.
fn field_schema(name: &str) -> Value {
    match name {
        "order" | "customer_id" => id_schema(),
        "gtg"
        | "capture"
        | "shipped"
        | "sendEmail"
        | "deductPreviousCosts"
        | "createAlways"
        | "xml" => flag_schema(),
        "packages" | "qty" => {
            json!({"oneOf": [{"type": "integer", "minimum": 0, "maximum": 2147483647}, {"type": "string", "pattern": "^[0-9]{1,10}$"}]})
        }
        "products" => {
            json!({"type": "object", "description": "lineId -> quantity (create, update) or product lines (import)"})
        }
        "shipment" => json!({"type": "string", "pattern": "^[0-9]+-[0-9]+$", "example": "83651-1"}),
        "internalComment" => text(4000),
        "currency" => json!({"type": "string", "pattern": "^[A-Z]{3}$"}),
        "shippingValue" | "price" | "amount" => amount_schema(),
        // The nested address holds a field of the same name: its fields are all plain text.
        "address" => {
            let properties: Map<String, Value> = import_order::ADDRESS_FIELDS
                .iter()
                .map(|f| ((*f).to_owned(), text(255)))
                .collect();
            json!({"type": "object", "additionalProperties": false, "properties": properties})
        }
        "payment" => object_schema(
            import_order::PAYMENT_FIELDS,
            &["provider", "reference", "amount"],
        ),
        _ => text(255),
    }
}

fn object_schema(fields: &[&str], required: &[&str]) -> Value {
    let properties: Map<String, Value> = fields
        .iter()
        .map(|f| ((*f).to_owned(), field_schema(f)))
        .collect();
    json!({"type": "object", "additionalProperties": false, "properties": properties, "required": required})
}

fn required_fields(path: &str) -> &'static [&'static str] {
    match path {
        "/order" => &["currency", "email", "products"],
        "/shipments" => &["order", "products"],
        "/shipment" | "/capture" => &["shipment"],
        _ => &[],
    }
}

const RESPONSES: &[(&str, &str)] = &[
    ("200", "`status: ok`, or `status: no` with Centra's `msg` for a refusal that depends on stored state"),
    ("400", "invalid request, naming the field"),
    ("401", "no valid API key"),
    ("409", "the same idempotency key is in flight, or the shipment's capture is"),
    ("413", "body too large"),
    ("415", "body is not JSON"),
    ("422", "idempotency key reused with a different request"),
    ("503", "capture outcome unknown, or storage busy: retry"),
];

fn answer(description: &str) -> Value {
    json!({
        "description": description,
        "content": {
            "application/json": {"schema": {"type": "object", "required": ["status"], "properties": {"status": {"type": "string", "enum": ["ok", "no"]}, "msg": {"type": "string"}}}},
            "application/xml": {"schema": {"type": "string"}}
        }
    })
}

/// The document for a server whose calls are under `base`.
pub fn document(base: &str) -> Value {
    let mut paths = Map::new();
    for op in OPERATIONS {
        let mut parameters: Vec<Value> = op
            .query
            .iter()
            .map(|name| {
                let schema = match *name {
                    "newer_than" | "older_than" => {
                        json!({"type": "string", "example": "2024-01-31 12:00:00"})
                    }
                    "status" => {
                        json!({"type": "string", "enum": ["goodtogo", "inprogress", "completed"]})
                    }
                    "xml" => json!({"type": "string", "enum": ["1", "0", "true", "false"]}),
                    "limit" | "offset" | "order" | "customer_id" => {
                        json!({"type": "integer", "minimum": 0})
                    }
                    _ => json!({"type": "string"}),
                };
                json!({"name": name, "in": "query", "required": false, "schema": schema})
            })
            .collect();
        if op.path_shipment {
            parameters.push(json!({"name": "shipment", "in": "path", "required": true, "schema": field_schema("shipment")}));
        }
        if op.path.contains("{file}") {
            parameters.push(json!({"name": "file", "in": "path", "required": true, "schema": {"type": "string", "enum": ["delivery-note.pdf", "proforma.pdf", "invoice.pdf"]}}));
        }
        parameters.push(json!({"name": "Idempotency-Key", "in": "header", "required": false, "schema": {"type": "string", "minLength": 1, "maxLength": 255}}));
        let mut responses = Map::new();
        for (status, description) in RESPONSES {
            responses.insert((*status).to_owned(), answer(description));
        }
        let mut operation = Map::new();
        operation.insert("summary".into(), op.summary.into());
        operation.insert(
            "operationId".into(),
            format!("{}{}", op.method, op.path.replace(['/', '{', '}'], "_")).into(),
        );
        operation.insert("security".into(), json!([{"apiKey": []}]));
        operation.insert("parameters".into(), Value::Array(parameters));
        operation.insert("responses".into(), Value::Object(responses));
        let mut operation = Value::Object(operation);
        if let Some(fields) = op.body {
            operation["requestBody"] = json!({
                "required": true,
                "content": {"application/json": {"schema": object_schema(fields, required_fields(op.path))}}
            });
        }
        let path = format!("{base}{}", op.path);
        paths
            .entry(path)
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("path item is an object")
            .insert(op.method.to_owned(), operation);
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Consign",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Centra's Order API shipment workflow: import orders, create, list, update, complete, capture and delete shipments."
        },
        "components": {"securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": "API-Authorization"}}},
        "paths": paths
    })
}
