//! An ok answer whose one list is written a few elements at a time, as the client reads it.
//!
//! `GET orders` answers up to 1,000 orders, each with every live shipment; built whole as JSON
//! values, a page of large orders took the server from 26 to 107 MiB (docs/benchmarks.md). Here
//! each element becomes JSON values only when its turn to be sent comes, and is dropped once
//! written; the elements after those in hand can be read part by part as the answer is
//! written ([`LaterParts`]), so a listing holds one part and the chunk being sent, whatever the
//! page size. The bytes are those [`Answer::ok`] would write for the same list, JSON or XML.
//! A later part that cannot be read ends the answer as a failed body (the connection closes
//! before the last chunk), never as a shorter list that looks whole.

use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::HttpResponse;
use serde_json::Value;

use crate::answer::{write_xml_children, Outcome, JSON_TYPE, XML_END, XML_START, XML_TYPE};
use crate::error::ApiError;

/// Elements are written into one chunk until it holds this many bytes (one large element may
/// make a chunk larger).
const CHUNK: usize = 32 * 1024;

/// Where a list's later elements come from: read as the answer is written.
pub trait LaterParts<T> {
    /// The next part of the list, `Ok(None)` once there is none left.
    fn poll_part(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Vec<T>>, ApiError>>;
}

/// `{"status":"ok","<field>":[...]}` (or its XML), its elements rendered as they are sent.
pub struct StreamedList<T> {
    field: &'static str,
    items: std::vec::IntoIter<T>,
    /// The elements after `items`, if any are still to be read.
    later: Option<Box<dyn LaterParts<T>>>,
    render: fn(&T) -> Value,
    xml: bool,
    /// What has been written: nothing, the head, or everything.
    written: Written,
}

#[derive(Clone, Copy, PartialEq)]
enum Written {
    Nothing,
    Elements { any: bool },
    All,
}

impl<T: Unpin + 'static> StreamedList<T> {
    /// The answer listing `items` under `field`, each rendered by `render` when it is sent.
    pub fn new(field: &'static str, items: Vec<T>, render: fn(&T) -> Value, xml: bool) -> Self {
        StreamedList {
            field,
            items: items.into_iter(),
            later: None,
            render,
            xml,
            written: Written::Nothing,
        }
    }

    /// The same list, followed by the elements `later` reads once those in hand are written.
    pub fn followed_by(mut self, later: impl LaterParts<T> + 'static) -> Self {
        self.later = Some(Box::new(later));
        self
    }

    /// The response: 200, the answer's content type, its body written as it is read.
    pub fn into_response(self) -> HttpResponse {
        let content_type = if self.xml { XML_TYPE } else { JSON_TYPE };
        let mut response = HttpResponse::build(StatusCode::OK);
        response.extensions_mut().insert(Outcome(true));
        response.content_type(content_type).body(BoxBody::new(self))
    }

    /// The next chunk: the head first, then elements up to [`CHUNK`] bytes (what is written so
    /// far when a later part is still being read), then the tail.
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, ApiError>>> {
        let mut out = Vec::with_capacity(CHUNK + 1024);
        let mut any = match self.written {
            Written::All => return Poll::Ready(None),
            Written::Nothing => {
                self.head(&mut out);
                false
            }
            Written::Elements { any } => any,
        };
        while out.len() < CHUNK {
            if let Some(item) = self.items.next() {
                let value = (self.render)(&item);
                self.element(&value, any, &mut out);
                any = true;
                continue;
            }
            let Some(later) = self.later.as_mut() else {
                self.tail(&mut out);
                self.written = Written::All;
                return Poll::Ready(Some(Ok(Bytes::from(out))));
            };
            match later.poll_part(cx) {
                Poll::Ready(Ok(Some(part))) => self.items = part.into_iter(),
                Poll::Ready(Ok(None)) => self.later = None,
                Poll::Ready(Err(error)) => {
                    // The status (200) is decided and the access log line says so, and actix's
                    // own report of a failed body goes to a logger this service does not
                    // install: this line is the only trace of the broken answer.
                    tracing::error!(?error, "a listing's later part could not be read: its answer broke off (the access log says 200)");
                    self.written = Written::All;
                    self.later = None;
                    return Poll::Ready(Some(Err(error)));
                }
                Poll::Pending => {
                    self.written = Written::Elements { any };
                    // What is written goes out while the part is read.
                    return if out.is_empty() {
                        Poll::Pending
                    } else {
                        Poll::Ready(Some(Ok(Bytes::from(out))))
                    };
                }
            }
        }
        self.written = Written::Elements { any };
        Poll::Ready(Some(Ok(Bytes::from(out))))
    }

    fn head(&self, out: &mut Vec<u8>) {
        if self.xml {
            out.extend_from_slice(XML_START.as_bytes());
            out.extend_from_slice(b"<status>ok</status><");
            out.extend_from_slice(self.field.as_bytes());
            out.push(b'>');
        } else {
            out.extend_from_slice(b"{\"status\":\"ok\",\"");
            out.extend_from_slice(self.field.as_bytes());
            out.extend_from_slice(b"\":[");
        }
    }

    fn element(&self, value: &Value, after_another: bool, out: &mut Vec<u8>) {
        if self.xml {
            let mut text = String::from("<item>");
            write_xml_children(value, &mut text);
            text.push_str("</item>");
            out.extend_from_slice(text.as_bytes());
        } else {
            if after_another {
                out.push(b',');
            }
            // A `Value` always serializes (string keys, a growing Vec); `null` is never reached.
            if serde_json::to_writer(&mut *out, value).is_err() {
                out.extend_from_slice(b"null");
            }
        }
    }

    fn tail(&self, out: &mut Vec<u8>) {
        if self.xml {
            out.extend_from_slice(b"</");
            out.extend_from_slice(self.field.as_bytes());
            out.push(b'>');
            out.extend_from_slice(XML_END.as_bytes());
        } else {
            out.extend_from_slice(b"]}");
        }
    }
}

impl<T: Unpin + 'static> MessageBody for StreamedList<T> {
    type Error = ApiError;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        self.get_mut().poll_chunk(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answer::Answer;
    use serde_json::json;

    async fn body_of(response: HttpResponse) -> (String, String) {
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let bytes = actix_web::body::to_bytes(response.into_body())
            .await
            .unwrap();
        (content_type, String::from_utf8(bytes.to_vec()).unwrap())
    }

    /// Elements that need escaping in both forms, and enough of them to span several chunks.
    fn elements(n: usize) -> Vec<Value> {
        (0..n)
            .map(|i| json!({"orderId": i.to_string(), "name": "<a & \"b\">", "qty": i, "shipped": true, "none": null, "list": [1, {"x": "y"}]}))
            .collect()
    }

    /// Streamed or built whole, the same bytes and content type, JSON and XML, for no element,
    /// one, and a list several chunks long.
    #[actix_web::test]
    async fn writes_what_the_whole_answer_writes() {
        for n in [0, 1, 2, 3_000] {
            for xml in [false, true] {
                let whole = Answer::ok([("orders", Value::Array(elements(n)))])
                    .xml(xml)
                    .into_response();
                let streamed =
                    StreamedList::new("orders", elements(n), Value::clone, xml).into_response();
                assert_eq!(streamed.status(), whole.status());
                let (whole, streamed) = (body_of(whole).await, body_of(streamed).await);
                assert_eq!(streamed, whole, "{n} elements, xml {xml}");
            }
        }
    }

    /// A long list arrives in several chunks, none much past the chunk size: no chunk holds
    /// the whole list.
    #[test]
    fn a_long_list_is_written_in_chunks() {
        let mut list = StreamedList::new("orders", elements(3_000), Value::clone, false);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut chunks = Vec::new();
        while let Poll::Ready(Some(chunk)) = list.poll_chunk(&mut cx) {
            chunks.push(chunk.unwrap().len());
        }
        assert!(chunks.len() > 3, "{chunks:?}");
        assert!(chunks.iter().all(|&n| n < CHUNK + 1024), "{chunks:?}");
    }

    /// Later parts handed out one at a time, each only at the second asking (the first answers
    /// `Pending` and wakes the task at once, as a read that takes a while would), then an error
    /// if `fails`.
    struct Parts {
        parts: std::collections::VecDeque<Vec<Value>>,
        fails: bool,
        asked: bool,
    }

    impl LaterParts<Value> for Parts {
        fn poll_part(
            &mut self,
            cx: &mut Context<'_>,
        ) -> Poll<Result<Option<Vec<Value>>, ApiError>> {
            self.asked = !self.asked;
            if self.asked {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            match self.parts.pop_front() {
                Some(part) => Poll::Ready(Ok(Some(part))),
                None if self.fails => {
                    Poll::Ready(Err(ApiError::BadRequest("the store went away".into())))
                }
                None => Poll::Ready(Ok(None)),
            }
        }
    }

    /// `elements(n)` split after the first `first`, the rest in parts of `part`.
    fn in_parts(n: usize, first: usize, part: usize, fails: bool) -> StreamedList<Value> {
        let mut all = elements(n);
        let later = all.split_off(first.min(n));
        StreamedList::new("orders", all, Value::clone, false).followed_by(Parts {
            parts: later.chunks(part).map(<[Value]>::to_vec).collect(),
            fails,
            asked: false,
        })
    }

    /// Read in parts as it is written, the list is the same bytes as built whole, JSON and
    /// XML, whether the parts are empty, small or span several chunks.
    #[actix_web::test]
    async fn a_list_read_in_parts_writes_what_the_whole_answer_writes() {
        for (n, first, part) in [(0, 0, 1), (5, 0, 2), (5, 5, 1), (7, 2, 3), (3_000, 50, 700)] {
            for xml in [false, true] {
                let whole = Answer::ok([("orders", Value::Array(elements(n)))])
                    .xml(xml)
                    .into_response();
                let mut streamed = in_parts(n, first, part, false);
                streamed.xml = xml;
                let (whole, streamed) = (
                    body_of(whole).await,
                    body_of(streamed.into_response()).await,
                );
                assert_eq!(
                    streamed, whole,
                    "{n} elements from {first} in parts of {part}, xml {xml}"
                );
            }
        }
    }

    /// A part that cannot be read fails the body after what was written: the list is never
    /// closed, so the client cannot take what it got for the whole page.
    #[test]
    fn a_part_that_cannot_be_read_fails_the_answer() {
        let mut list = in_parts(10, 2, 3, true);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut written = Vec::new();
        let failure = loop {
            match list.poll_chunk(&mut cx) {
                Poll::Ready(Some(Ok(chunk))) => written.extend_from_slice(&chunk),
                Poll::Ready(Some(Err(error))) => break error,
                Poll::Ready(None) => panic!("the answer ended without the failure"),
                Poll::Pending => {}
            }
        };
        assert_eq!(failure.to_string(), "the store went away");
        // Every element, but not the `]}` that closes the list.
        let whole = json!({"status": "ok", "orders": elements(10)}).to_string();
        assert_eq!(
            String::from_utf8(written).unwrap(),
            whole[..whole.len() - 2]
        );
        assert!(matches!(list.poll_chunk(&mut cx), Poll::Ready(None)));
    }
}
