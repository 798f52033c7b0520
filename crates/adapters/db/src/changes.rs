//! How complete-shipment changes that wait for a capture are kept on the capture attempt: a
//! small JSON document private to this adapter.

use consign_ports::{ShipmentChanges, ShippingUpdate};
use serde::{Deserialize, Serialize};

use crate::error::DbError;

#[derive(Serialize, Deserialize)]
struct Stored {
    gtg: bool,
    shipped: bool,
    carrier: Option<String>,
    service: Option<String>,
    packages: Option<u32>,
    tracking: Option<String>,
    return_slip_tracking: Option<String>,
    send_email: Option<bool>,
    internal_comment: Option<String>,
}

pub(crate) fn encode(changes: &ShipmentChanges) -> String {
    let s = &changes.shipping;
    serde_json::to_string(&Stored {
        gtg: changes.gtg,
        shipped: changes.shipped,
        carrier: s.carrier.clone(),
        service: s.service.clone(),
        packages: s.packages,
        tracking: s.tracking.clone(),
        return_slip_tracking: s.return_slip_tracking.clone(),
        send_email: changes.send_email,
        internal_comment: changes.internal_comment.clone(),
    })
    .unwrap_or_default()
}

pub(crate) fn decode(text: &str) -> Result<ShipmentChanges, DbError> {
    let s: Stored = serde_json::from_str(text)
        .map_err(|e| DbError::Corrupt(format!("changes waiting for a capture: {e}")))?;
    Ok(ShipmentChanges {
        gtg: s.gtg,
        shipped: s.shipped,
        shipping: ShippingUpdate {
            carrier: s.carrier,
            service: s.service,
            packages: s.packages,
            tracking: s.tracking,
            return_slip_tracking: s.return_slip_tracking,
        },
        send_email: s.send_email,
        internal_comment: s.internal_comment,
    })
}
