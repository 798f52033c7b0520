//! A table of malformed and hostile requests: each answers a clear Centra-style error with the
//! right status, never a 500, and leaves the database exactly as it was.

use consign_tests::*;

struct Case {
    name: &'static str,
    method: &'static str,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Option<Vec<u8>>,
    status: u16,
    /// A fragment the message must contain.
    msg: &'static str,
}

fn json_headers() -> Vec<(&'static str, String)> {
    vec![
        ("API-Authorization", TEST_KEY.to_owned()),
        ("Content-Type", "application/json".to_owned()),
    ]
}

/// [`json_headers`] with an `Idempotency-Key`.
fn keyed(key: &str) -> Vec<(&'static str, String)> {
    let mut headers = json_headers();
    headers.push(("Idempotency-Key", key.to_owned()));
    headers
}

fn post(name: &'static str, body: &str, status: u16, msg: &'static str) -> Case {
    Case {
        name,
        method: "POST",
        path: "/shipments".into(),
        headers: json_headers(),
        body: Some(body.as_bytes().to_vec()),
        status,
        msg,
    }
}

fn import(name: &'static str, body: String, msg: &'static str) -> Case {
    Case {
        name,
        method: "POST",
        path: "/order".into(),
        headers: json_headers(),
        body: Some(body.into_bytes()),
        status: 400,
        msg,
    }
}

fn get(name: &'static str, query: &str, msg: &'static str) -> Case {
    Case {
        name,
        method: "GET",
        path: format!("/orders{query}"),
        headers: json_headers(),
        body: None,
        status: 400,
        msg,
    }
}

/// A request to the return calls.
fn returns(
    name: &'static str,
    method: &'static str,
    path: &str,
    body: Option<&str>,
    status: u16,
    msg: &'static str,
) -> Case {
    Case {
        name,
        method,
        path: path.into(),
        headers: json_headers(),
        body: body.map(|b| b.as_bytes().to_vec()),
        status,
        msg,
    }
}

#[test]
fn hostile_requests_get_clear_errors_and_change_nothing() {
    for backend in backends() {
        let app = spawn_app_with(backend, &[("CONSIGN_MAX_BODY", "64KiB")]);
        let ids = app.import(&example_order(70, "auth-70"));
        let l = ids[0].as_str();
        let ok_products = format!(r#"{{"{l}":1}}"#);
        let with = |extra: &str| format!(r#"{{"order":70,"products":{ok_products},{extra}}}"#);
        let order_without = |field: &str| {
            let mut o = example_order(71, "x");
            o.as_object_mut().unwrap().remove(field);
            o.to_string()
        };
        let deep = format!("{}1{}", "[".repeat(300), "]".repeat(300));
        let many_lines: String = (1..=1001)
            .map(|i| format!(r#""{i}":1"#))
            .collect::<Vec<_>>()
            .join(",");
        // Past the 64 KiB limit, sent with and without an Idempotency-Key.
        let oversized = format!(
            r#"{{"order":70,"products":{ok_products},"carrier":"{}"}}"#,
            "x".repeat(70_000)
        )
        .into_bytes();
        let cases = vec![
            post("malformed JSON", r#"{"order": 70,"#, 400, "malformed JSON"),
            post("an array body", "[1,2,3]", 400, "must be a JSON object"),
            post(
                "a string body",
                r#""ship it""#,
                400,
                "must be a JSON object",
            ),
            post("an empty body", "", 400, "empty"),
            post(
                "trailing garbage",
                &format!(r#"{{"order":70,"products":{ok_products}}} x"#),
                400,
                "malformed JSON",
            ),
            Case {
                name: "invalid UTF-8",
                method: "POST",
                path: "/shipments".into(),
                headers: json_headers(),
                body: Some(
                    [
                        &b"{\"order\":70,\"carrier\":\""[..],
                        &[0xff, 0xfe],
                        &b"\"}"[..],
                    ]
                    .concat(),
                ),
                status: 400,
                msg: "malformed JSON",
            },
            post(
                "invalid escape",
                r#"{"order":70,"carrier":"\xff"}"#,
                400,
                "malformed JSON",
            ),
            post(
                "order as a fraction",
                &format!(r#"{{"order":70.0,"products":{ok_products}}}"#),
                400,
                "field order",
            ),
            post(
                "negative order",
                &format!(r#"{{"order":-70,"products":{ok_products}}}"#),
                400,
                "field order",
            ),
            post(
                "order with an exponent",
                &format!(r#"{{"order":7e1,"products":{ok_products}}}"#),
                400,
                "field order",
            ),
            post(
                "order with a space",
                &format!(r#"{{"order":" 70","products":{ok_products}}}"#),
                400,
                "field order",
            ),
            post(
                "order as a boolean",
                &format!(r#"{{"order":true,"products":{ok_products}}}"#),
                400,
                "field order",
            ),
            post(
                "order zero",
                &format!(r#"{{"order":0,"products":{ok_products}}}"#),
                400,
                "field order",
            ),
            post(
                "order beyond 64 bits",
                &format!(r#"{{"order":99999999999999999999,"products":{ok_products}}}"#),
                400,
                "field order",
            ),
            post(
                "missing order",
                &format!(r#"{{"products":{ok_products}}}"#),
                400,
                "missing field order",
            ),
            post(
                "null order",
                &format!(r#"{{"order":null,"products":{ok_products}}}"#),
                400,
                "missing field order",
            ),
            post(
                "missing products",
                r#"{"order":70}"#,
                400,
                "missing field products",
            ),
            post(
                "products as an array",
                r#"{"order":70,"products":[1]}"#,
                400,
                "field products",
            ),
            post(
                "empty products",
                r#"{"order":70,"products":{}}"#,
                400,
                "at least one line",
            ),
            post(
                "zero quantity",
                &format!(r#"{{"order":70,"products":{{"{l}":0}}}}"#),
                400,
                "at least 1",
            ),
            post(
                "negative quantity",
                &format!(r#"{{"order":70,"products":{{"{l}":-1}}}}"#),
                400,
                "whole number",
            ),
            post(
                "fractional quantity",
                &format!(r#"{{"order":70,"products":{{"{l}":1.5}}}}"#),
                400,
                "whole number",
            ),
            post(
                "quantity over 2^31-1",
                &format!(r#"{{"order":70,"products":{{"{l}":2147483648}}}}"#),
                400,
                "too large",
            ),
            post(
                "quantity as words",
                &format!(r#"{{"order":70,"products":{{"{l}":"two"}}}}"#),
                400,
                "whole number",
            ),
            post(
                "quantity null",
                &format!(r#"{{"order":70,"products":{{"{l}":null}}}}"#),
                400,
                "missing field products.",
            ),
            post(
                "lineId that is not digits",
                r#"{"order":70,"products":{"abc":1}}"#,
                400,
                "not a lineId",
            ),
            post(
                "SQL in a lineId",
                r#"{"order":70,"products":{"1; DROP TABLE orders; --":1}}"#,
                400,
                "not a lineId",
            ),
            post(
                "duplicated top-level key",
                &format!(r#"{{"order":70,"order":71,"products":{ok_products}}}"#),
                400,
                "duplicated key",
            ),
            post(
                "duplicated line",
                &format!(r#"{{"order":70,"products":{{"{l}":1,"{l}":1}}}}"#),
                400,
                "duplicated key",
            ),
            post(
                "unknown field",
                &with(r#""trackingNumbr":"JD1""#),
                400,
                "unknown field \"trackingNumbr\"",
            ),
            post(
                "XML in an unknown field",
                &with(r#""<x>&</x>":1,"xml":true"#),
                400,
                "unknown field",
            ),
            post(
                "flag that is not a flag",
                &with(r#""gtg":"yes""#),
                400,
                "field gtg",
            ),
            post("capture 2", &with(r#""capture":2"#), 400, "field capture"),
            post(
                "carrier too long",
                &with(&format!(r#""carrier":"{}""#, "x".repeat(256))),
                400,
                "longer than 255",
            ),
            post(
                "control character in tracking",
                &with(r#""tracking":"JD\u0000001""#),
                400,
                "control characters",
            ),
            post(
                "tracking as a number",
                &with(r#""tracking":123"#),
                400,
                "must be a string",
            ),
            post(
                "negative packages",
                &with(r#""packages":-1"#),
                400,
                "field packages",
            ),
            post(
                "1001 product lines",
                &format!(r#"{{"order":70,"products":{{{many_lines}}}}}"#),
                400,
                "at most 1000",
            ),
            post(
                "nesting 300 deep",
                &with(&format!(r#""carrier":{deep}"#)),
                400,
                "malformed JSON",
            ),
            post(
                "SQL in text on an unknown order",
                r#"{"order":404,"products":{"1":1},"shipped":true,"carrier":"'; DROP TABLE orders; --"}"#,
                200,
                "order does not exist",
            ),
            post(
                "quantity above what is shippable",
                &format!(r#"{{"order":70,"products":{{"{l}":3}}}}"#),
                200,
                "can still be shipped",
            ),
            Case {
                name: "oversized body",
                method: "POST",
                path: "/shipments".into(),
                headers: json_headers(),
                body: Some(oversized.clone()),
                status: 413,
                msg: "larger than",
            },
            Case {
                // Read first by the idempotency layer: the same 413 as without the key.
                name: "oversized body with an Idempotency-Key",
                method: "POST",
                path: "/shipments".into(),
                headers: keyed("oversized-1"),
                body: Some(oversized.clone()),
                status: 413,
                msg: "larger than",
            },
            Case {
                // Past the largest shipment number: no shipment's id, never read as another's.
                name: "shipment number past 2^31 - 1",
                method: "GET",
                path: "/shipments/70-4294967295".into(),
                headers: json_headers(),
                body: None,
                status: 400,
                msg: "must be a shipment id",
            },
            Case {
                name: "DELETE with a body",
                method: "DELETE",
                path: "/shipments/70-1".into(),
                headers: json_headers(),
                body: Some(br#"{"order":70}"#.to_vec()),
                status: 400,
                msg: "takes no body",
            },
            Case {
                name: "DELETE with an oversized body",
                method: "DELETE",
                path: "/shipments/70-1".into(),
                headers: json_headers(),
                body: Some(vec![b' '; 70_000]),
                status: 413,
                msg: "larger than",
            },
            Case {
                name: "form-encoded body",
                method: "POST",
                path: "/shipments".into(),
                headers: vec![
                    ("API-Authorization", TEST_KEY.to_owned()),
                    (
                        "Content-Type",
                        "application/x-www-form-urlencoded".to_owned(),
                    ),
                ],
                body: Some(b"order=70".to_vec()),
                status: 415,
                msg: "Content-Type",
            },
            Case {
                name: "no API key",
                method: "POST",
                path: "/shipments".into(),
                headers: vec![("Content-Type", "application/json".to_owned())],
                body: Some(with("\"gtg\":true").into_bytes()),
                status: 401,
                msg: "unauthorized",
            },
            Case {
                name: "wrong method",
                method: "DELETE",
                path: "/order".into(),
                headers: json_headers(),
                body: None,
                status: 405,
                msg: "method not allowed",
            },
            import(
                "import: price with 3 decimals",
                example_order(71, "x")
                    .to_string()
                    .replace("\"249.50\"", "\"249.505\""),
                "more decimals",
            ),
            import(
                "import: negative price",
                example_order(71, "x")
                    .to_string()
                    .replace("\"249.50\"", "\"-249.50\""),
                "field products[0].price",
            ),
            import(
                "import: lowercase currency",
                example_order(71, "x")
                    .to_string()
                    .replace("\"SEK\"", "\"sek\""),
                "field currency",
            ),
            import(
                "import: missing currency",
                order_without("currency"),
                "missing field currency",
            ),
            import(
                "import: zero quantity",
                example_order(71, "x")
                    .to_string()
                    .replace("\"qty\":1", "\"qty\":0"),
                "at least 1",
            ),
            import(
                "import: unknown payment provider",
                example_order(71, "x")
                    .to_string()
                    .replace("\"sandbox\"", "\"adyen\""),
                "unknown payment provider",
            ),
            // An address no mail can be sent to: refused at the import, where the client can
            // mend it, not found at every confirmation's sending.
            import(
                "import: email without a domain",
                example_order(71, "x")
                    .to_string()
                    .replace("\"anna@example.com\"", "\"anna@\""),
                "field email",
            ),
            import(
                "import: email with a space",
                example_order(71, "x")
                    .to_string()
                    .replace("\"anna@example.com\"", "\"anna svensson@example.com\""),
                "field email",
            ),
            import(
                "import: payment below the total",
                example_order(71, "x")
                    .to_string()
                    .replace("\"747.00\"", "\"700.00\""),
                "does not cover",
            ),
            // Writes take every field in the body: a query parameter is named and refused.
            returns(
                "create shipment: a query parameter",
                "POST",
                "/shipments?bogus=1",
                Some(r#"{"order":71,"products":{"1":1}}"#),
                400,
                "bogus",
            ),
            returns(
                "complete: a query parameter",
                "PUT",
                "/shipment?xml=1",
                Some(r#"{"shipment":"71-1"}"#),
                400,
                "unknown parameter",
            ),
            returns(
                "update return: a query parameter",
                "PUT",
                "/returns/999?completed=true",
                Some(r#"{"completed":true}"#),
                400,
                "unknown parameter",
            ),
            get("list: limit 0", "?limit=0", "parameter limit"),
            get("list: limit words", "?limit=ten", "parameter limit"),
            get(
                "list: unknown parameter",
                "?status=all",
                "unknown parameter",
            ),
            get(
                "list: repeated parameter",
                "?limit=1&limit=2",
                "more than once",
            ),
            get(
                "list: bad date",
                "?newer_than=2024-02-30",
                "parameter newer_than",
            ),
            returns(
                "return: malformed JSON",
                "POST",
                "/return",
                Some(r#"{"shipment":"#),
                400,
                "malformed JSON",
            ),
            returns(
                "return: unknown field",
                "POST",
                "/return",
                Some(r#"{"shipment":"70-1","refundAll":true}"#),
                400,
                "refundAll",
            ),
            returns(
                "return: missing shipment",
                "POST",
                "/return",
                Some(r#"{"products":{"1":1}}"#),
                400,
                "missing field shipment",
            ),
            returns(
                "return: shipment not an id",
                "POST",
                "/return",
                Some(r#"{"shipment":"seventy"}"#),
                400,
                "field shipment",
            ),
            returns(
                "return: negative quantity",
                "POST",
                "/return",
                Some(&format!(r#"{{"shipment":"70-1","products":{{"{l}":-1}}}}"#)),
                400,
                "field products",
            ),
            returns(
                "return: zero quantity",
                "POST",
                "/return",
                Some(&format!(r#"{{"shipment":"70-1","products":{{"{l}":0}}}}"#)),
                400,
                "at least 1",
            ),
            returns(
                "return: negative cost",
                "POST",
                "/return",
                Some(r#"{"shipment":"70-1","handlingCost":"-5"}"#),
                400,
                "field handlingCost",
            ),
            returns(
                "return: refund flag of words",
                "POST",
                "/return",
                Some(r#"{"shipment":"70-1","refund":{"refundPayment":"maybe"}}"#),
                400,
                "field refund.refundPayment",
            ),
            returns(
                "return: refund unknown field",
                "POST",
                "/return",
                Some(r#"{"shipment":"70-1","refund":{"amount":5}}"#),
                400,
                "amount",
            ),
            returns(
                "return: unknown shipment",
                "POST",
                "/return",
                Some(r#"{"shipment":"404-1","refund":{"refundPayment":true}}"#),
                200,
                "shipment does not exist",
            ),
            returns(
                "return: a shipment never created",
                "POST",
                "/return",
                Some(r#"{"shipment":"70-1"}"#),
                200,
                "shipment does not exist",
            ),
            returns(
                "return: createdAt not a date",
                "POST",
                "/return",
                Some(r#"{"shipment":"70-1","createdAt":"yesterday"}"#),
                400,
                "createdAt",
            ),
            returns(
                "return: oversized body",
                "POST",
                "/return",
                Some(&format!(
                    r#"{{"shipment":"70-1","comment":"{}"}}"#,
                    "x".repeat(70_000)
                )),
                413,
                "larger than",
            ),
            returns(
                "update return: id not a number",
                "PUT",
                "/returns/abc",
                Some(r#"{"completed":true}"#),
                400,
                "returnId",
            ),
            returns(
                "update return: unknown return",
                "PUT",
                "/returns/999",
                Some(r#"{"completed":true}"#),
                200,
                "Return with id=999 does not exist",
            ),
            returns(
                "update return: unknown field",
                "PUT",
                "/returns/999",
                Some(r#"{"complete":true}"#),
                400,
                "complete",
            ),
            returns(
                "update return: wrong type",
                "PUT",
                "/returns/999",
                Some(r#"{"completed":"yes please"}"#),
                400,
                "field completed",
            ),
            returns(
                "update return: wrong method",
                "DELETE",
                "/returns/999",
                None,
                405,
                "method not allowed",
            ),
            returns(
                "list returns: limit 101",
                "GET",
                "/returns?limit=101",
                None,
                400,
                "parameter limit",
            ),
            returns(
                "list returns: page 0",
                "GET",
                "/returns?page=0",
                None,
                400,
                "parameter page",
            ),
            returns(
                "list returns: bad shipment",
                "GET",
                "/returns?shipment=x",
                None,
                400,
                "parameter shipment",
            ),
            returns(
                "list returns: unknown parameter",
                "GET",
                "/returns?status=open",
                None,
                400,
                "unknown parameter",
            ),
        ];
        assert!(cases.len() >= 30);
        let before = app.dump();
        for case in &cases {
            let headers: Vec<(&str, &str)> =
                case.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let reply = app.raw(case.method, &case.path, &headers, case.body.as_deref());
            assert_eq!(
                reply.status, case.status,
                "{backend:?} {}: {}",
                case.name, reply.body
            );
            assert_ne!(reply.status, 500);
            let msg = if reply.content_type == "application/xml" {
                // Asked for XML: markup from the request must come back escaped.
                assert!(
                    reply.body.contains("<status>no</status>"),
                    "{}: {}",
                    case.name,
                    reply.body
                );
                assert!(
                    !reply.body.contains("<x>"),
                    "{}: unescaped markup: {}",
                    case.name,
                    reply.body
                );
                let start = reply.body.find("<msg>").map_or(0, |i| i + 5);
                let end = reply.body.find("</msg>").unwrap_or(start);
                reply.body[start..end].to_owned()
            } else {
                let answer = reply.json();
                assert_eq!(answer["status"], "no", "{}: {}", case.name, reply.body);
                answer["msg"].as_str().unwrap_or_default().to_owned()
            };
            assert!(
                !msg.is_empty() && msg.contains(case.msg),
                "{}: msg {msg:?} lacks {:?}",
                case.name,
                case.msg
            );
            assert_eq!(
                app.dump(),
                before,
                "{backend:?} {}: the database changed",
                case.name
            );
        }
        assert_eq!(app.sandbox.captured_minor(), 0);
    }
}

/// Sends `pieces` as one chunked body (no `Content-Length`, each piece its own chunk) over a
/// plain socket, and answers the status and the whole response text.
fn send_chunked(app: &TestApp, path: &str, pieces: &[&[u8]]) -> (u16, String) {
    send_chunked_with(app, path, "", pieces)
}

/// [`send_chunked`] with `headers` (each line ending in CRLF) added to the request's.
fn send_chunked_with(app: &TestApp, path: &str, headers: &str, pieces: &[&[u8]]) -> (u16, String) {
    use std::io::{Read, Write};
    let authority = app.address.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(authority).expect("connects");
    let mut request = format!(
        "POST {}{path} HTTP/1.1\r\nHost: {authority}\r\nAPI-Authorization: {TEST_KEY}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\
         {headers}\r\n",
        app.base
    )
    .into_bytes();
    for piece in pieces {
        request.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        request.extend_from_slice(piece);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    // The server may answer (and close) before the whole of an oversized body is written.
    let _ = stream.write_all(&request);
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, response)
}

#[test]
fn a_chunked_body_is_read_whole_and_refused_past_the_limit() {
    for backend in backends() {
        let app = spawn_app_with(backend, &[("CONSIGN_MAX_BODY", "64KiB")]);
        let ids = app.import(&example_order(72, "auth-72"));
        let before = app.dump();
        // Past the limit with no length declared: 413, as with a declared length, and nothing
        // written.
        let filler = "x".repeat(16_000);
        let oversized =
            format!(r#"{{"order":72,"carrier":"{filler}{filler}{filler}{filler}{filler}"}}"#);
        let (status, response) = send_chunked(
            &app,
            "/shipments",
            &oversized.as_bytes().chunks(8_000).collect::<Vec<_>>(),
        );
        assert_eq!(status, 413, "{backend:?}: {response}");
        assert!(response.contains(r#""status":"no""#), "{response}");
        assert!(response.contains("larger than"), "{response}");
        assert_eq!(app.dump(), before, "{backend:?}: the database changed");
        // Two Idempotency-Keys: refused, whichever the client meant.
        let body = format!(r#"{{"order":72,"products":{{"{}":1}}}}"#, ids[0]);
        let (status, response) = send_chunked_with(
            &app,
            "/shipments",
            "Idempotency-Key: first\r\nIdempotency-Key: second\r\n",
            &[body.as_bytes()],
        );
        assert_eq!(status, 400, "{backend:?} two keys: {response}");
        assert!(response.contains("given more than once"), "{response}");
        assert_eq!(app.dump(), before, "{backend:?}: the database changed");
        // The same with an Idempotency-Key, whose layer reads the body first.
        let (status, response) = send_chunked_with(
            &app,
            "/shipments",
            "Idempotency-Key: chunked-oversized\r\n",
            &oversized.as_bytes().chunks(8_000).collect::<Vec<_>>(),
        );
        assert_eq!(status, 413, "{backend:?} with a key: {response}");
        assert!(response.contains("larger than"), "{response}");
        assert_eq!(app.dump(), before, "{backend:?}: the database changed");
        // The limit itself is allowed, one byte more is not (64 KiB: 65,536 bytes). The body at
        // the limit is read and then refused for its over-long carrier, with 400.
        let at_limit = |size: usize| {
            let frame = r#"{"order":72,"carrier":""}"#;
            format!(
                r#"{{"order":72,"carrier":"{}"}}"#,
                "x".repeat(size - frame.len())
            )
        };
        for (size, expected) in [(65_536, 400), (65_537, 413)] {
            let body = at_limit(size);
            assert_eq!(body.len(), size);
            let (status, response) = send_chunked(
                &app,
                "/shipments",
                &body.as_bytes().chunks(10_000).collect::<Vec<_>>(),
            );
            assert_eq!(status, expected, "{backend:?} {size} bytes: {response}");
        }
        assert_eq!(app.dump(), before, "{backend:?}: the database changed");
        // A body in several chunks is read whole: the shipment is made from all of them.
        let body = format!(r#"{{"order":72,"products":{{"{}":1}},"gtg":true}}"#, ids[0]);
        let (status, response) = send_chunked(
            &app,
            "/shipments",
            &body.as_bytes().chunks(7).collect::<Vec<_>>(),
        );
        assert_eq!(status, 200, "{backend:?}: {response}");
        assert!(response.contains(r#""status":"ok""#), "{response}");
        assert!(response.contains(r#""shipment":"72-1""#), "{response}");
        assert_ne!(
            app.dump(),
            before,
            "{backend:?}: the shipment was not written"
        );
    }
}
