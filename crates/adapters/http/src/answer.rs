//! Answers: a status and an ordered object of fields, written as JSON or, on request, as XML.

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use serde_json::{Map, Value};

/// What opens every XML answer; [`XML_END`] closes it.
pub(crate) const XML_START: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><response>";
/// What closes every XML answer.
pub(crate) const XML_END: &str = "</response>";
/// The content type of XML answers.
pub(crate) const XML_TYPE: &str = "application/xml; charset=utf-8";
/// The content type of JSON answers.
pub(crate) const JSON_TYPE: &str = "application/json";

/// Whether an answer said `status: ok`; metrics label requests with it.
#[derive(Debug, Clone, Copy)]
pub struct Outcome(pub bool);

/// One answer, before it is written.
#[derive(Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: StatusCode,
    /// The fields, in the order written.
    pub fields: Map<String, Value>,
    xml: bool,
    headers: Vec<(&'static str, &'static str)>,
    retry_after: Option<u64>,
}

impl Answer {
    /// An answer with these fields.
    pub fn new(status: StatusCode, fields: Map<String, Value>) -> Self {
        Answer {
            status,
            fields,
            xml: false,
            headers: Vec::new(),
            retry_after: None,
        }
    }

    /// `{"status":"ok", ...fields}` with 200.
    pub fn ok(fields: impl IntoIterator<Item = (&'static str, Value)>) -> Self {
        let mut map = Map::new();
        map.insert("status".into(), "ok".into());
        for (k, v) in fields {
            map.insert(k.into(), v);
        }
        Answer::new(StatusCode::OK, map)
    }

    /// Write as XML instead of JSON.
    pub fn xml(mut self, xml: bool) -> Self {
        self.xml = xml;
        self
    }

    /// `Retry-After: seconds` (at least 1).
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds.max(1));
        self
    }

    /// Adds a response header.
    pub fn header(mut self, name: &'static str, value: &'static str) -> Self {
        self.headers.push((name, value));
        self
    }

    /// The HTTP response.
    pub fn into_response(self) -> HttpResponse {
        let outcome = Outcome(self.fields.get("status").and_then(Value::as_str) == Some("ok"));
        let mut response = HttpResponse::build(self.status);
        response.extensions_mut().insert(outcome);
        for (name, value) in &self.headers {
            response.insert_header((*name, *value));
        }
        if let Some(seconds) = self.retry_after {
            response.insert_header(("Retry-After", seconds.to_string()));
        }
        let object = Value::Object(self.fields);
        if self.xml {
            let mut out = String::from(XML_START);
            write_xml_children(&object, &mut out);
            out.push_str(XML_END);
            response.content_type(XML_TYPE).body(out)
        } else {
            // Straight into bytes: `to_string` goes through `Display`, a formatter per write.
            let mut body = Vec::with_capacity(1024);
            if serde_json::to_writer(&mut body, &object).is_err() {
                // Unreachable (a `Value`'s keys are strings and a `Vec` grows), but never half a
                // body, and no panic: `to_string` would panic on the same error.
                body = br#"{"status":"no","msg":"the answer could not be written"}"#.to_vec();
            }
            response.content_type(JSON_TYPE).body(body)
        }
    }
}

impl actix_web::Responder for Answer {
    type Body = actix_web::body::BoxBody;

    fn respond_to(self, _: &actix_web::HttpRequest) -> HttpResponse {
        self.into_response()
    }
}

/// Objects become one element per field, arrays repeated `<item>`s, null an empty element.
pub(crate) fn write_xml_children(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let name = element_name(key);
                out.push('<');
                out.push_str(&name);
                out.push('>');
                write_xml_children(child, out);
                out.push_str("</");
                out.push_str(&name);
                out.push('>');
            }
        }
        Value::Array(items) => {
            for item in items {
                out.push_str("<item>");
                write_xml_children(item, out);
                out.push_str("</item>");
            }
        }
        Value::Null => {}
        Value::Bool(flag) => out.push(if *flag { '1' } else { '0' }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => escape_xml(s, out),
    }
}

/// Our answers use fixed field names; anything else is made a safe name rather than trusted.
fn element_name(key: &str) -> String {
    let mut name: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if !name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        name.insert(0, '_');
    }
    name
}

fn escape_xml(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 cannot carry at all are dropped.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn xml_of(value: Value) -> String {
        let mut out = String::new();
        write_xml_children(&value, &mut out);
        out
    }

    #[test]
    fn writes_fields_items_flags_and_nulls_as_the_api_says() {
        let xml = xml_of(
            json!({"status":"ok","shipments":[{"shipmentId":"83651-1","gtg":true,"products":[{"lineId":"17","qty":1}]}],"invoice":null}),
        );
        assert_eq!(
            xml,
            "<status>ok</status><shipments><item><shipmentId>83651-1</shipmentId><gtg>1</gtg><products><item><lineId>17</lineId><qty>1</qty></item></products></item></shipments><invoice></invoice>"
        );
    }

    #[test]
    fn escapes_markup_and_drops_what_xml_cannot_carry() {
        let xml = xml_of(json!({"msg":"<a href='x'>&\"\u{1}</a>"}));
        assert_eq!(
            xml,
            "<msg>&lt;a href=&apos;x&apos;&gt;&amp;&quot;&lt;/a&gt;</msg>"
        );
        assert_eq!(xml_of(json!({"1bad key":"v"})), "<_1bad_key>v</_1bad_key>");
    }
}
