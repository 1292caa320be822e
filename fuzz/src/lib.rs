//! Helpers shared by the fuzz targets in `fuzz_targets/` (docs/fuzzing.md): comparable
//! summaries of parsed heads, and incremental decoding, so each target states its invariant
//! in a few lines.

use bytes::BytesMut;
use ringside::core::http1::{
    BodyKind, Chunk, ChunkedDecoder, Limits, RequestHead, ResponseHead, Version,
};

/// Limits above the 48 fields a head parses with on the stack, so the heap path is fuzzed too.
pub const LIMITS: Limits = Limits {
    max_header_bytes: 16 * 1024,
    max_headers: 100,
};

/// Everything a parsed request head tells the proxy, owned and comparable.
#[derive(Debug, PartialEq, Eq)]
pub struct RequestSummary {
    pub method: String,
    pub target: String,
    pub host: Option<String>,
    pub version: Version,
    pub fields: Vec<(String, Vec<u8>)>,
    pub body: BodyKind,
    pub keep_alive: bool,
    pub expect_continue: bool,
    pub upgrade: Option<String>,
}

impl RequestSummary {
    pub fn of(h: &RequestHead) -> Self {
        RequestSummary {
            method: h.method().to_owned(),
            target: h.target().to_owned(),
            host: h.host().map(str::to_owned),
            version: h.version(),
            fields: h
                .headers()
                .map(|(n, v)| (n.to_owned(), v.to_vec()))
                .collect(),
            body: h.body(),
            keep_alive: h.keep_alive(),
            expect_continue: h.expect_continue(),
            upgrade: h.upgrade().map(str::to_owned),
        }
    }
}

/// Everything a parsed response head tells the proxy, owned and comparable.
#[derive(Debug, PartialEq, Eq)]
pub struct ResponseSummary {
    pub status: u16,
    pub version: Version,
    pub end_to_end: Vec<(Vec<u8>, Vec<u8>)>,
    pub body: BodyKind,
    pub keep_alive: bool,
}

impl ResponseSummary {
    pub fn of(h: &ResponseHead) -> Self {
        ResponseSummary {
            status: h.status(),
            version: h.version(),
            end_to_end: owned_fields(h.end_to_end_fields()),
            body: h.body(),
            keep_alive: h.keep_alive(),
        }
    }
}

/// Copies `(name, value)` pairs out of a head.
pub fn owned_fields<'a>(
    fields: impl Iterator<Item = (&'a [u8], &'a [u8])>,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    fields.map(|(n, v)| (n.to_vec(), v.to_vec())).collect()
}

/// Where a chunked body's decoding ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    /// The last chunk and trailers arrived: all the data, and the trailer lines.
    Done(Vec<u8>, Vec<u8>),
    /// The input ended before the body did.
    Incomplete,
    /// A framing error.
    Failed,
}

/// Decodes `pieces` as they would arrive from a socket, one after another, each appended to
/// what the decoder left unconsumed.
pub fn decode_in_pieces<'a>(pieces: impl IntoIterator<Item = &'a [u8]>) -> Decoded {
    let mut dec = ChunkedDecoder::new();
    let mut buf = BytesMut::new();
    let mut data = Vec::new();
    for piece in pieces {
        buf.extend_from_slice(piece);
        loop {
            match dec.decode(&mut buf) {
                Ok(Some(Chunk::Data(d))) => {
                    assert!(!d.is_empty(), "an empty data chunk was handed out");
                    data.extend_from_slice(&d);
                }
                Ok(Some(Chunk::Trailers(t))) => {
                    assert!(dec.is_done());
                    return Decoded::Done(data, t.to_vec());
                }
                Ok(None) => break,
                Err(_) => return Decoded::Failed,
            }
        }
    }
    Decoded::Incomplete
}

/// Splits `data` into pieces whose lengths come from `sizes` (cycled; 0 is read as 1).
pub fn pieces<'a>(data: &'a [u8], sizes: &[u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    let mut i = 0;
    while !rest.is_empty() {
        let n = sizes
            .get(i % sizes.len().max(1))
            .map_or(rest.len(), |s| usize::from(*s).max(1))
            .min(rest.len());
        let (a, b) = rest.split_at(n);
        out.push(a);
        rest = b;
        i += 1;
    }
    out
}
