//! The typed HTTP edge: request types built from Centra-lenient values, and the extractors
//! that read them. One extractor reads every JSON body (its size, its content type, strict
//! parsing, the `xml` flag) and one every query string; both answer a bad request with an
//! [`ApiError`] that names the field, so handlers receive only well-formed requests.

pub mod lenient;
pub mod query_values;
pub mod requests;

use std::borrow::Cow;
use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header::HeaderMap;
use actix_web::web::{Bytes, BytesMut};
use actix_web::{web, FromRequest, HttpRequest};
use serde::de::{self, DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::ApiState;
use lenient::{positive_id, shown, MISSING};
use requests::Request;

/// A request body of type `T`, with the answer format it asked for and what an error echoes.
pub struct Body<T> {
    /// The request.
    pub request: T,
    /// Whether the answer should be XML.
    pub xml: bool,
    echo: Map<String, Value>,
}

impl<T> Body<T> {
    /// `error` answered in the request's format, echoing what the request named.
    pub fn refuse(&self, error: impl Into<ApiError>) -> ApiError {
        error.into().answered(self.xml, self.echo.clone())
    }
}

impl<T: Request + 'static> FromRequest for Body<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let request = request.clone();
        let payload = payload.take();
        Box::pin(async move {
            let bytes = read_body(&request, payload).await?;
            let object = parse_object(&bytes)?;
            let xml = wants_xml(&object);
            let echo = echo_of(&object, T::ECHO);
            // Centra's writes take every field in the body: a query parameter is unknown here,
            // refused as in the body, never silently ignored.
            parse_query::<NoParameters>(request.query_string())
                .map_err(|error| error.answered(xml, echo.clone()))?;
            let value = Value::Object(object);
            match typed::<T>(&value) {
                Ok(typed) => Ok(Body {
                    request: typed,
                    xml,
                    echo,
                }),
                Err(error) => Err(refusal(error, "field").answered(xml, echo)),
            }
        })
    }
}

/// The query of a request whose fields are all in its body: none.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoParameters {}

/// A query string of type `T`: known parameters only, each at most once. Errors are answered
/// in XML when the query asks for it with a valid flag, and in JSON otherwise (the `xml` flag
/// itself may be what is wrong).
pub struct Params<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for Params<T> {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let query = request.query_string();
        std::future::ready(
            parse_query(query)
                .map(Params)
                .map_err(|error| error.answered(query_asks_for_xml(query), Map::new())),
        )
    }
}

/// Whether a query asks for XML with one valid flag (`xml=1` or `xml=true`).
fn query_asks_for_xml(query: &str) -> bool {
    let mut flags = form_urlencoded::parse(query.as_bytes()).filter(|(name, _)| name == "xml");
    matches!((flags.next(), flags.next()), (Some((_, value)), None) if value == "1" || value == "true")
}

/// Parses a query string into `T`, refusing unknown and repeated parameters.
pub fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let mut params = Map::new();
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        if params
            .insert(name.to_string(), Value::String(value.into_owned()))
            .is_some()
        {
            return Err(ApiError::BadRequest(format!(
                "parameter {} given more than once",
                shown(&name)
            )));
        }
    }
    typed(&Value::Object(params)).map_err(|error| refusal(error, "parameter"))
}

/// `T` from a parsed value. The path to a refused value is tracked only when there is one to
/// report: the value is read again, tracking it (tracking every key of every request cost an
/// allocation per field). Reading is deterministic, so the second read refuses the same value.
fn typed<T: DeserializeOwned>(
    value: &Value,
) -> Result<T, serde_path_to_error::Error<serde_json::Error>> {
    T::deserialize(value).or_else(|_| serde_path_to_error::deserialize(value))
}

/// A refused value as the message a client reads: `missing field order`, `unknown field
/// "x"`, `field products.17: must be at least 1` (`noun` is `field` or `parameter`).
fn refusal(error: serde_path_to_error::Error<serde_json::Error>, noun: &str) -> ApiError {
    let message = error.inner().to_string();
    let segments: Vec<&serde_path_to_error::Segment> = error.path().iter().collect();
    let quoted = |lead: &str| {
        message
            .strip_prefix(lead)
            .and_then(|rest| rest.split_once('`'))
            .map(|(name, _)| name.to_owned())
    };
    let text = if let Some(name) = quoted("unknown field `") {
        // The path usually ends with the unknown key itself: name it under its parent.
        let named = matches!(segments.last(),
            Some(serde_path_to_error::Segment::Map { key }) if *key == name);
        let parent = path_of(&segments[..segments.len() - usize::from(named)]);
        format!("unknown {noun} {}{}", prefix(&parent), shown(&name))
    } else if let Some(name) = quoted("missing field `") {
        format!("missing {noun} {}{name}", prefix(&path_of(&segments)))
    } else if message == MISSING {
        format!("missing {noun} {}", path_of(&segments))
    } else {
        format!("{noun} {}: {message}", path_of(&segments))
    };
    ApiError::BadRequest(text)
}

/// `products[0].price`, `products.17`; empty at the top level.
fn path_of(segments: &[&serde_path_to_error::Segment]) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in segments {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => out.push_str(if out.is_empty() { "?" } else { ".?" }),
        }
    }
    out
}

fn prefix(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!("{path}.")
    }
}

/// Reads the body within the configured limit, refusing non-JSON content types.
pub async fn read_body(request: &HttpRequest, payload: Payload) -> Result<Bytes, ApiError> {
    let limit = request
        .app_data::<web::Data<ApiState>>()
        .map_or(64 * 1024, |state| state.settings.max_body);
    if let Some(content_type) = request.headers().get("content-type") {
        let essence = content_type
            .to_str()
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim();
        if !essence.eq_ignore_ascii_case("application/json") {
            return Err(ApiError::UnsupportedMediaType);
        }
    }
    read_within(request.headers(), payload, limit).await
}

/// The body, at most `limit` bytes: 413 when the declared length or what arrives is past it,
/// 400 when it cannot be read. Every reader of a body goes through here, so a body too large
/// gets the same answer whichever part of the service reads it first.
pub async fn read_within(
    headers: &HeaderMap,
    payload: Payload,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let declared = headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::TooLarge(limit));
    }
    collect_within(payload, limit).await
}

/// The body's chunks, together at most `limit` bytes (413 past it, however the body is sent).
///
/// actix's `to_bytes_limited` set aside 32 KiB for every body (it is never told the length), a
/// large block the allocator carves out and merges back on every request. Here the buffer grows
/// with what arrives: a body of a few hundred bytes in one chunk is one allocation of its size,
/// and a client that stalls holds only what it sent.
async fn collect_within(mut payload: Payload, limit: usize) -> Result<Bytes, ApiError> {
    use futures_core::Stream;
    let mut body = BytesMut::new();
    while let Some(chunk) = std::future::poll_fn(|cx| Pin::new(&mut payload).poll_next(cx)).await {
        let chunk =
            chunk.map_err(|e| ApiError::BadRequest(format!("could not read the body: {e}")))?;
        if body.len().saturating_add(chunk.len()) > limit {
            return Err(ApiError::TooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Parses a JSON object body, refusing duplicated keys at any depth.
pub fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::BadRequest(
            "request body is empty; expected a JSON object".into(),
        ));
    }
    let malformed = |e: serde_json::Error| ApiError::BadRequest(format!("malformed JSON: {e}"));
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    UniqueKeys::deserialize(&mut deserializer)
        .and_then(|_| deserializer.end())
        .map_err(malformed)?;
    match serde_json::from_slice(bytes).map_err(malformed)? {
        Value::Object(map) => Ok(map),
        _ => Err(ApiError::BadRequest(
            "request body must be a JSON object".into(),
        )),
    }
}

/// Walks a JSON document refusing an object that names a key twice (serde_json would let the
/// last one win silently). Scalars are skipped; exact numbers arrive as one-key maps, which a
/// single key never trips.
struct UniqueKeys;

impl<'de> Deserialize<'de> for UniqueKeys {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UniqueKeys)
    }
}

impl<'de> Visitor<'de> for UniqueKeys {
    type Value = UniqueKeys;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_unit<E>(self) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self, A::Error> {
        while seq.next_element::<UniqueKeys>()?.is_some() {}
        Ok(self)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self, A::Error> {
        // Keys borrowed from the body where they can be (no escapes), compared one by one while
        // the object is small, as requests' objects are: no allocation or hashing per key. A
        // large object is checked through a set, so no body costs quadratic time.
        const SCANNED: usize = 16;
        let mut keys: Vec<Cow<'de, str>> = Vec::new();
        let mut set: Option<HashSet<Cow<'de, str>>> = None;
        while let Some(BodyKey(key)) = map.next_key::<BodyKey<'de>>()? {
            let seen = match &mut set {
                Some(set) => !set.insert(key.clone()),
                None if keys.len() < SCANNED => {
                    let seen = keys.contains(&key);
                    keys.push(key.clone());
                    seen
                }
                None => {
                    let mut all: HashSet<Cow<'de, str>> = keys.drain(..).collect();
                    let seen = !all.insert(key.clone());
                    set = Some(all);
                    seen
                }
            };
            if seen {
                return Err(de::Error::custom(format!("duplicated key {key:?}")));
            }
            map.next_value::<UniqueKeys>()?;
        }
        Ok(self)
    }
}

/// An object's key, borrowed from the body unless it had to be unescaped.
struct BodyKey<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for BodyKey<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(BodyKeyVisitor)
    }
}

struct BodyKeyVisitor;

impl<'de> Visitor<'de> for BodyKeyVisitor {
    type Value = BodyKey<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object key")
    }
    fn visit_borrowed_str<E>(self, key: &'de str) -> Result<Self::Value, E> {
        Ok(BodyKey(Cow::Borrowed(key)))
    }
    fn visit_str<E>(self, key: &str) -> Result<Self::Value, E> {
        Ok(BodyKey(Cow::Owned(key.to_owned())))
    }
    fn visit_string<E>(self, key: String) -> Result<Self::Value, E> {
        Ok(BodyKey(Cow::Owned(key)))
    }
}

/// Whether the body asks for an XML answer (read leniently: a bad flag is refused by the
/// request type, and that refusal is then answered as asked where it can be).
fn wants_xml(map: &Map<String, Value>) -> bool {
    match map.get("xml") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true" || s == "1",
        Some(Value::Number(n)) => n.to_string() == "1",
        _ => false,
    }
}

/// What an error echoes: `order` as a number when it is an id (as sent when it is not), other
/// names as sent; absent and null values are left out.
fn echo_of(map: &Map<String, Value>, names: &[&str]) -> Map<String, Value> {
    names
        .iter()
        .filter_map(|name| {
            let value = map.get(*name).filter(|v| !v.is_null())?;
            let shown = match (*name, positive_id(value)) {
                ("order", Some(id)) => Value::from(id),
                _ => value.clone(),
            };
            Some(((*name).to_owned(), shown))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::lenient::*;
    use super::requests::*;
    use super::*;

    fn body<T: DeserializeOwned>(json: &str) -> Result<T, String> {
        let object = parse_object(json.as_bytes()).map_err(|e| e.to_string())?;
        typed(&Value::Object(object)).map_err(|e| refusal(e, "field").to_string())
    }

    #[test]
    fn duplicated_keys_are_refused_at_any_depth() {
        assert!(parse_object(br#"{"order":1,"order":2}"#).is_err());
        assert!(parse_object(br#"{"products":{"17":1,"17":2}}"#).is_err());
        assert!(parse_object(br#"{"a":[{"b":1,"b":1}]}"#).is_err());
        assert!(parse_object(br#"{"products":{"17":1,"18":2}}"#).is_ok());
        // Exact numbers reach the walker as one-key maps: never a false duplicate.
        assert!(parse_object(br#"{"a":1.5,"b":[1.25,2.5,3],"c":{"d":1e3}}"#).is_ok());
        // A key written with an escape is the same key.
        assert!(parse_object(br#"{"order":1,"\u006frder":2}"#).is_err());
        // Past the keys compared one by one, the set still finds a duplicate, early or late.
        let object = |keys: &[&str]| {
            let fields: Vec<String> = keys.iter().map(|k| format!("\"{k}\":1")).collect();
            format!("{{{}}}", fields.join(","))
        };
        let many: Vec<String> = (0..40).map(|n| format!("k{n}")).collect();
        let mut keys: Vec<&str> = many.iter().map(String::as_str).collect();
        assert!(parse_object(object(&keys).as_bytes()).is_ok());
        for repeated in ["k3", "k16", "k20", "k39"] {
            keys.push(repeated);
            assert!(
                parse_object(object(&keys).as_bytes()).is_err(),
                "{repeated}"
            );
            keys.pop();
        }
        // The key that moves the keys into the set is checked too, and they all go with it.
        for repeated in ["k0", "k15"] {
            let mut keys: Vec<&str> = many[..16].iter().map(String::as_str).collect();
            keys.push(repeated);
            assert!(
                parse_object(object(&keys).as_bytes()).is_err(),
                "{repeated}"
            );
            keys.pop();
            keys.extend(["k16", repeated]);
            assert!(
                parse_object(object(&keys).as_bytes()).is_err(),
                "{repeated}"
            );
        }
    }

    #[test]
    fn numbers_keep_their_exact_text() {
        let map =
            parse_object(br#"{"price":249.50,"big":123456789012345678901234567890}"#).unwrap();
        assert_eq!(map["price"].to_string(), "249.50");
        assert_eq!(map["big"].to_string(), "123456789012345678901234567890");
    }

    #[test]
    fn ids_and_quantities_refuse_signs_fractions_exponents_and_spaces() {
        for bad in [
            r#"-1"#,
            r#"1.0"#,
            r#"1e3"#,
            r#"" 1""#,
            r#""1 ""#,
            r#""+1""#,
            r#""""#,
            r#"true"#,
            r#"0"#,
            r#"99999999999999999999"#,
        ] {
            let json = format!(r#"{{"order":{bad},"products":{{"1":1}}}}"#);
            let error = body::<CreateShipment>(&json).unwrap_err();
            assert!(error.starts_with("field order: "), "{bad}: {error}");
            let json = format!(r#"{{"order":1,"products":{{"1":{bad}}}}}"#);
            let error = body::<CreateShipment>(&json).unwrap_err();
            assert!(error.starts_with("field products.1: "), "{bad}: {error}");
        }
        let create: CreateShipment = body(r#"{"order":"83651","products":{"17":"2"}}"#).unwrap();
        assert_eq!(create.order, Id(83651));
        assert_eq!(create.products.0[0].quantity, 2);
        let create: CreateShipment = body(r#"{"order":83651,"products":{"17":2}}"#).unwrap();
        assert_eq!(create.order, Id(83651));
    }

    #[test]
    fn flags_accept_centras_spellings_only() {
        let flag_of = |v: &str| {
            body::<CaptureShipment>(&format!(r#"{{"shipment":"1-1","xml":{v}}}"#))
                .map(|c| c.xml.map(|f| f.0))
        };
        assert_eq!(flag_of("true"), Ok(Some(true)));
        assert_eq!(flag_of(r#""0""#), Ok(Some(false)));
        assert_eq!(flag_of("1"), Ok(Some(true)));
        assert_eq!(flag_of("null"), Ok(None));
        for bad in [r#""yes""#, "2", "1.0", "[]"] {
            assert_eq!(
                flag_of(bad),
                Err("field xml: must be true, false, 1 or 0".to_owned()),
                "{bad}"
            );
        }
    }

    #[test]
    fn missing_null_and_unknown_fields_are_named_with_their_path() {
        let error = |json: &str| body::<ImportOrder>(json).unwrap_err();
        let line = r#"{"sku":"A","qty":1,"price":"1.00","vat":"25"}"#;
        assert_eq!(
            error(&format!(r#"{{"email":"a@b","products":[{line}]}}"#)),
            "missing field currency"
        );
        assert_eq!(
            error(&format!(
                r#"{{"currency":null,"email":"a@b","products":[{line}]}}"#
            )),
            "missing field currency"
        );
        assert_eq!(
            error(
                r#"{"currency":"SEK","email":"a@b","products":[{"sku":"A","qty":1,"vat":"25"}]}"#
            ),
            "missing field products[0].price"
        );
        assert_eq!(
            error(&format!(
                r#"{{"currency":"SEK","email":"a@b","products":[{line}],"trackingNumbr":"x"}}"#
            )),
            r#"unknown field "trackingNumbr""#
        );
        assert_eq!(
            error(&format!(
                r#"{{"currency":"SEK","email":"a@b","products":[{line}],"payment":{{"provider":"p","reference":"r","amount":"1","extra":1}}}}"#
            )),
            r#"unknown field payment."extra""#
        );
        let error =
            body::<UpdateShipment>(r#"{"products":{"5":{"qty":1,"colour":"red"}}}"#).unwrap_err();
        assert_eq!(error, r#"unknown field products.5."colour""#);
        let error = body::<CreateShipment>(r#"{"order":1,"products":{"5":null}}"#).unwrap_err();
        assert_eq!(error, "missing field products.5");
    }

    #[test]
    fn products_are_line_ids_with_bounded_counts() {
        let error = |json: &str| body::<CreateShipment>(json).unwrap_err();
        assert_eq!(
            error(r#"{"order":1,"products":{}}"#),
            "field products: must name at least one line"
        );
        assert_eq!(
            error(r#"{"order":1,"products":{"abc":1}}"#),
            r#"field products: key "abc" is not a lineId"#
        );
        assert!(error(r#"{"order":1,"products":[1]}"#).starts_with("field products: "));
        let many: Vec<String> = (1..=1001).map(|i| format!(r#""{i}":1"#)).collect();
        let json = format!(r#"{{"order":1,"products":{{{}}}}}"#, many.join(","));
        assert_eq!(
            error(&json),
            "field products: at most 1000 lines per request"
        );
        let update: UpdateShipment =
            body(r#"{"products":{"5":0,"6":{"serialNumber":"S1","qty":2}}}"#).unwrap();
        let lines = update.products.unwrap().0;
        assert_eq!((lines[0].quantity, lines[1].quantity), (0, 2));
    }

    #[test]
    fn text_refuses_control_characters_and_overlong_values() {
        assert!(check_text("DHL Express", MAX_TEXT, false).is_ok());
        assert!(check_text("a\u{0}b", MAX_TEXT, false).is_err());
        assert!(check_text("a\nb", MAX_TEXT, false).is_err());
        assert!(check_text("a\nb", 4000, true).is_ok());
        assert!(check_text(&"é".repeat(255), MAX_TEXT, false).is_ok());
        assert!(check_text(&"é".repeat(256), MAX_TEXT, false).is_err());
        let error =
            body::<CreateShipment>(r#"{"order":1,"products":{"1":1},"tracking":123}"#).unwrap_err();
        assert_eq!(error, "field tracking: must be a string");
    }

    #[test]
    fn query_strings_refuse_unknown_and_repeated_parameters() {
        let parsed: OrdersQuery = parse_query("limit=5&order=83651&xml=1").unwrap();
        assert_eq!(
            (parsed.limit, parsed.order),
            (Some(Count(5)), Some(Id(83651)))
        );
        let error = |q: &str| parse_query::<OrdersQuery>(q).err().unwrap().to_string();
        assert_eq!(error("status=all"), r#"unknown parameter "status""#);
        assert_eq!(
            error("limit=1&limit=2"),
            r#"parameter "limit" given more than once"#
        );
        assert_eq!(
            error("limit=ten"),
            "parameter limit: must be a whole number"
        );
        assert!(error("newer_than=2024-02-30").starts_with("parameter newer_than: "));
    }

    mod fuzz {
        use proptest::prelude::*;

        use super::*;

        /// JSON-shaped values with the field names and value kinds requests use.
        fn value() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                any::<i64>().prop_map(|n| serde_json::json!(n)),
                any::<f64>()
                    .prop_filter("finite", |f| f.is_finite())
                    .prop_map(|f| serde_json::json!(f)),
                "[ -~]{0,12}".prop_map(Value::String),
                "[0-9]{1,22}".prop_map(Value::String),
            ];
            leaf.prop_recursive(3, 24, 6, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                    prop::collection::btree_map(
                        "order|products|gtg|capture|qty|shipment|xml|[0-9]{1,6}|[a-z]{1,6}",
                        inner,
                        0..5
                    )
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }

        proptest! {
            #[test]
            fn arbitrary_bytes_never_panic_the_body_parser(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
                let _ = parse_object(&bytes);
            }

            #[test]
            fn every_request_type_answers_a_value_or_a_named_400(value in value()) {
                let mut map = Map::new();
                map.insert("order".into(), value.clone());
                map.insert("shipment".into(), value.clone());
                map.insert("products".into(), value);
                let text = serde_json::to_string(&map).unwrap();
                prop_assert!(parse_object(text.as_bytes()).is_ok());
                for outcome in [
                    body::<CreateShipment>(&text).map(|_| ()),
                    body::<CompleteShipment>(&text).map(|_| ()),
                    body::<UpdateShipment>(&text).map(|_| ()),
                    body::<ImportOrder>(&text).map(|_| ()),
                ] {
                    if let Err(error) = outcome {
                        prop_assert!(
                            error.contains("field") || error.contains("must"),
                            "{error}"
                        );
                    }
                }
            }
        }
    }
}
