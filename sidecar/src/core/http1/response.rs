//! Response heads from upstreams: parsed leniently enough for real servers, but never with
//! ambiguous framing, and re-encoded for the client.

use bytes::{BufMut, Bytes, BytesMut};

use super::error::ResponseError;
use super::field_list::FieldList;
use super::fields::{self, content_length, list_items};
use super::request::itoa;
use super::{BodyKind, Field, Limits, Span, Version};

const STACK_HEADERS: usize = 48;

#[derive(Debug)]
pub struct ResponseHead {
    buf: Bytes,
    status: u16,
    reason: Span,
    version: Version,
    fields: FieldList,
    body: BodyKind,
    keep_alive: bool,
    connection: Vec<Span>,
    /// A HEAD or 304 response keeps the Content-Length the full response would have had.
    keep_length: bool,
}

/// How to frame the response for this client.
#[derive(Debug, Clone, Copy)]
pub struct DownstreamOpts {
    /// Add `Connection: close`.
    pub close: bool,
    /// Add `Connection: keep-alive`: an HTTP/1.0 client that asked to keep the connection
    /// must be told it was kept (RFC 9112 §9.3, Appendix C.2.2).
    pub keep_alive: bool,
    /// The framing to write (e.g. close-delimited instead of chunked for an HTTP/1.0 client).
    pub body: BodyKind,
    /// A 101 to a WebSocket handshake: keep `Connection: upgrade` and `Upgrade`.
    pub keep_upgrade: bool,
}

impl ResponseHead {
    pub fn status(&self) -> u16 {
        self.status
    }

    pub fn version(&self) -> Version {
        self.version
    }

    pub fn header(&self, lowercase_name: &str) -> Option<&[u8]> {
        fields::find(&self.buf, &self.fields, lowercase_name)
    }

    pub fn body(&self) -> BodyKind {
        self.body
    }

    /// Whether the upstream connection can carry another request after this response.
    pub fn keep_alive(&self) -> bool {
        self.keep_alive
    }

    /// 1xx other than 101: forwarded, then the final response follows.
    pub fn is_informational(&self) -> bool {
        (100..200).contains(&self.status) && self.status != 101
    }

    /// The fields that travel past this hop (for translation to HTTP/2): hop-by-hop fields,
    /// framing and whatever `Connection` names are dropped.
    pub fn end_to_end_fields(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.fields
            .iter()
            .map(|f| (f.name.get(&self.buf), f.value.get(&self.buf)))
            .filter(|(n, _)| {
                !(fields::is_hop_by_hop(n)
                    || fields::listed_in_connection(n, &self.buf, &self.connection))
            })
    }

    pub fn encode_downstream(&self, out: &mut BytesMut, opts: &DownstreamOpts) {
        out.reserve(self.buf.len() + 64);
        out.put_slice(b"HTTP/1.1 ");
        out.put_slice(itoa(u64::from(self.status), &mut [0u8; 20]));
        out.put_u8(b' ');
        out.put_slice(self.reason.get(&self.buf));
        out.put_slice(b"\r\n");
        for f in self.fields.iter() {
            let name = f.name.get(&self.buf);
            let keep_cl = self.keep_length && name.eq_ignore_ascii_case(b"content-length");
            if !keep_cl
                && (fields::is_hop_by_hop(name)
                    || fields::listed_in_connection(name, &self.buf, &self.connection))
            {
                continue;
            }
            out.put_slice(name);
            out.put_slice(b": ");
            out.put_slice(f.value.get(&self.buf));
            out.put_slice(b"\r\n");
        }
        match opts.body {
            BodyKind::Length(n) if !self.keep_length => {
                out.put_slice(b"content-length: ");
                out.put_slice(itoa(n, &mut [0u8; 20]));
                out.put_slice(b"\r\n");
            }
            BodyKind::Chunked => out.put_slice(b"transfer-encoding: chunked\r\n"),
            _ => {}
        }
        if opts.keep_upgrade {
            if let Some(up) = self.header("upgrade") {
                out.put_slice(b"connection: upgrade\r\nupgrade: ");
                out.put_slice(up);
                out.put_slice(b"\r\n");
            }
        } else if opts.close {
            out.put_slice(b"connection: close\r\n");
        } else if opts.keep_alive {
            out.put_slice(b"connection: keep-alive\r\n");
        }
        out.put_slice(b"\r\n");
    }
}

/// Parses a response head from the front of `buf` (same convention as `parse_request`).
/// `req_is_head`: the request was HEAD, so no body follows whatever the fields say.
pub fn parse_response(
    buf: &mut BytesMut,
    req_is_head: bool,
    limits: &Limits,
) -> Result<Option<ResponseHead>, ResponseError> {
    let mut stack = [httparse::EMPTY_HEADER; STACK_HEADERS];
    let mut heap;
    let mut resp = httparse::Response::new(&mut stack);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > limits.max_header_bytes => {
            return Err(ResponseError("header section too large"))
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            heap = vec![httparse::EMPTY_HEADER; limits.max_headers];
            resp = httparse::Response::new(&mut heap);
            match resp.parse(buf) {
                Ok(httparse::Status::Complete(n)) => n,
                Ok(httparse::Status::Partial) => return Ok(None),
                Err(_) => return Err(ResponseError("malformed or oversized head")),
            }
        }
        Err(_) => return Err(ResponseError("malformed head")),
    };
    if fields::has_bare_cr_or_lf(&buf[..len]) {
        return Err(ResponseError("bare CR or LF in the head"));
    }
    let version = if resp.version == Some(0) {
        Version::Http10
    } else {
        Version::Http11
    };
    let status = resp.code.ok_or(ResponseError("missing status"))?;
    if status < 100 {
        // httparse reads `099` as 99, which has no meaning (RFC 9110 §15: 100..599) and could
        // not be forwarded as the three digits a status line needs.
        return Err(ResponseError("status code below 100"));
    }
    let reason = reason_span(&buf[..len]);

    let mut fields = FieldList::with_capacity(resp.headers.len());
    let mut length: Option<u64> = None;
    let mut te_present = false;
    let mut chunked_last = false;
    let mut connection = Vec::new();
    let (mut close, mut keep_alive_token) = (false, false);
    for h in resp.headers.iter() {
        let name = h.name.as_bytes();
        let value = h.value;
        if value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            return Err(ResponseError("control character in a header field value"));
        }
        if name.eq_ignore_ascii_case(b"content-length") {
            let n = content_length(value).ok_or(ResponseError("invalid Content-Length"))?;
            // Repeated identical values are tolerated from upstreams; different ones are not.
            if length.is_some_and(|l| l != n) {
                return Err(ResponseError("conflicting Content-Length fields"));
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            te_present = true;
            chunked_last = list_items(value)
                .last()
                .is_some_and(|c| c.eq_ignore_ascii_case(b"chunked"));
        } else if name.eq_ignore_ascii_case(b"connection") {
            for t in list_items(value) {
                if t.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if t.eq_ignore_ascii_case(b"keep-alive") {
                    keep_alive_token = true;
                } else if !t.eq_ignore_ascii_case(b"upgrade") {
                    connection.push(Span::of(buf, t));
                }
            }
        }
        fields.push(Field {
            name: Span::of(buf, name),
            value: Span::of(buf, value),
        });
    }

    // RFC 9112 §6.3, in order.
    let no_body = req_is_head || (100..200).contains(&status) || status == 204 || status == 304;
    let body = if no_body {
        BodyKind::Empty
    } else if te_present {
        // Transfer-Encoding wins over Content-Length, which is then dropped; a coding that
        // does not end in chunked can only be delimited by the connection closing.
        if chunked_last {
            BodyKind::Chunked
        } else {
            BodyKind::CloseDelimited
        }
    } else if let Some(n) = length {
        BodyKind::Length(n)
    } else {
        BodyKind::CloseDelimited
    };
    let reusable = match version {
        Version::Http11 => !close,
        Version::Http10 => keep_alive_token && !close,
    };
    let keep_alive = reusable && body != BodyKind::CloseDelimited && status != 101;
    let keep_length = (req_is_head || status == 304) && length.is_some();
    let head = ResponseHead {
        buf: Bytes::new(),
        status,
        reason,
        version,
        fields,
        body,
        keep_alive,
        connection,
        keep_length,
    };
    Ok(Some(ResponseHead {
        buf: buf.split_to(len).freeze(),
        ..head
    }))
}

/// The reason phrase as received, obs-text included (RFC 9112 §4: `*( HTAB / SP / VCHAR /
/// obs-text )`), from the status line of a head httparse accepted (`HTTP/1.x SP 3DIGIT
/// [SP reason] CRLF`, after the empty lines it skips). Not httparse's `reason`: for a missing
/// phrase or one with obs-text that is a `""` outside `head`, which has no span in it.
fn reason_span(head: &[u8]) -> Span {
    let start = head
        .iter()
        .position(|b| !matches!(b, b'\r' | b'\n'))
        .unwrap_or(head.len());
    let line = &head[start..];
    let line = &line[..memchr::memchr(b'\n', line).unwrap_or(line.len())];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    // `HTTP/1.1 200 ` is 13 bytes; a shorter line has no phrase.
    Span::of(head, line.get(13..).unwrap_or(&line[line.len()..]))
}

#[cfg(test)]
#[path = "response_tests.rs"]
mod tests;
