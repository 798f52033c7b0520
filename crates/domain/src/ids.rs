//! Identifiers of orders, lines and shipments.

use std::fmt;
use std::str::FromStr;

/// An order's id (Centra's `order`), a positive integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OrderId(pub i64);

/// An order line's id (Centra's `lineId`), unique across all orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LineId(pub i64);

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for LineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A return's id (Centra's `return`): unique across orders, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReturnId(pub i64);

impl fmt::Display for ReturnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A shipment's id: its order and its number within the order, written `"<order>-<n>"`.
///
/// Numbers count from 1 per order and are never reused, not even after a decline or a delete.
///
/// ```
/// use consign_domain::{OrderId, ShipmentId};
/// let id: ShipmentId = "83651-2".parse().unwrap();
/// assert_eq!(id, ShipmentId { order: OrderId(83651), number: 2 });
/// assert_eq!(id.to_string(), "83651-2");
/// assert!("83651".parse::<ShipmentId>().is_err());
/// // Every order id can be addressed, up to the largest (19 digits).
/// let last: ShipmentId = "9223372036854775807-1".parse().unwrap();
/// assert_eq!(last.to_string(), "9223372036854775807-1");
/// assert!("9223372036854775808-1".parse::<ShipmentId>().is_err());
/// // Numbers go up to 2^31 - 1, as Centra's integer ids.
/// assert_eq!("1-2147483647".parse::<ShipmentId>().unwrap().number, ShipmentId::MAX_NUMBER);
/// assert!("1-2147483648".parse::<ShipmentId>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShipmentId {
    /// The order the shipment belongs to.
    pub order: OrderId,
    /// Its number within the order, from 1.
    pub number: u32,
}

impl fmt::Display for ShipmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.order, self.number)
    }
}

impl ShipmentId {
    /// The largest shipment number: Centra's ids are 32-bit signed integers, and so are the
    /// columns that keep them. A larger one is no shipment's, never read as another's.
    pub const MAX_NUMBER: u32 = 2_147_483_647;
}

/// The text was not `"<order>-<n>"` with positive integers (a number at most
/// [`ShipmentId::MAX_NUMBER`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid shipment id")]
pub struct InvalidShipmentId;

impl FromStr for ShipmentId {
    type Err = InvalidShipmentId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (order, number) = s.split_once('-').ok_or(InvalidShipmentId)?;
        // As many digits as the largest order id (19) and shipment number (10) have; the
        // parse below refuses what is still too large.
        let digits = |t: &str, most: usize| {
            !t.is_empty() && t.len() <= most && t.bytes().all(|b| b.is_ascii_digit())
        };
        if !digits(order, 19) || !digits(number, 10) {
            return Err(InvalidShipmentId);
        }
        let order: i64 = order.parse().map_err(|_| InvalidShipmentId)?;
        let number: u32 = number.parse().map_err(|_| InvalidShipmentId)?;
        if order < 1 || !(1..=ShipmentId::MAX_NUMBER).contains(&number) {
            return Err(InvalidShipmentId);
        }
        Ok(ShipmentId {
            order: OrderId(order),
            number,
        })
    }
}
