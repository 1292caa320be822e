//! A strict HTTP/1.1 codec for a proxy: parse heads, derive body framing, stream chunked
//! bodies, and encode what goes out. Pure: no I/O, no async.
//!
//! Strict because a proxy and the server behind it must never disagree about where a request
//! ends (request smuggling). Every ambiguity RFC 9112 allows us to refuse is refused: repeated
//! or listed Content-Length, Content-Length with Transfer-Encoding, codings other than a single
//! final `chunked`, bare LF or CR, obs-fold, whitespace before `:`, control characters, missing
//! or repeated Host. What we forward is re-encoded from what we parsed (framing re-derived,
//! hop-by-hop fields dropped), never passed through byte for byte.
//!
//! Heads stay in the `Bytes` they arrived in: parsing records spans, not copies.

mod chunked;
mod error;
mod field_list;
/// Field syntax; `fields::is_authority` is also the Host check for heads built from HTTP/2.
pub(crate) mod fields;
mod request;
mod response;
/// The per-thread buffer outgoing heads are encoded into.
pub mod scratch;
mod target;

pub use chunked::{
    check_in_hand, encode_chunk_header, encode_last_chunk, Chunk, ChunkedDecoder, CHUNK_END,
};
pub use error::{BodyError, RequestError, ResponseError};
pub use request::{itoa, parse_request, RequestHead, UpstreamOpts, XFCC};
pub use response::{parse_response, DownstreamOpts, ResponseHead};

/// The interim response Ringside sends itself to a client that expects one (RFC 9110 §10.1.1).
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// The reason phrase Ringside writes for `status`.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        403 => "Forbidden",
        405 => "Method Not Allowed",
        404 => "Not Found",
        408 => "Request Timeout",
        413 => "Content Too Large",
        414 => "URI Too Long",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Error",
    }
}

/// Size limits for a head.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_header_bytes: usize,
    pub max_headers: usize,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Version {
    Http10,
    Http11,
}

/// How a message body is delimited.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum BodyKind {
    /// No body, and no framing field.
    Empty,
    Length(u64),
    Chunked,
    /// Responses only: the body ends when the connection closes.
    CloseDelimited,
}

impl BodyKind {
    /// No body bytes follow the head.
    pub fn is_empty(self) -> bool {
        matches!(self, Self::Empty | Self::Length(0))
    }
}

/// A byte range inside a head's buffer. `u32` keeps a header entry at 16 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Span {
    start: u32,
    end: u32,
}

impl Span {
    /// The span of `part`, which must be a subslice of `base`.
    fn of(base: &[u8], part: &[u8]) -> Span {
        let start = part.as_ptr() as usize - base.as_ptr() as usize;
        Span {
            start: start as u32,
            end: (start + part.len()) as u32,
        }
    }

    fn get(self, base: &[u8]) -> &[u8] {
        &base[self.start as usize..self.end as usize]
    }

    fn str(self, base: &[u8]) -> &str {
        // Spans are only ever taken over bytes httparse or our own checks validated as ASCII
        // tokens or URI characters; anything else reads as empty rather than panicking.
        std::str::from_utf8(self.get(base)).unwrap_or("")
    }
}

/// One header field: name and value spans.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Field {
    name: Span,
    value: Span,
}
