//! # consign-mail
//!
//! [`consign_ports::Mailer`] over lettre: [`SmtpMailer`] sends through an SMTP server (TLS and
//! credentials from an `smtp://` / `smtps://` URL); [`FolderMailer`], the default, writes each
//! message as an `.eml` file into a folder, named by its message id, so a resend replaces the
//! file instead of adding one.
#![deny(missing_docs)]

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;
use std::sync::OnceLock;

use async_trait::async_trait;
use consign_ports::{Email, MailError, Mailer};
use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// Checks that `text` is a mailbox messages can be sent from or to (`shop@example.com`, or
/// `Shop <shop@example.com>`), answering why not.
///
/// ```
/// assert!(consign_mail::check_mailbox("Shop <shop@example.com>").is_ok());
/// assert!(consign_mail::check_mailbox("Shop Team").is_err());
/// ```
pub fn check_mailbox(text: &str) -> Result<(), String> {
    text.parse::<Mailbox>()
        .map(drop)
        .map_err(|e| format!("{text:?} is not a mail address: {e}"))
}

/// Checks an SMTP server's URL as [`SmtpMailer::from_url`] reads it, answering why not. A URL
/// with credentials must keep them off the wire in the clear: `smtps://`, or `smtp://` with
/// `tls=required`, unless the server is on loopback (STARTTLS "when offered" is not enough: a
/// server in the middle need not offer it).
///
/// ```
/// assert!(consign_mail::check_smtp_url("smtps://shop:secret@mail.example.com:465").is_ok());
/// assert!(consign_mail::check_smtp_url("smtp://shop:secret@mail.example.com:587?tls=required").is_ok());
/// assert!(consign_mail::check_smtp_url("smtp://127.0.0.1:2525").is_ok());
/// assert!(consign_mail::check_smtp_url("smtp://shop:secret@127.0.0.1:2525").is_ok());
/// assert!(consign_mail::check_smtp_url("smtp://shop:secret@[::1]:2525").is_ok());
/// assert!(consign_mail::check_smtp_url("smtp://shop:secret@mail.example.com:587").is_err());
/// assert!(consign_mail::check_smtp_url("mail.example.com").is_err());
/// ```
pub fn check_smtp_url(text: &str) -> Result<(), String> {
    let url = url::Url::parse(text).map_err(|e| format!("not an smtp:// or smtps:// URL: {e}"))?;
    AsyncSmtpTransport::<Tokio1Executor>::from_url(text)
        .map_err(|e| format!("not an SMTP URL the mail library takes: {e}"))?;
    // The mail library logs in only when a password is given.
    let credentials = url.password().is_some();
    let tls_from_start = url.scheme() == "smtps";
    let tls_required = url
        .query_pairs()
        .any(|(name, value)| name == "tls" && value == "required");
    // `smtp` is not a scheme the URL standard knows, so its host comes back as text, an
    // address among them.
    let loopback = match url.host() {
        Some(url::Host::Domain(name)) => {
            name.eq_ignore_ascii_case("localhost")
                || name
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    if credentials && !tls_from_start && !tls_required && !loopback {
        return Err(
            "credentials would be sent in the clear: use smtps://, or smtp:// with ?tls=required"
                .into(),
        );
    }
    Ok(())
}

/// The MIME message of an email: a plain-text and an HTML alternative.
fn message(email: &Email) -> Result<Message, MailError> {
    let from: Mailbox = email
        .from
        .parse()
        // The sender is the operator's setting: once mended, the message can go.
        .map_err(|e| MailError::NotSent(format!("sender {:?}: {e}", email.from)))?;
    let to: Mailbox = email
        .to
        .parse()
        // The customer's address as imported: it will never parse.
        .map_err(|e| MailError::Refused(format!("recipient {:?}: {e}", email.to)))?;
    Message::builder()
        .from(from)
        .to(to)
        .subject(email.subject.clone())
        // RFC 5322's msg-id is enclosed in angle brackets; lettre writes the header as given.
        .message_id(Some(format!("<{}>", email.message_id)))
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
        .map_err(|e| MailError::NotSent(e.to_string()))
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
            .map_err(|e| MailError::NotSent(format!("SMTP URL: {e}")))?
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
            .map_err(|e| smtp_error(&e))
    }
}

/// An SMTP failure as the outbox treats it: refused for good only when the server's answer is
/// about this recipient's address (see [`about_the_recipient`]); anything else is sent again
/// later.
fn smtp_error(error: &lettre::transport::smtp::Error) -> MailError {
    let code = error.status().map(u16::from);
    // The server's own words, without lettre's prefix: `5.1.1 no such mailbox`.
    let said = std::error::Error::source(error).map(ToString::to_string);
    if about_the_recipient(code, said.as_deref().unwrap_or("")) {
        MailError::Refused(error.to_string())
    } else {
        MailError::NotSent(error.to_string())
    }
}

/// Whether a server's reply refuses this recipient's address for good: a permanent reply whose
/// enhanced status (RFC 3463) is an address one: 5.1.1 no such mailbox, 5.1.2 no such domain,
/// 5.1.3 an address that is not one, 5.1.6 the mailbox moved away, 5.1.10 a domain that takes
/// no mail. The same 550, 553 and 554 also say that this service's host is blocked, that relay
/// is denied or that the sender may not send (5.7.x), or come without an enhanced status:
/// those are about this service's settings or standing, which an operator can mend, so they are
/// retried, as every other failure is: refused, every confirmation in the outbox would be given
/// up within seconds.
fn about_the_recipient(code: Option<u16>, said: &str) -> bool {
    let permanent = code.is_some_and(|c| (500..600).contains(&c));
    let status = said.split_whitespace().next().unwrap_or("");
    permanent && matches!(status, "5.1.1" | "5.1.2" | "5.1.3" | "5.1.6" | "5.1.10")
}

/// Writes `.eml` files into a folder (the default: no mail server needed), on a thread of its
/// own.
///
/// Why a thread of its own: the outbox sends one message after another, and a write handed to
/// the runtime's blocking pool each time made the pool start another thread whenever the last
/// one had not yet gone back to waiting: four to six threads within seconds under load, each
/// keeping heap pages of its own (docs/benchmarks.md, set 20).
pub struct FolderMailer {
    folder: PathBuf,
    /// The writing thread's queue, started with the first message.
    writer: OnceLock<Sender<Write>>,
}

/// A message for the writing thread, and where it answers.
struct Write {
    name: String,
    bytes: Vec<u8>,
    written: tokio::sync::oneshot::Sender<std::io::Result<()>>,
}

impl FolderMailer {
    /// A mailer writing into `folder` (created when missing).
    pub fn new(folder: impl Into<PathBuf>) -> Self {
        FolderMailer {
            folder: folder.into(),
            writer: OnceLock::new(),
        }
    }

    /// The writing thread's queue; the thread ends when the mailer is dropped.
    fn writer(&self) -> Result<&Sender<Write>, MailError> {
        if let Some(writer) = self.writer.get() {
            return Ok(writer);
        }
        let (queue, writes) = std::sync::mpsc::channel::<Write>();
        let folder = self.folder.clone();
        std::thread::Builder::new()
            .name("consign-mail".into())
            .spawn(move || {
                for write in writes {
                    let _ = write
                        .written
                        .send(write_into(&folder, &write.name, &write.bytes));
                }
            })
            .map_err(|e| MailError::NotSent(format!("no thread to write mail with: {e}")))?;
        // Two first messages at once start two threads: one queue is kept, and the other
        // thread ends as its queue is dropped here.
        Ok(self.writer.get_or_init(|| queue))
    }
}

#[async_trait]
impl Mailer for FolderMailer {
    async fn send(&self, email: &Email) -> Result<(), MailError> {
        let bytes = message(email)?.formatted();
        let (written, answer) = tokio::sync::oneshot::channel();
        let stopped = || MailError::NotSent("the mail writing thread stopped".into());
        self.writer()?
            .send(Write {
                name: file_name(&email.message_id),
                bytes,
                written,
            })
            .map_err(|_| stopped())?;
        answer
            .await
            .map_err(|_| stopped())?
            .map_err(|e| MailError::NotSent(format!("writing to {}: {e}", self.folder.display())))
    }
}

/// The file name a message id gives: what is not a letter, a digit, `-` or `.` becomes `_`.
fn file_name(message_id: &str) -> String {
    message_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Writes `bytes` as `folder/name.eml`, replacing a message of that name, so that a reader of
/// the folder sees the whole message or none of it: written under a hidden name first, then
/// renamed. The folder is created only when the write finds it missing (the first message, or
/// after it was removed), not before every message.
fn write_into(folder: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let partial = folder.join(format!(".{name}.eml.partial"));
    match std::fs::write(&partial, bytes) {
        Err(e) if e.kind() == ErrorKind::NotFound => {
            std::fs::create_dir_all(folder)?;
            std::fs::write(&partial, bytes)?;
        }
        written => written?,
    }
    std::fs::rename(partial, folder.join(format!("{name}.eml")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A folder path of its own under the temporary directory, removed afterwards.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let path = std::env::temp_dir()
                .join(format!("consign-mail-test-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&path);
            Scratch(path)
        }

        fn files(&self) -> Vec<String> {
            let mut names: Vec<String> = std::fs::read_dir(&self.0)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        }

        fn read(&self, name: &str) -> String {
            std::fs::read_to_string(self.0.join(name)).unwrap()
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn email(id: &str, text: &str) -> Email {
        Email {
            from: "shop@example.com".into(),
            to: "anna@example.com".into(),
            subject: "Your order 800 has shipped".into(),
            text: text.into(),
            html: format!("<p>{text}</p>"),
            message_id: id.into(),
        }
    }

    #[tokio::test]
    async fn a_message_is_written_whole_under_its_message_id() {
        let folder = Scratch::new("whole");
        let mailer = FolderMailer::new(&folder.0);
        mailer
            .send(&email(
                "shipping-confirmation-800-1-7@consign",
                "DHL JD0001",
            ))
            .await
            .unwrap();
        let name = "shipping-confirmation-800-1-7_consign.eml";
        assert_eq!(folder.files(), [name]);
        let written = folder.read(name);
        for expected in [
            "Message-ID: <shipping-confirmation-800-1-7@consign>",
            "To: anna@example.com",
            "From: shop@example.com",
            "Subject: Your order 800 has shipped",
            "text/plain",
            "text/html",
            "DHL JD0001",
        ] {
            assert!(written.contains(expected), "no {expected:?} in:\n{written}");
        }
    }

    #[tokio::test]
    async fn a_resend_replaces_the_file_instead_of_adding_one() {
        let folder = Scratch::new("resend");
        let mailer = FolderMailer::new(&folder.0);
        mailer.send(&email("m-1@consign", "first")).await.unwrap();
        mailer.send(&email("m-1@consign", "second")).await.unwrap();
        mailer.send(&email("m-2@consign", "other")).await.unwrap();
        assert_eq!(folder.files(), ["m-1_consign.eml", "m-2_consign.eml"]);
        let resent = folder.read("m-1_consign.eml");
        assert!(resent.contains("second") && !resent.contains("first"));
    }

    #[tokio::test]
    async fn a_folder_removed_while_running_is_created_again() {
        let folder = Scratch::new("removed");
        let mailer = FolderMailer::new(&folder.0);
        mailer.send(&email("m-1@consign", "one")).await.unwrap();
        std::fs::remove_dir_all(&folder.0).unwrap();
        mailer.send(&email("m-2@consign", "two")).await.unwrap();
        assert_eq!(folder.files(), ["m-2_consign.eml"]);
    }

    #[tokio::test]
    async fn a_folder_that_cannot_be_written_is_an_error_to_retry() {
        let folder = Scratch::new("blocked");
        // A file where the folder should be: no message can be written.
        std::fs::write(&folder.0, b"not a folder").unwrap();
        let mailer = FolderMailer::new(&folder.0);
        let sent = mailer.send(&email("m-1@consign", "one")).await;
        let _ = std::fs::remove_file(&folder.0);
        assert!(matches!(sent, Err(MailError::NotSent(_))), "{sent:?}");
    }

    /// Only a permanent answer about the recipient's address gives a message up: the same codes
    /// about this service's host, relay or sender, or without an enhanced status, are retried.
    #[test]
    fn only_answers_about_the_recipient_give_a_message_up() {
        for (code, said) in [
            (
                550,
                "5.1.1 <gone@example.com>: Recipient address rejected: User unknown",
            ),
            (550, "5.1.2 no such domain"),
            (553, "5.1.3 bad recipient address syntax"),
            (551, "5.1.6 mailbox has moved"),
            (556, "5.1.10 recipient domain has a null MX"),
        ] {
            assert!(about_the_recipient(Some(code), said), "{code} {said}");
        }
        for (code, said) in [
            (554, "5.7.1 Client host blocked using a block list"),
            (554, "5.7.1 Relay access denied"),
            (553, "5.7.1 Sender address rejected: not owned by user"),
            (550, "5.7.708 Service unavailable. Access denied"),
            (550, "no such user here"),
            (535, "5.7.8 authentication credentials invalid"),
            (450, "4.1.1 mailbox temporarily unavailable"),
            (550, ""),
        ] {
            assert!(!about_the_recipient(Some(code), said), "{code} {said}");
        }
        assert!(!about_the_recipient(None, "5.1.1 no code"));
    }

    /// An address that does not parse never will: refused for good, not retried every hour.
    /// A sender that does not parse is the operator's setting, to be mended: retried.
    #[tokio::test]
    async fn a_recipient_that_does_not_parse_is_refused_for_good() {
        let folder = Scratch::new("bad-address");
        let mailer = FolderMailer::new(&folder.0);
        let mut to_nobody = email("m-1@consign", "one");
        to_nobody.to = "anna at example".into();
        let sent = mailer.send(&to_nobody).await;
        assert!(matches!(sent, Err(MailError::Refused(_))), "{sent:?}");
        let mut from_nobody = email("m-2@consign", "two");
        from_nobody.from = "shop at example".into();
        let sent = mailer.send(&from_nobody).await;
        assert!(matches!(sent, Err(MailError::NotSent(_))), "{sent:?}");
        assert!(!folder.0.exists(), "nothing was written");
    }

    /// Messages are written on the mailer's own thread, not the runtime's blocking pool: here
    /// the pool's only thread is busy until every message is written, so a write that waited
    /// for it would never end.
    #[test]
    fn messages_are_written_without_the_blocking_pool() {
        let folder = Scratch::new("own-thread");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .max_blocking_threads(1)
            .build()
            .unwrap();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let _busy = runtime.spawn_blocking(move || {
            let _ = released.recv();
        });
        let mailer = FolderMailer::new(&folder.0);
        let sent = runtime.block_on(async {
            tokio::time::timeout(std::time::Duration::from_secs(3), async {
                for n in 1..=3 {
                    mailer
                        .send(&email(&format!("m-{n}@consign"), "one"))
                        .await?;
                }
                Ok::<_, MailError>(())
            })
            .await
        });
        drop(release);
        sent.expect("written in time").unwrap();
        assert_eq!(
            folder.files(),
            ["m-1_consign.eml", "m-2_consign.eml", "m-3_consign.eml"]
        );
    }
}
