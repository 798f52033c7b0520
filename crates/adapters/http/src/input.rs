//! Reading request bodies: strict JSON (no duplicated keys), only known fields, and Centra's
//! lenient scalars (ids and quantities as numbers or digit strings, flags as 1/0/true/false).

use std::fmt;

use actix_web::web::Bytes;
use actix_web::{web, HttpRequest};
use consign_domain::{Currency, Money, TaxRate};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Number, Value};

use crate::error::ApiError;

/// Largest quantity or count accepted (2^31 - 1).
pub const MAX_QUANTITY: u32 = i32::MAX as u32;
/// Longest ordinary text field, in characters.
pub const MAX_TEXT: usize = 255;

/// Reads the body within `limit` bytes, refusing non-JSON content types.
pub async fn read_body(
    request: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<Bytes, ApiError> {
    if let Some(content_type) = request.headers().get("content-type") {
        let essence = content_type
            .to_str()
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if essence != "application/json" {
            return Err(ApiError::UnsupportedMediaType);
        }
    }
    let declared = request
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::TooLarge(limit));
    }
    match payload.to_bytes_limited(limit).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(_)) => Err(ApiError::TooLarge(limit)),
        Err(e) => Err(ApiError::BadRequest(format!(
            "could not read the body: {e}"
        ))),
    }
}

/// Parses a JSON object body, refusing duplicated keys at any depth.
pub fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::BadRequest(
            "request body is empty; expected a JSON object".into(),
        ));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = StrictValue::deserialize(&mut deserializer)
        .and_then(|v| deserializer.end().map(|()| v))
        .map_err(|e| ApiError::BadRequest(format!("malformed JSON: {e}")))?;
    match value.0 {
        Value::Object(map) => Ok(map),
        _ => Err(ApiError::BadRequest(
            "request body must be a JSON object".into(),
        )),
    }
}

/// A JSON value deserialized without letting a later duplicate key silently win.
struct StrictValue(Value);

/// How serde_json hands an arbitrary-precision number to a visitor.
const NUMBER_TOKEN: &str = "$serde_json::private::Number";

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("invalid number"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictValue(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        let mut first = true;
        while let Some(key) = map.next_key::<String>()? {
            if first && key == NUMBER_TOKEN {
                let text: String = map.next_value()?;
                return text
                    .parse::<Number>()
                    .map(Value::Number)
                    .map_err(de::Error::custom);
            }
            first = false;
            let StrictValue(value) = map.next_value()?;
            if object.insert(key.clone(), value).is_some() {
                return Err(de::Error::custom(format!("duplicated key {key:?}")));
            }
        }
        Ok(Value::Object(object))
    }
}

/// The fields of one JSON object, read by name; `path` names it in messages (`payment.`).
pub struct Fields<'a> {
    map: &'a Map<String, Value>,
    path: String,
}

impl<'a> Fields<'a> {
    /// Wraps an object, refusing any field not in `allowed`.
    pub fn new(
        map: &'a Map<String, Value>,
        path: &str,
        allowed: &[&str],
    ) -> Result<Self, ApiError> {
        if let Some(unknown) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(ApiError::BadRequest(format!(
                "unknown field {}{}",
                path,
                shown(unknown)
            )));
        }
        Ok(Fields {
            map,
            path: path.to_owned(),
        })
    }

    /// The full name of a field, for messages.
    pub fn name(&self, field: &str) -> String {
        format!("{}{field}", self.path)
    }

    fn bad(&self, field: &str, why: &str) -> ApiError {
        ApiError::BadRequest(format!("field {}: {why}", self.name(field)))
    }

    /// The raw value, `None` when absent or null.
    pub fn get(&self, field: &str) -> Option<&'a Value> {
        self.map.get(field).filter(|v| !v.is_null())
    }

    /// A value that must be present: `fields.must("order", fields.id("order")?)`.
    pub fn must<T>(&self, field: &str, value: Option<T>) -> Result<T, ApiError> {
        value.ok_or_else(|| ApiError::BadRequest(format!("missing field {}", self.name(field))))
    }

    /// A non-negative integer given as a JSON integer or a string of ASCII digits.
    pub fn integer(&self, field: &str) -> Result<Option<u64>, ApiError> {
        self.get(field)
            .map(|v| integer_value(v).map_err(|why| self.bad(field, why)))
            .transpose()
    }

    /// A positive id (`order`).
    pub fn id(&self, field: &str) -> Result<Option<i64>, ApiError> {
        match self.integer(field)? {
            None => Ok(None),
            Some(n) if n >= 1 && n <= i64::MAX as u64 => Ok(Some(n as i64)),
            Some(_) => Err(self.bad(field, "must be a positive id")),
        }
    }

    /// A count from 0 to 2^31-1 (`packages`).
    pub fn count(&self, field: &str) -> Result<Option<u32>, ApiError> {
        match self.integer(field)? {
            None => Ok(None),
            Some(n) if n <= u64::from(MAX_QUANTITY) => Ok(Some(n as u32)),
            Some(_) => Err(self.bad(field, "is too large")),
        }
    }

    /// A quantity from 1 to 2^31-1.
    pub fn quantity(&self, field: &str) -> Result<Option<u32>, ApiError> {
        match self.count(field)? {
            Some(0) => Err(self.bad(field, "must be at least 1")),
            other => Ok(other),
        }
    }

    /// A flag: `true/false/1/0/"true"/"false"/"1"/"0"`.
    pub fn flag(&self, field: &str) -> Result<Option<bool>, ApiError> {
        self.get(field)
            .map(|v| match v {
                Value::Bool(b) => Ok(*b),
                Value::Number(n) if n.to_string() == "1" => Ok(true),
                Value::Number(n) if n.to_string() == "0" => Ok(false),
                Value::String(s) if s == "true" || s == "1" => Ok(true),
                Value::String(s) if s == "false" || s == "0" => Ok(false),
                _ => Err(self.bad(field, "must be true, false, 1 or 0")),
            })
            .transpose()
    }

    /// Text of at most `max` characters without control characters.
    pub fn text(&self, field: &str, max: usize) -> Result<Option<String>, ApiError> {
        self.get(field)
            .map(|v| {
                match v {
                    Value::String(s) => check_text(s, max, false).map(|()| s.clone()),
                    _ => Err("must be a string"),
                }
                .map_err(|why| self.bad(field, why))
            })
            .transpose()
    }

    /// Text that may span lines (TAB, LF and CR allowed), of at most `max` characters.
    pub fn multiline(&self, field: &str, max: usize) -> Result<Option<String>, ApiError> {
        self.get(field)
            .map(|v| {
                match v {
                    Value::String(s) => check_text(s, max, true).map(|()| s.clone()),
                    _ => Err("must be a string"),
                }
                .map_err(|why| self.bad(field, why))
            })
            .transpose()
    }

    /// An exact amount in `currency`, as a decimal string or a JSON number.
    pub fn money(&self, field: &str, currency: Currency) -> Result<Option<Money>, ApiError> {
        self.get(field)
            .map(|v| {
                let text = match v {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    _ => return Err(self.bad(field, "must be an amount such as \"249.50\"")),
                };
                Money::parse(&text, currency).map_err(|e| self.bad(field, &e.to_string()))
            })
            .transpose()
    }

    /// A tax rate in percent, as a decimal string or a JSON number.
    pub fn tax_rate(&self, field: &str) -> Result<Option<TaxRate>, ApiError> {
        self.get(field)
            .map(|v| {
                let text = match v {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    _ => return Err(self.bad(field, "must be a percentage such as \"25\"")),
                };
                text.parse::<TaxRate>().map_err(|_| {
                    self.bad(
                        field,
                        "must be a percentage from 0 to 100 with at most two decimals",
                    )
                })
            })
            .transpose()
    }

    /// A nested object.
    pub fn object(&self, field: &str) -> Result<Option<&'a Map<String, Value>>, ApiError> {
        self.get(field)
            .map(|v| {
                v.as_object()
                    .ok_or_else(|| self.bad(field, "must be an object"))
            })
            .transpose()
    }

    /// A nested array.
    pub fn array(&self, field: &str) -> Result<Option<&'a Vec<Value>>, ApiError> {
        self.get(field)
            .map(|v| {
                v.as_array()
                    .ok_or_else(|| self.bad(field, "must be an array"))
            })
            .transpose()
    }
}

/// Digits only: no sign, fraction, exponent or space.
pub fn integer_value(value: &Value) -> Result<u64, &'static str> {
    let text = match value {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => return Err("must be a whole number"),
    };
    parse_digits(&text)
}

/// ASCII digits to a number, refusing everything else and anything that overflows.
pub fn parse_digits(text: &str) -> Result<u64, &'static str> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err("must be a whole number");
    }
    text.parse::<u64>().map_err(|_| "is too large")
}

/// A `products` key: a lineId as a string of digits.
pub fn line_id_key(key: &str) -> Result<i64, ApiError> {
    parse_digits(key)
        .ok()
        .and_then(|n| i64::try_from(n).ok())
        .filter(|n| *n >= 1)
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "field products: key {} is not a lineId",
                shown(key)
            ))
        })
}

/// Length and control-character rules for text fields.
pub fn check_text(text: &str, max: usize, multiline: bool) -> Result<(), &'static str> {
    if text.chars().count() > max {
        return Err(if max == MAX_TEXT {
            "is longer than 255 characters"
        } else {
            "is too long"
        });
    }
    let forbidden = |c: char| {
        (c.is_control() && (c as u32) < 0x80 || c == '\u{7f}')
            && !(multiline && matches!(c, '\t' | '\n' | '\r'))
    };
    if text.chars().any(forbidden) {
        return Err("must not contain control characters");
    }
    Ok(())
}

/// A field name as shown in a message: quoted, and cut if long.
pub fn shown(name: &str) -> String {
    let cut: String = name.chars().take(64).collect();
    format!("{cut:?}")
}

/// Whether the body asks for an XML answer (read leniently: a bad flag is caught later).
pub fn wants_xml(map: &Map<String, Value>) -> bool {
    matches!(map.get("xml"), Some(Value::Bool(true)))
        || matches!(map.get("xml"), Some(Value::String(s)) if s == "true" || s == "1")
        || matches!(map.get("xml"), Some(Value::Number(n)) if n.to_string() == "1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicated_keys_are_refused_at_any_depth() {
        assert!(parse_object(br#"{"order":1,"order":2}"#).is_err());
        assert!(parse_object(br#"{"products":{"17":1,"17":2}}"#).is_err());
        assert!(parse_object(br#"{"products":{"17":1,"18":2}}"#).is_ok());
    }

    #[test]
    fn numbers_keep_their_exact_text() {
        let map =
            parse_object(br#"{"price":249.50,"big":123456789012345678901234567890}"#).unwrap();
        assert_eq!(map["price"].to_string(), "249.50");
        assert_eq!(map["big"].to_string(), "123456789012345678901234567890");
    }

    #[test]
    fn integers_refuse_signs_fractions_exponents_and_spaces() {
        for bad in [
            r#"-1"#, r#"1.0"#, r#"1e3"#, r#"" 1""#, r#""1 ""#, r#""+1""#, r#""""#, r#"true"#,
        ] {
            let body = format!(r#"{{"n":{bad}}}"#);
            let map = parse_object(body.as_bytes()).unwrap();
            let fields = Fields::new(&map, "", &["n"]).unwrap();
            assert!(fields.integer("n").is_err(), "{bad} accepted");
        }
        let map = parse_object(br#"{"a":"83651","b":83651}"#).unwrap();
        let fields = Fields::new(&map, "", &["a", "b"]).unwrap();
        assert_eq!(fields.id("a").unwrap(), Some(83651));
        assert_eq!(fields.id("b").unwrap(), Some(83651));
    }

    #[test]
    fn flags_accept_centras_spellings_only() {
        let map = parse_object(br#"{"a":true,"b":"0","c":1,"d":"yes","e":2,"f":null}"#).unwrap();
        let fields = Fields::new(&map, "", &["a", "b", "c", "d", "e", "f"]).unwrap();
        assert_eq!(fields.flag("a").unwrap(), Some(true));
        assert_eq!(fields.flag("b").unwrap(), Some(false));
        assert_eq!(fields.flag("c").unwrap(), Some(true));
        assert!(fields.flag("d").is_err());
        assert!(fields.flag("e").is_err());
        assert_eq!(fields.flag("f").unwrap(), None);
    }

    #[test]
    fn unknown_fields_are_named() {
        let map = parse_object(br#"{"order":1,"trackingNumbr":"x"}"#).unwrap();
        let error = Fields::new(&map, "", &["order"]).err().unwrap();
        assert_eq!(error.to_string(), r#"unknown field "trackingNumbr""#);
    }

    #[test]
    fn text_refuses_control_characters_and_overlong_values() {
        assert!(check_text("DHL Express", MAX_TEXT, false).is_ok());
        assert!(check_text("a\u{0}b", MAX_TEXT, false).is_err());
        assert!(check_text("a\nb", MAX_TEXT, false).is_err());
        assert!(check_text("a\nb", 4000, true).is_ok());
        assert!(check_text(&"é".repeat(255), MAX_TEXT, false).is_ok());
        assert!(check_text(&"é".repeat(256), MAX_TEXT, false).is_err());
    }

    mod fuzz {
        use proptest::prelude::*;

        use super::super::*;

        /// JSON-shaped values with the field names and value kinds requests use.
        fn value() -> impl Strategy<Value = serde_json::Value> {
            let leaf = prop_oneof![
                Just(serde_json::Value::Null),
                any::<bool>().prop_map(serde_json::Value::Bool),
                any::<i64>().prop_map(|n| serde_json::json!(n)),
                any::<f64>()
                    .prop_filter("finite", |f| f.is_finite())
                    .prop_map(|f| serde_json::json!(f)),
                "[ -~]{0,12}".prop_map(serde_json::Value::String),
                "[0-9]{1,22}".prop_map(serde_json::Value::String),
            ];
            leaf.prop_recursive(3, 24, 6, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
                    prop::collection::btree_map(
                        "order|products|gtg|capture|qty|[0-9]{1,6}|[a-z]{1,6}",
                        inner,
                        0..5
                    )
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
                ]
            })
        }

        proptest! {
            #[test]
            fn arbitrary_bytes_never_panic_the_body_parser(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
                let _ = parse_object(&bytes);
            }

            #[test]
            fn every_field_reader_answers_a_value_or_a_named_400(value in value()) {
                let mut map = Map::new();
                map.insert("f".into(), value);
                let fields = Fields::new(&map, "", &["f"]).unwrap();
                for outcome in [
                    fields.id("f").map(|_| ()),
                    fields.quantity("f").map(|_| ()),
                    fields.count("f").map(|_| ()),
                    fields.flag("f").map(|_| ()),
                    fields.text("f", MAX_TEXT).map(|_| ()),
                    fields.object("f").map(|_| ()),
                    fields.tax_rate("f").map(|_| ()),
                ] {
                    if let Err(error) = outcome {
                        prop_assert!(error.to_string().contains("f"), "{error}");
                    }
                }
                let text = serde_json::to_vec(&map).unwrap();
                prop_assert!(parse_object(&text).is_ok());
            }
        }
    }
}
