//! Values only query strings carry: dates and the shipment status filter.

use std::borrow::Cow;

use consign_ports::{ShipmentStatus, Timestamp};
use serde::de::{self, Deserializer};
use serde::Deserialize;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

/// `YYYY-MM-DD` or `YYYY-MM-DD HH:MM:SS`, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Date(pub Timestamp);

impl<'de> Deserialize<'de> for Date {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        crate::dates::parse(&text)
            .map(Date)
            .ok_or_else(|| de::Error::custom("must be YYYY-MM-DD or YYYY-MM-DD HH:MM:SS"))
    }
}

impl PartialSchema for Date {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .examples(["2024-01-31 12:00:00"])
            .into()
    }
}

impl ToSchema for Date {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Date")
    }
}

/// Centra's `status` filter of `GET shipments`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status(pub ShipmentStatus);

impl<'de> Deserialize<'de> for Status {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match String::deserialize(deserializer)?.as_str() {
            "goodtogo" => Ok(Status(ShipmentStatus::GoodToGo)),
            "inprogress" => Ok(Status(ShipmentStatus::InProgress)),
            "completed" => Ok(Status(ShipmentStatus::Completed)),
            _ => Err(de::Error::custom(
                "must be goodtogo, inprogress or completed",
            )),
        }
    }
}

impl PartialSchema for Status {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(["goodtogo", "inprogress", "completed"]))
            .into()
    }
}

impl ToSchema for Status {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Status")
    }
}
