//! A small SMTP sink on loopback: accepts messages and keeps them, optionally refusing the first
//! deliveries with a temporary error (451) to exercise retries, and some recipients for good
//! (550, as for a mailbox that does not exist).

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

#[derive(Default)]
struct Inbox {
    messages: Vec<String>,
    refuse_next: usize,
    sessions: usize,
    /// Recipients answered `550` at `RCPT`.
    no_such_mailbox: Vec<String>,
}

/// A running sink.
#[derive(Clone)]
pub struct SmtpSink {
    /// `127.0.0.1:<port>`.
    pub address: String,
    inbox: Arc<Mutex<Inbox>>,
}

impl SmtpSink {
    /// Starts on a free loopback port, on a runtime of its own thread.
    pub fn start() -> SmtpSink {
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
                let inbox = Arc::new(Mutex::new(Inbox::default()));
                let address = listener.local_addr().expect("address").to_string();
                sender
                    .send(SmtpSink {
                        address,
                        inbox: inbox.clone(),
                    })
                    .expect("test waiting");
                while let Ok((socket, _)) = listener.accept().await {
                    tokio::spawn(session(socket, inbox.clone()));
                }
            });
        });
        receiver.recv().expect("sink started")
    }

    /// The URL Consign sends to.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.address)
    }

    /// Refuses the next `n` messages with `451` (a temporary failure).
    pub fn refuse_next(&self, n: usize) {
        self.inbox
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .refuse_next = n;
    }

    /// Answers `550` (no such mailbox) to every `RCPT` of `address`, as a server does for a
    /// mailbox that does not exist.
    pub fn refuse_recipient(&self, address: &str) {
        self.inbox
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .no_such_mailbox
            .push(address.to_ascii_lowercase());
    }

    /// Every message received (the DATA, as sent).
    pub fn messages(&self) -> Vec<String> {
        self.inbox
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .messages
            .clone()
    }

    /// SMTP sessions opened so far.
    pub fn sessions(&self) -> usize {
        self.inbox
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .sessions
    }
}

async fn session(socket: tokio::net::TcpStream, inbox: Arc<Mutex<Inbox>>) {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read).lines();
    inbox.lock().unwrap_or_else(|p| p.into_inner()).sessions += 1;
    let _ = write.write_all(b"220 sink ready\r\n").await;
    while let Ok(Some(line)) = lines.next_line().await {
        let verb = line
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => b"250-sink\r\n250 8BITMIME\r\n",
            "RCPT" => {
                let line = line.to_ascii_lowercase();
                let i = inbox.lock().unwrap_or_else(|p| p.into_inner());
                if i.no_such_mailbox
                    .iter()
                    .any(|a| line.contains(&format!("<{a}>")))
                {
                    b"550 5.1.1 no such mailbox\r\n"
                } else {
                    b"250 ok\r\n"
                }
            }
            "HELO" | "RSET" | "NOOP" => b"250 ok\r\n",
            "MAIL" => {
                let mut i = inbox.lock().unwrap_or_else(|p| p.into_inner());
                if i.refuse_next > 0 {
                    i.refuse_next -= 1;
                    b"451 try again later\r\n"
                } else {
                    b"250 ok\r\n"
                }
            }
            "DATA" => {
                let _ = write.write_all(b"354 go ahead\r\n").await;
                let mut data = String::new();
                while let Ok(Some(line)) = lines.next_line().await {
                    if line == "." {
                        break;
                    }
                    data.push_str(line.strip_prefix('.').unwrap_or(&line));
                    data.push('\n');
                }
                inbox
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .messages
                    .push(data);
                b"250 queued\r\n"
            }
            "QUIT" => {
                let _ = write.write_all(b"221 bye\r\n").await;
                return;
            }
            _ => b"502 not implemented\r\n",
        };
        if write.write_all(reply).await.is_err() {
            return;
        }
    }
}
