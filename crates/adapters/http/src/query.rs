//! Query strings: only known parameters, each at most once.

use std::collections::HashMap;

use crate::error::ApiError;
use crate::input::{parse_digits, shown};

/// The parameters of one query string.
pub struct Query {
    params: HashMap<String, String>,
}

impl Query {
    /// Parses `query`, refusing unknown and repeated parameters.
    pub fn parse(query: &str, allowed: &[&str]) -> Result<Query, ApiError> {
        let mut params = HashMap::new();
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            if !allowed.contains(&name.as_ref()) {
                return Err(ApiError::BadRequest(format!(
                    "unknown parameter {}",
                    shown(&name)
                )));
            }
            if params.insert(name.to_string(), value.to_string()).is_some() {
                return Err(ApiError::BadRequest(format!(
                    "parameter {} given more than once",
                    shown(&name)
                )));
            }
        }
        Ok(Query { params })
    }

    /// A parameter's text.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    /// A whole number within `range`, or the default when absent.
    pub fn number(
        &self,
        name: &str,
        range: std::ops::RangeInclusive<u64>,
    ) -> Result<Option<u64>, ApiError> {
        self.get(name)
            .map(|text| match parse_digits(text) {
                Ok(n) if range.contains(&n) => Ok(n),
                _ => Err(ApiError::BadRequest(format!(
                    "parameter {name}: must be a whole number from {} to {}",
                    range.start(),
                    range.end()
                ))),
            })
            .transpose()
    }

    /// Centra's `order` filter.
    pub fn order(&self) -> Result<Option<consign_domain::OrderId>, ApiError> {
        Ok(self
            .number("order", 1..=i64::MAX as u64)?
            .map(|n| consign_domain::OrderId(n as i64)))
    }

    /// Centra's `customer_id` filter.
    pub fn customer_id(&self) -> Result<Option<i64>, ApiError> {
        Ok(self
            .number("customer_id", 1..=i64::MAX as u64)?
            .map(|n| n as i64))
    }

    /// `limit` (1 to `max`, `default` when absent) and `offset`.
    pub fn page(&self, max: u64, default: u32) -> Result<(u32, u32), ApiError> {
        let limit = self.number("limit", 1..=max)?.map_or(default, |n| n as u32);
        let offset = self.number("offset", 0..=u64::from(u32::MAX))?.unwrap_or(0) as u32;
        Ok((limit, offset))
    }

    /// A date parameter (`YYYY-MM-DD` or `YYYY-MM-DD HH:MM:SS`, UTC).
    pub fn date(&self, name: &str) -> Result<Option<consign_ports::Timestamp>, ApiError> {
        self.get(name)
            .map(|text| {
                crate::dates::parse(text).ok_or_else(|| {
                    ApiError::BadRequest(format!(
                        "parameter {name}: must be YYYY-MM-DD or YYYY-MM-DD HH:MM:SS"
                    ))
                })
            })
            .transpose()
    }

    /// `xml=1` / `xml=true` (or 0/false).
    pub fn xml(&self) -> Result<bool, ApiError> {
        match self.get("xml") {
            None | Some("0") | Some("false") => Ok(false),
            Some("1") | Some("true") => Ok(true),
            Some(_) => Err(ApiError::BadRequest(
                "parameter xml: must be true, false, 1 or 0".into(),
            )),
        }
    }
}
