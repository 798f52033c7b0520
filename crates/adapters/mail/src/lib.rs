//! # consign-mail
//!
//! [`consign_ports::Mailer`] over lettre: [`SmtpMailer`] sends through an SMTP server (TLS and
//! credentials from an `smtp://` / `smtps://` URL); [`FolderMailer`], the default, writes each
//! message as an `.eml` file into a folder, named by its message id, so a resend replaces the
//! file instead of adding one.
#![deny(missing_docs)]

use std::path::PathBuf;

use async_trait::async_trait;
use consign_ports::{Email, MailError, Mailer};
use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// The MIME message of an email: a plain-text and an HTML alternative.
fn message(email: &Email) -> Result<Message, MailError> {
    let from: Mailbox = email
        .from
        .parse()
        .map_err(|e| MailError(format!("sender {:?}: {e}", email.from)))?;
    let to: Mailbox = email
        .to
        .parse()
        .map_err(|e| MailError(format!("recipient {:?}: {e}", email.to)))?;
    Message::builder()
        .from(from)
        .to(to)
        .subject(email.subject.clone())
        .message_id(Some(email.message_id.clone()))
        .multipart(
            MultiPart::alternative()
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(email.text.clone()),
                )
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(email.html.clone()),
                ),
        )
        .map_err(|e| MailError(e.to_string()))
}

/// Sends through an SMTP server.
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl SmtpMailer {
    /// A mailer for `smtp://[user:pass@]host[:port]` (STARTTLS when offered is not forced),
    /// `smtp://host?tls=required` or `smtps://user:pass@host:465` (TLS from the start).
    pub fn from_url(url: &str) -> Result<Self, MailError> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| MailError(format!("SMTP URL: {e}")))?
            .timeout(Some(std::time::Duration::from_secs(20)))
            .build();
        Ok(SmtpMailer { transport })
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, email: &Email) -> Result<(), MailError> {
        let message = message(email)?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| MailError(e.to_string()))
    }
}

/// Writes `.eml` files into a folder (the default: no mail server needed).
pub struct FolderMailer {
    folder: PathBuf,
}

impl FolderMailer {
    /// A mailer writing into `folder` (created when missing).
    pub fn new(folder: impl Into<PathBuf>) -> Self {
        FolderMailer {
            folder: folder.into(),
        }
    }
}

#[async_trait]
impl Mailer for FolderMailer {
    async fn send(&self, email: &Email) -> Result<(), MailError> {
        let bytes = message(email)?.formatted();
        let name: String = email
            .message_id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let folder = self.folder.clone();
        tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&folder)?;
            let path = folder.join(format!("{name}.eml"));
            // Write then rename: a reader never sees half a message.
            let partial = folder.join(format!(".{name}.eml.partial"));
            std::fs::write(&partial, bytes)?;
            std::fs::rename(partial, path)
        })
        .await
        .map_err(|e| MailError(e.to_string()))?
        .map_err(|e| MailError(format!("writing to {}: {e}", self.folder.display())))
    }
}
