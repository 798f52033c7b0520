//! The hot loop's HTTP client: one keep-alive HTTP/1.1 connection per load-generating client,
//! requests written from a few bytes of template, answers read only as far as the bench looks
//! (status, ok or not, the shipment id).
//!
//! Why not the general client used for seeding and checks: on this two-core machine the load
//! generator shares the cores with the server it measures, and a general client's per-request
//! work (URL parsing, header maps, its connection pool) was about 45 µs of CPU per request,
//! spent on one thread that every answer of a group commit queues behind. What the bench
//! measures should be the server's work, not its own.

use std::io::Write as _;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::server::KEY;

/// What the bench reads of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    /// The body starts with `{"status":"ok"`.
    pub ok: bool,
    /// The body's first `"shipment":"..."` value.
    pub shipment: Option<String>,
}

/// One client's connection to the server; reconnects after any failure.
pub struct Connection {
    /// `host:port`.
    authority: String,
    /// The base URL's path, prepended to every request's path.
    prefix: String,
    stream: Option<TcpStream>,
    request: Vec<u8>,
    answer: Vec<u8>,
}

impl Connection {
    /// A connection (opened on first use) to the server at `base`, an `http://host:port/prefix`
    /// URL.
    pub fn new(base: &str) -> Result<Connection, String> {
        let rest = base
            .strip_prefix("http://")
            .ok_or_else(|| format!("the lean client speaks plain http only: {base}"))?;
        let (authority, prefix) = match rest.find('/') {
            Some(slash) => rest.split_at(slash),
            None => (rest, ""),
        };
        Ok(Connection {
            authority: authority.to_owned(),
            prefix: prefix.trim_end_matches('/').to_owned(),
            stream: None,
            request: Vec::with_capacity(512),
            answer: Vec::with_capacity(1024),
        })
    }

    /// Sends a JSON `body` with the bench's key to `path` (under the base's prefix) and reads
    /// the answer. A failure drops the connection: the next request opens a new one.
    pub async fn send(&mut self, method: &str, path: &str, body: &str) -> Result<Answer, String> {
        let answer = self.exchange(method, path, body).await;
        if !matches!(answer, Ok((_, true))) {
            self.stream = None;
        }
        answer.map(|(answer, _)| answer)
    }

    /// The answer, and whether the connection may carry the next request.
    async fn exchange(
        &mut self,
        method: &str,
        path: &str,
        body: &str,
    ) -> Result<(Answer, bool), String> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(&self.authority)
                .await
                .map_err(|e| e.to_string())?;
            stream.set_nodelay(true).map_err(|e| e.to_string())?;
            self.stream = Some(stream);
        }
        let Some(stream) = self.stream.as_mut() else {
            return Err("not connected".into());
        };
        self.request.clear();
        self.request.extend_from_slice(method.as_bytes());
        self.request.push(b' ');
        self.request.extend_from_slice(self.prefix.as_bytes());
        self.request.extend_from_slice(path.as_bytes());
        self.request.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        self.request.extend_from_slice(self.authority.as_bytes());
        self.request.extend_from_slice(b"\r\nAPI-Authorization: ");
        self.request.extend_from_slice(KEY.as_bytes());
        self.request
            .extend_from_slice(b"\r\nContent-Type: application/json\r\nContent-Length: ");
        // Writing into a Vec cannot fail.
        let _ = write!(self.request, "{}", body.len());
        self.request.extend_from_slice(b"\r\n\r\n");
        self.request.extend_from_slice(body.as_bytes());
        stream
            .write_all(&self.request)
            .await
            .map_err(|e| e.to_string())?;

        self.answer.clear();
        let head_end = loop {
            if let Some(at) = find(&self.answer, b"\r\n\r\n") {
                break at + 4;
            }
            read_more(stream, &mut self.answer).await?;
        };
        let head = Head::parse(&self.answer[..head_end])?;
        while self.answer.len() < head_end + head.length {
            read_more(stream, &mut self.answer).await?;
        }
        if self.answer.len() > head_end + head.length {
            return Err("more bytes than the answer's length".into());
        }
        let body = &self.answer[head_end..];
        let answer = Answer {
            status: head.status,
            ok: body.starts_with(br#"{"status":"ok""#),
            shipment: shipment_id(body),
        };
        Ok((answer, head.keep_alive))
    }
}

/// Reads what is there into `into`; the peer closing before the answer is complete is an
/// error.
async fn read_more(stream: &mut TcpStream, into: &mut Vec<u8>) -> Result<(), String> {
    into.reserve(1024);
    match stream.read_buf(into).await {
        Ok(0) => Err("the server closed the connection".into()),
        Ok(_) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

/// What the bench needs of an answer's head.
#[derive(Debug, PartialEq, Eq)]
struct Head {
    status: u16,
    length: usize,
    keep_alive: bool,
}

impl Head {
    /// Parses `HTTP/1.1 <status> ...` and the headers up to the blank line. Answers without a
    /// `Content-Length` (chunked ones) are refused rather than guessed at.
    fn parse(head: &[u8]) -> Result<Head, String> {
        let text = std::str::from_utf8(head).map_err(|e| e.to_string())?;
        let mut lines = text.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status = status_line
            .strip_prefix("HTTP/1.1 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| format!("not an HTTP/1.1 answer: {status_line:?}"))?;
        let mut length = None;
        let mut keep_alive = true;
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(value.parse().map_err(|_| format!("bad length {value:?}"))?);
            } else if name.eq_ignore_ascii_case("connection") {
                keep_alive = !value.eq_ignore_ascii_case("close");
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                return Err(format!(
                    "transfer-encoding {value} is not read by the lean client"
                ));
            }
        }
        let length = length.ok_or("an answer without Content-Length")?;
        Ok(Head {
            status,
            length,
            keep_alive,
        })
    }
}

/// The first `"shipment":"<id>"` of a body.
fn shipment_id(body: &[u8]) -> Option<String> {
    const KEY: &[u8] = br#""shipment":""#;
    let start = find(body, KEY)? + KEY.len();
    let length = body[start..].iter().position(|b| *b == b'"')?;
    String::from_utf8(body[start..start + length].to_vec()).ok()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_head_gives_status_length_and_whether_the_connection_stays() {
        let head =
            b"HTTP/1.1 201 Created\r\ncontent-length: 42\r\ncontent-type: application/json\r\n\r\n";
        assert_eq!(
            Head::parse(head),
            Ok(Head {
                status: 201,
                length: 42,
                keep_alive: true
            })
        );
        let closing = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        assert_eq!(
            Head::parse(closing).map(|h| (h.status, h.keep_alive)),
            Ok((400, false))
        );
        assert!(Head::parse(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n").is_err());
        assert!(Head::parse(b"HTTP/1.1 200 OK\r\n\r\n").is_err());
        assert!(Head::parse(b"SSH-2.0\r\n\r\n").is_err());
    }

    #[test]
    fn the_shipment_id_is_the_first_one_in_the_body() {
        let body = br#"{"status":"ok","shipment":"17-3","order":{"shipment":"x"}}"#;
        assert_eq!(shipment_id(body).as_deref(), Some("17-3"));
        assert_eq!(shipment_id(br#"{"status":"no","msg":"x"}"#), None);
    }

    /// A real exchange with a one-shot server on loopback: the request as written, and the
    /// answer read across several writes.
    #[tokio::test]
    async fn a_request_is_written_whole_and_its_answer_read_across_writes() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut seen = Vec::new();
            while find(&seen, b"{}").is_none() {
                socket.read_buf(&mut seen).await.unwrap();
            }
            let body = br#"{"status":"ok","shipment":"5"}"#;
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
            socket.write_all(head.as_bytes()).await.unwrap();
            socket.flush().await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            socket.write_all(body).await.unwrap();
            String::from_utf8(seen).unwrap()
        });
        let mut connection = Connection::new(&format!("http://{address}/api/order")).unwrap();
        let answer = connection.send("POST", "/shipments", "{}").await.unwrap();
        assert_eq!(
            answer,
            Answer {
                status: 200,
                ok: true,
                shipment: Some("5".into())
            }
        );
        let request = server.await.unwrap();
        assert!(request.starts_with("POST /api/order/shipments HTTP/1.1\r\n"));
        assert!(request.contains(&format!("\r\nAPI-Authorization: {KEY}\r\n")));
        assert!(request.ends_with("\r\nContent-Length: 2\r\n\r\n{}"));
    }
}
