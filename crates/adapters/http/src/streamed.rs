//! An ok answer whose one list is written a few elements at a time, as the client reads it.
//!
//! `GET orders` answers up to 1,000 orders, each with every live shipment; built whole as JSON
//! values, a page of large orders took the server from 26 to 107 MiB (docs/benchmarks.md). Here
//! each element becomes JSON values only when its turn to be sent comes, and is dropped once
//! written, so a listing holds its elements as read and the chunk being sent, whatever the page
//! size. The bytes are those [`Answer::ok`] would write for the same list, JSON or XML.

use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::HttpResponse;
use serde_json::Value;

use crate::answer::{write_xml_children, Outcome, JSON_TYPE, XML_END, XML_START, XML_TYPE};

/// Elements are written into one chunk until it holds this many bytes (one large element may
/// make a chunk larger).
const CHUNK: usize = 32 * 1024;

/// `{"status":"ok","<field>":[...]}` (or its XML), its elements rendered as they are sent.
pub struct StreamedList<T> {
    field: &'static str,
    items: std::vec::IntoIter<T>,
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
            render,
            xml,
            written: Written::Nothing,
        }
    }

    /// The response: 200, the answer's content type, its body written as it is read.
    pub fn into_response(self) -> HttpResponse {
        let content_type = if self.xml { XML_TYPE } else { JSON_TYPE };
        let mut response = HttpResponse::build(StatusCode::OK);
        response.extensions_mut().insert(Outcome(true));
        response.content_type(content_type).body(BoxBody::new(self))
    }

    /// The next chunk: the head first, then elements up to [`CHUNK`] bytes, then the tail.
    fn next_chunk(&mut self) -> Option<Bytes> {
        let mut out = Vec::with_capacity(CHUNK + 1024);
        let mut any = match self.written {
            Written::All => return None,
            Written::Nothing => {
                self.head(&mut out);
                false
            }
            Written::Elements { any } => any,
        };
        while out.len() < CHUNK {
            let Some(item) = self.items.next() else {
                self.tail(&mut out);
                self.written = Written::All;
                return Some(Bytes::from(out));
            };
            let value = (self.render)(&item);
            self.element(&value, any, &mut out);
            any = true;
        }
        self.written = Written::Elements { any };
        Some(Bytes::from(out))
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
    type Error = std::convert::Infallible;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Poll::Ready(self.get_mut().next_chunk().map(Ok))
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
        let mut chunks = Vec::new();
        while let Some(chunk) = list.next_chunk() {
            chunks.push(chunk.len());
        }
        assert!(chunks.len() > 3, "{chunks:?}");
        assert!(chunks.iter().all(|&n| n < CHUNK + 1024), "{chunks:?}");
    }
}
