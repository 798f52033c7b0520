//! Shipment documents (delivery note, proforma, invoice) and the shipping-confirmation mail.

use async_trait::async_trait;

use crate::clock::Timestamp;
use crate::records::{OrderView, ShipmentView};

/// Which document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocumentKind {
    /// What is in the parcel: no prices.
    DeliveryNote,
    /// For customs: lines with values, currency and totals.
    Proforma,
    /// Issued once the shipment is captured, numbered without gaps.
    Invoice,
    /// Issued once a return is refunded, numbered without gaps in its own series (`CN-<n>`).
    CreditNote,
}

impl DocumentKind {
    /// The name used in URLs: `delivery-note`, `proforma`, `invoice`.
    pub fn slug(self) -> &'static str {
        match self {
            DocumentKind::DeliveryNote => "delivery-note",
            DocumentKind::Proforma => "proforma",
            DocumentKind::Invoice => "invoice",
            DocumentKind::CreditNote => "credit-note",
        }
    }

    /// Reads a shipment document's slug (a credit note is named by its return as well).
    pub fn from_slug(slug: &str) -> Option<DocumentKind> {
        [
            DocumentKind::DeliveryNote,
            DocumentKind::Proforma,
            DocumentKind::Invoice,
        ]
        .into_iter()
        .find(|k| k.slug() == slug)
    }
}

/// The seller, as printed on documents (store settings).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seller {
    /// Company name.
    pub name: String,
    /// Postal address, one line per entry.
    pub address: Vec<String>,
    /// VAT registration number.
    pub vat_number: String,
    /// Country of origin printed on the proforma, when known.
    pub country_of_origin: String,
}

/// An issued invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invoice {
    /// Sequential number, without gaps.
    pub number: i64,
    /// When it was issued (the capture).
    pub issued_at: Timestamp,
}

/// Everything a document shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentData {
    /// The seller.
    pub seller: Seller,
    /// The order with its lines (its `shipments` may be empty).
    pub order: OrderView,
    /// The shipment.
    pub shipment: ShipmentView,
    /// The invoice, for [`DocumentKind::Invoice`] (and the one a credit note corrects).
    pub invoice: Option<Invoice>,
    /// The refunded return, for [`DocumentKind::CreditNote`].
    pub credit_note: Option<crate::returns::ReturnView>,
}

/// Why a document could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot render the document: {0}")]
pub struct DocumentError(pub String);

/// Renders documents as PDF.
#[cfg_attr(feature = "mocks", mockall::automock)]
pub trait DocumentRenderer: Send + Sync {
    /// The PDF bytes of one document.
    fn render(&self, kind: DocumentKind, data: &DocumentData) -> Result<Vec<u8>, DocumentError>;
}

/// An email to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    /// Sender.
    pub from: String,
    /// Recipient.
    pub to: String,
    /// Subject.
    pub subject: String,
    /// Plain-text part.
    pub text: String,
    /// HTML part.
    pub html: String,
    /// A stable id for this message (the outbox row), so a resend can be recognised.
    pub message_id: String,
}

/// Why a mail was not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailError {
    /// Not sent this time (the mail server down, busy or refusing for now; a file not
    /// written): sent again later.
    #[error("mail not sent: {0}")]
    NotSent(String),
    /// Refused for good: the recipient's address does not parse, or the mail server answered
    /// that the mailbox does not exist or the message is not taken. Sent again, it would be
    /// refused the same way.
    #[error("mail refused: {0}")]
    Refused(String),
}

/// Sends mail.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait Mailer: Send + Sync {
    /// Sends one message.
    async fn send(&self, email: &Email) -> Result<(), MailError>;
}

/// What an outbox message confirms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxKind {
    /// The shipment was sent.
    ShippingConfirmation,
    /// This return of the shipment was refunded.
    RefundConfirmation(consign_domain::ReturnId),
}

/// A confirmation waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    /// Its id.
    pub id: i64,
    /// The shipment it is about.
    pub shipment: consign_domain::ShipmentId,
    /// What it confirms.
    pub kind: OutboxKind,
    /// Sends tried so far.
    pub attempts: u32,
}

/// A confirmation the mail server refused for good, as an operator reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedMessage {
    /// The message, with its shipment and kind.
    pub message: OutboxMessage,
    /// What the mail server answered.
    pub error: String,
    /// When it was refused.
    pub refused_at: crate::Timestamp,
}
