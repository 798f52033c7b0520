//! Centra-lenient values, one newtype each: ids and quantities as JSON numbers or digit
//! strings, flags as `true/false/1/0` (or those as strings), exact decimals as numbers or
//! strings, bounded text. Each reads any JSON value through `serde_json::Value` (so exact
//! numbers keep their text) and refuses anything else with the message a client reads; its
//! OpenAPI schema says the same, so the document cannot drift from the parser.

use std::borrow::Cow;

use consign_domain::{Currency, LineId, Money, MoneyError, ShipmentId, ShipmentLine, TaxRate};
use serde::de::{self, Deserializer};
use serde::Deserialize;
use serde_json::Value;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

/// Largest quantity or count accepted (2^31 - 1).
pub const MAX_QUANTITY: u32 = i32::MAX as u32;
/// Longest ordinary text field, in characters.
pub const MAX_TEXT: usize = 255;
/// Longest internal comment, in characters.
pub const MAX_COMMENT: usize = 4000;
/// Most product lines one request may name.
pub const MAX_LINES: usize = 1000;

/// What a required value that is `null` reports; the edge turns it into "missing field X".
pub(crate) const MISSING: &str = "\u{0}missing";

fn read<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
    let value = Value::deserialize(deserializer)?;
    if value.is_null() {
        return Err(de::Error::custom(MISSING));
    }
    Ok(value)
}

/// ASCII digits to a number, refusing everything else and anything that overflows.
pub fn parse_digits(text: &str) -> Result<u64, &'static str> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err("must be a whole number");
    }
    text.parse::<u64>().map_err(|_| "is too large")
}

/// Digits only, from a JSON integer or a string: no sign, fraction, exponent or space.
pub fn whole_number(value: &Value) -> Result<u64, &'static str> {
    match value {
        Value::Number(n) => parse_digits(&n.to_string()),
        Value::String(s) => parse_digits(s),
        _ => Err("must be a whole number"),
    }
}

/// A positive id, when `value` is one (how errors echo the `order` a request named).
pub fn positive_id(value: &Value) -> Option<i64> {
    whole_number(value)
        .ok()
        .and_then(|n| i64::try_from(n).ok())
        .filter(|n| *n >= 1)
}

fn schema(builder: impl Into<RefOr<Schema>>) -> RefOr<Schema> {
    builder.into()
}

fn one_of(items: impl IntoIterator<Item = RefOr<Schema>>) -> RefOr<Schema> {
    items
        .into_iter()
        .fold(OneOfBuilder::new(), OneOfBuilder::item)
        .into()
}

fn digits_or_integer(minimum: u64, maximum: Option<u64>, digits: &str) -> RefOr<Schema> {
    one_of([
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(minimum as f64))
            .maximum(maximum.map(|m| m as f64))
            .into(),
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(format!("^[0-9]{{{digits}}}$")))
            .into(),
    ])
}

macro_rules! schema_named {
    ($type:ty, $name:literal, $schema:expr) => {
        impl PartialSchema for $type {
            fn schema() -> RefOr<Schema> {
                $schema
            }
        }
        impl ToSchema for $type {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed($name)
            }
        }
    };
}

/// A positive id (`order`, `customer_id`): a JSON integer or a string of digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Id(pub i64);

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let n = whole_number(&read(deserializer)?).map_err(de::Error::custom)?;
        match i64::try_from(n) {
            Ok(id) if id >= 1 => Ok(Id(id)),
            _ => Err(de::Error::custom("must be a positive id")),
        }
    }
}
// Up to 19 digits, as many as i64::MAX has; a larger value is refused by the parse above.
schema_named!(Id, "Id", digits_or_integer(1, None, "1,19"));

/// A flag: `true/false/1/0/"true"/"false"/"1"/"0"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flag(pub bool);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match read(deserializer)? {
            Value::Bool(b) => Ok(Flag(b)),
            Value::Number(n) if n.to_string() == "1" => Ok(Flag(true)),
            Value::Number(n) if n.to_string() == "0" => Ok(Flag(false)),
            Value::String(s) if s == "true" || s == "1" => Ok(Flag(true)),
            Value::String(s) if s == "false" || s == "0" => Ok(Flag(false)),
            _ => Err(de::Error::custom("must be true, false, 1 or 0")),
        }
    }
}
schema_named!(
    Flag,
    "Flag",
    one_of([
        ObjectBuilder::new().schema_type(Type::Boolean).into(),
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .enum_values(Some([0, 1]))
            .into(),
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(["true", "false", "1", "0"]))
            .into(),
    ])
);

/// Reads an optional flag with its default.
pub fn flag(value: Option<Flag>, default: bool) -> bool {
    value.map_or(default, |f| f.0)
}

fn count_of(value: &Value) -> Result<u32, &'static str> {
    let n = whole_number(value)?;
    u32::try_from(n)
        .ok()
        .filter(|n| *n <= MAX_QUANTITY)
        .ok_or("is too large")
}

/// A count from 0 to 2^31-1 (`packages`, a quantity that may remove a line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count(pub u32);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        count_of(&read(deserializer)?)
            .map(Count)
            .map_err(de::Error::custom)
    }
}
schema_named!(
    Count,
    "Count",
    digits_or_integer(0, Some(u64::from(MAX_QUANTITY)), "1,10")
);

/// A quantity from 1 to 2^31-1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity(pub u32);

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match count_of(&read(deserializer)?).map_err(de::Error::custom)? {
            0 => Err(de::Error::custom("must be at least 1")),
            n => Ok(Quantity(n)),
        }
    }
}
schema_named!(
    Quantity,
    "Quantity",
    digits_or_integer(1, Some(u64::from(MAX_QUANTITY)), "1,10")
);

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

fn text_of<'de, D: Deserializer<'de>>(
    deserializer: D,
    max: usize,
    multiline: bool,
) -> Result<String, D::Error> {
    match read(deserializer)? {
        Value::String(s) => check_text(&s, max, multiline)
            .map(|()| s)
            .map_err(de::Error::custom),
        _ => Err(de::Error::custom("must be a string")),
    }
}

/// Text of at most 255 characters, without control characters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        text_of(deserializer, MAX_TEXT, false).map(Text)
    }
}
schema_named!(
    Text,
    "Text",
    schema(
        ObjectBuilder::new()
            .schema_type(Type::String)
            .max_length(Some(MAX_TEXT))
    )
);

/// Optional text, empty when absent.
pub fn text(value: Option<Text>) -> String {
    value.map(|t| t.0).unwrap_or_default()
}

/// A note that may span lines (TAB, LF and CR allowed), of at most 4000 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment(pub String);

impl<'de> Deserialize<'de> for Comment {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        text_of(deserializer, MAX_COMMENT, true).map(Comment)
    }
}
schema_named!(
    Comment,
    "Comment",
    schema(
        ObjectBuilder::new()
            .schema_type(Type::String)
            .max_length(Some(MAX_COMMENT))
    )
);

/// An ISO 4217 currency code such as `SEK`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CurrencyCode(pub Currency);

impl<'de> Deserialize<'de> for CurrencyCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let invalid = || de::Error::custom("must be an ISO 4217 code such as \"SEK\"");
        match read(deserializer)? {
            Value::String(s) => s.parse().map(CurrencyCode).map_err(|_| invalid()),
            _ => Err(invalid()),
        }
    }
}
schema_named!(
    CurrencyCode,
    "CurrencyCode",
    schema(
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some("^[A-Z]{3}$"))
    )
);

/// An exact, non-negative decimal as a JSON number or a string (`249.50`); read as money once
/// the currency is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Amount(String);

impl Amount {
    /// The amount in `currency`: refused with more decimals than the currency has.
    pub fn money(&self, currency: Currency) -> Result<Money, MoneyError> {
        Money::parse(&self.0, currency)
    }

    /// The decimal as given (read as money where the currency is stored state).
    pub fn text(&self) -> &str {
        &self.0
    }
}

/// A decimal's exact text, from a string or a JSON number; `None` for anything else.
fn decimal_text(value: Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A non-negative decimal as a JSON number up to `maximum`, or as a string of digits.
fn decimal_schema(maximum: Option<f64>) -> RefOr<Schema> {
    one_of([
        ObjectBuilder::new()
            .schema_type(Type::Number)
            .minimum(Some(0.0))
            .maximum(maximum)
            .into(),
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some("^[0-9]+(\\.[0-9]+)?$"))
            .into(),
    ])
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = decimal_text(read(deserializer)?)
            .ok_or_else(|| de::Error::custom("must be an amount such as \"249.50\""))?;
        // The shape is checked here; the decimals once the currency is known.
        let (whole, fraction) = text.split_once('.').unwrap_or((&text, "0"));
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(whole) || !digits(fraction) {
            return Err(de::Error::custom(format!(
                "{}",
                MoneyError::InvalidAmount(text.chars().take(32).collect())
            )));
        }
        Ok(Amount(text))
    }
}
schema_named!(Amount, "Amount", decimal_schema(None));

/// A tax rate in percent, as a decimal string or a JSON number (`25`, `"12.5"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Percent(pub TaxRate);

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = decimal_text(read(deserializer)?)
            .ok_or_else(|| de::Error::custom("must be a percentage such as \"25\""))?;
        text.parse().map(Percent).map_err(|_| {
            de::Error::custom("must be a percentage from 0 to 100 with at most two decimals")
        })
    }
}
schema_named!(Percent, "Percent", decimal_schema(Some(100.0)));

/// A shipment id, `"83651-1"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShipmentRef(pub ShipmentId);

impl<'de> Deserialize<'de> for ShipmentRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match read(deserializer)? {
            Value::String(s) => s
                .parse()
                .map(ShipmentRef)
                .map_err(|_| de::Error::custom("must be a shipment id such as \"83651-1\"")),
            _ => Err(de::Error::custom("must be a string")),
        }
    }
}
schema_named!(
    ShipmentRef,
    "ShipmentRef",
    schema(
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some("^[0-9]+-[0-9]+$"))
            .examples(["83651-1"])
    )
);

/// A `products` key: a lineId as a string of digits.
pub fn line_id_key(key: &str) -> Result<LineId, String> {
    parse_digits(key)
        .ok()
        .and_then(|n| i64::try_from(n).ok())
        .filter(|n| *n >= 1)
        .map(LineId)
        .ok_or_else(|| format!("key {} is not a lineId", shown(key)))
}

/// A field name as shown in a message: quoted, and cut if long.
pub fn shown(name: &str) -> String {
    let cut: String = name.chars().take(64).collect();
    format!("{cut:?}")
}

/// Reads a `{"<lineId>": value, ...}` object with 1 to 1000 entries; each value is read as `V`
/// under its key's path, so a bad one is named `products.<lineId>`.
fn product_map<'de, D, V, F>(
    deserializer: D,
    expecting: &'static str,
    line: F,
) -> Result<Vec<ShipmentLine>, D::Error>
where
    D: Deserializer<'de>,
    V: Deserialize<'de>,
    F: Fn(V) -> u32,
{
    struct Lines<V, F>(F, &'static str, std::marker::PhantomData<V>);
    impl<'de, V: Deserialize<'de>, F: Fn(V) -> u32> de::Visitor<'de> for Lines<V, F> {
        type Value = Vec<ShipmentLine>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.1)
        }
        fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut lines = Vec::new();
            while let Some(key) = map.next_key::<String>()? {
                let line_id = line_id_key(&key).map_err(de::Error::custom)?;
                if lines.len() == MAX_LINES {
                    return Err(de::Error::custom(format!(
                        "at most {MAX_LINES} lines per request"
                    )));
                }
                let quantity = (self.0)(map.next_value::<V>()?);
                lines.push(ShipmentLine { line_id, quantity });
            }
            if lines.is_empty() {
                return Err(de::Error::custom("must name at least one line"));
            }
            Ok(lines)
        }
    }
    deserializer.deserialize_map(Lines(line, expecting, std::marker::PhantomData))
}

fn products_schema(value: RefOr<Schema>, description: &str) -> RefOr<Schema> {
    schema(
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(description))
            .property_names(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some("^[0-9]+$"))
                    .build(),
            ))
            .additional_properties(Some(value))
            .min_properties(Some(1))
            .max_properties(Some(MAX_LINES)),
    )
}

/// Create shipment's `products`: `{"<lineId>": quantity}`, quantities from 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShipProducts(pub Vec<ShipmentLine>);

impl<'de> Deserialize<'de> for ShipProducts {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        product_map(
            deserializer,
            "an object of lineId to quantity",
            |q: Quantity| q.0,
        )
        .map(ShipProducts)
    }
}
schema_named!(
    ShipProducts,
    "ShipProducts",
    products_schema(Quantity::schema(), "lineId -> quantity to ship")
);

/// Update shipment's `products`: `{"<lineId>": qty}` or `{"<lineId>": {"serialNumber": "...",
/// "qty": n}}`; 0 removes a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditProducts(pub Vec<ShipmentLine>);

/// One edited line given as an object (Centra's form with a serial number).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SerialLine {
    /// The unit's serial number (kept by Centra, not by Consign).
    #[allow(dead_code)]
    serial_number: Option<Text>,
    /// The line's new quantity.
    qty: Count,
}

impl<'de> Deserialize<'de> for EditProducts {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        product_map(
            deserializer,
            "an object of lineId to quantity",
            |q: EditedQuantity| q.0,
        )
        .map(EditProducts)
    }
}

/// A quantity, plain or in a `{"serialNumber", "qty"}` object.
struct EditedQuantity(u32);

impl<'de> Deserialize<'de> for EditedQuantity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match read(deserializer)? {
            object @ Value::Object(_) => SerialLine::deserialize(object)
                .map(|l| EditedQuantity(l.qty.0))
                .map_err(de::Error::custom),
            other => Count::deserialize(other)
                .map(|c| EditedQuantity(c.0))
                .map_err(de::Error::custom),
        }
    }
}
schema_named!(
    EditProducts,
    "EditProducts",
    products_schema(
        one_of([
            Count::schema(),
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .property("serialNumber", Text::schema())
                .property("qty", Count::schema())
                .required("qty")
                .additional_properties(Some(
                    utoipa::openapi::schema::AdditionalProperties::<Schema>::FreeForm(false)
                ))
                .into(),
        ]),
        "lineId -> new quantity (0 removes the line), or {serialNumber, qty}"
    )
);
