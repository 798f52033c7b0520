//! The shipment state machine: every state a shipment's money can be in and the events that
//! move it. [`crate::Shipment`]'s methods go through [`ShipmentState::on`] for every change.

/// Where a shipment stands with its money.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShipmentState {
    /// Created with `capture: false`; editable until captured.
    Uncaptured,
    /// Reserved; its capture has been (or is being) asked of the provider.
    CapturePending,
    /// Captured by the provider.
    Captured,
    /// Its capture was declined when it was created: units released, never listed, number not
    /// reused.
    Voided,
    /// Deleted while uncaptured: units released, never listed, number not reused.
    Deleted,
}

/// What happens to a shipment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShipmentEvent {
    /// Its capture was asked of the provider.
    CaptureStarted,
    /// The provider captured it.
    CaptureSucceeded,
    /// The provider definitely declined the capture a shipment was created with.
    CaptureDeclined,
    /// The provider declined the later capture of a shipment created uncaptured: it stays
    /// uncaptured.
    CaptureFailed,
    /// The provider's answer is not known yet: the capture stays pending.
    CaptureUnknown,
    /// It was deleted.
    Delete,
    /// Its lines or quantities were changed.
    EditLines,
    /// Its flags moved forward (good to go, shipped) or carrier details were recorded.
    SetFlags,
}

/// Every state, for tables and tests.
pub const ALL_STATES: [ShipmentState; 5] = [
    ShipmentState::Uncaptured,
    ShipmentState::CapturePending,
    ShipmentState::Captured,
    ShipmentState::Voided,
    ShipmentState::Deleted,
];

/// Every event, for tables and tests.
pub const ALL_EVENTS: [ShipmentEvent; 8] = [
    ShipmentEvent::CaptureStarted,
    ShipmentEvent::CaptureSucceeded,
    ShipmentEvent::CaptureDeclined,
    ShipmentEvent::CaptureFailed,
    ShipmentEvent::CaptureUnknown,
    ShipmentEvent::Delete,
    ShipmentEvent::EditLines,
    ShipmentEvent::SetFlags,
];

/// A transition the state machine does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a {} shipment can not take this change", .from.as_str())]
pub struct IllegalTransition {
    /// The state it was in.
    pub from: ShipmentState,
    /// The event refused.
    pub event: ShipmentEvent,
}

impl ShipmentState {
    /// The state after `event`, or an error for a transition the workflow forbids.
    ///
    /// ```
    /// use consign_domain::{ShipmentEvent::*, ShipmentState::*};
    /// assert_eq!(Uncaptured.on(CaptureStarted), Ok(CapturePending));
    /// assert_eq!(CapturePending.on(CaptureSucceeded), Ok(Captured));
    /// assert_eq!(CapturePending.on(CaptureDeclined), Ok(Voided));
    /// assert_eq!(CapturePending.on(CaptureFailed), Ok(Uncaptured));
    /// assert_eq!(Captured.on(SetFlags), Ok(Captured));
    /// assert!(Captured.on(Delete).is_err());
    /// assert!(CapturePending.on(EditLines).is_err());
    /// ```
    pub fn on(self, event: ShipmentEvent) -> Result<ShipmentState, IllegalTransition> {
        use ShipmentEvent::*;
        use ShipmentState::*;
        match (self, event) {
            (Uncaptured, CaptureStarted) => Ok(CapturePending),
            (Uncaptured, Delete) => Ok(Deleted),
            (Uncaptured, EditLines | SetFlags) => Ok(Uncaptured),
            (CapturePending, CaptureSucceeded) => Ok(Captured),
            (CapturePending, CaptureDeclined) => Ok(Voided),
            (CapturePending, CaptureFailed) => Ok(Uncaptured),
            (CapturePending, CaptureUnknown) => Ok(CapturePending),
            (Captured, SetFlags) => Ok(Captured),
            (from, event) => Err(IllegalTransition { from, event }),
        }
    }

    /// Whether the shipment holds units and is listed (not voided or deleted).
    pub fn is_live(self) -> bool {
        !matches!(self, ShipmentState::Voided | ShipmentState::Deleted)
    }

    /// Whether its units are in capture: its amount is committed against the authorisation.
    pub fn is_in_capture(self) -> bool {
        matches!(
            self,
            ShipmentState::CapturePending | ShipmentState::Captured
        )
    }

    /// The stable name stores keep: `uncaptured`, `pending`, `captured`, `voided`, `deleted`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ShipmentState::Uncaptured => "uncaptured",
            ShipmentState::CapturePending => "pending",
            ShipmentState::Captured => "captured",
            ShipmentState::Voided => "voided",
            ShipmentState::Deleted => "deleted",
        }
    }

    /// Reads a name written by [`ShipmentState::as_str`].
    pub fn from_name(name: &str) -> Option<ShipmentState> {
        ALL_STATES.into_iter().find(|s| s.as_str() == name)
    }
}
