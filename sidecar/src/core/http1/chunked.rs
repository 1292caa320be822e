//! Chunked transfer coding (RFC 9112 §7.1): a streaming decoder that hands out data as soon as
//! it arrives, and the canonical encoding we forward (our sizes, no extensions, filtered
//! trailers).

use bytes::{BufMut, Bytes, BytesMut};

use super::error::BodyError;
use super::fields;

/// Longest chunk-size line, extensions included.
const MAX_SIZE_LINE: usize = 4096;
/// Largest trailer section.
const MAX_TRAILERS: usize = 16 * 1024;

pub const CHUNK_END: &[u8] = b"\r\n";

/// Trailer fields that could change framing, routing or connection handling downstream.
const FORBIDDEN_TRAILERS: [&str; 9] = [
    "content-length",
    "transfer-encoding",
    "host",
    "connection",
    "te",
    "trailer",
    "keep-alive",
    "upgrade",
    "content-encoding",
];

#[derive(Debug)]
pub enum Chunk {
    /// Body bytes, split zero-copy from the input buffer.
    Data(Bytes),
    /// The trailer section's field lines (each ending in CRLF; empty if none), once, at the
    /// end of the body.
    Trailers(Bytes),
}

/// Checks the chunked body bytes already in hand (those that arrived with the head) without
/// consuming them, so a body whose framing is visibly broken is refused before its head goes
/// upstream. Bytes past the body's end (a pipelined request) are not looked at.
///
/// # Errors
/// The first framing error the decoder finds.
pub fn check_in_hand(bytes: &[u8]) -> Result<(), BodyError> {
    let mut probe = BytesMut::from(bytes);
    let mut dec = ChunkedDecoder::new();
    loop {
        match dec.decode(&mut probe)? {
            Some(Chunk::Data(_)) => {}
            Some(Chunk::Trailers(_)) | None => return Ok(()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Size,
    Data(u64),
    DataEnd,
    Trailers,
    Done,
}

#[derive(Debug)]
pub struct ChunkedDecoder {
    state: State,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkedDecoder {
    pub fn new() -> Self {
        Self { state: State::Size }
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Consumes what it can from the front of `buf`. `Ok(None)`: need more bytes.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Chunk>, BodyError> {
        loop {
            match self.state {
                State::Size => {
                    let Some(lf) = memchr::memchr(b'\n', buf) else {
                        if buf.len() > MAX_SIZE_LINE {
                            return Err(BodyError("chunk-size line too long"));
                        }
                        return Ok(None);
                    };
                    if lf == 0 || buf[lf - 1] != b'\r' {
                        return Err(BodyError("chunk-size line not ended by CRLF"));
                    }
                    if lf > MAX_SIZE_LINE {
                        return Err(BodyError("chunk-size line too long"));
                    }
                    let size = parse_size_line(&buf[..lf - 1])?;
                    let _ = buf.split_to(lf + 1);
                    self.state = if size == 0 {
                        State::Trailers
                    } else {
                        State::Data(size)
                    };
                }
                State::Data(left) => {
                    if buf.is_empty() {
                        return Ok(None);
                    }
                    let take = (buf.len() as u64).min(left) as usize;
                    let data = buf.split_to(take).freeze();
                    self.state = if take as u64 == left {
                        State::DataEnd
                    } else {
                        State::Data(left - take as u64)
                    };
                    return Ok(Some(Chunk::Data(data)));
                }
                State::DataEnd => {
                    if buf.len() < 2 {
                        return Ok(None);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(BodyError("chunk data not followed by CRLF"));
                    }
                    let _ = buf.split_to(2);
                    self.state = State::Size;
                }
                State::Trailers => {
                    if buf.starts_with(b"\r\n") {
                        let _ = buf.split_to(2);
                        self.state = State::Done;
                        return Ok(Some(Chunk::Trailers(Bytes::new())));
                    }
                    let Some(end) = memchr::memmem::find(buf, b"\r\n\r\n") else {
                        if buf.len() > MAX_TRAILERS {
                            return Err(BodyError("invalid or oversized trailer section"));
                        }
                        return Ok(None);
                    };
                    if end + 4 > MAX_TRAILERS {
                        return Err(BodyError("trailer section too large"));
                    }
                    let section = buf.split_to(end + 4).freeze();
                    let fields = section.slice(..end + 2);
                    validate_trailers(&fields)?;
                    self.state = State::Done;
                    return Ok(Some(Chunk::Trailers(fields)));
                }
                State::Done => return Ok(None),
            }
        }
    }
}

/// `1*HEXDIG [ chunk-ext ]`: no sign, no leading spaces, no `0x`, at most 16 digits.
fn parse_size_line(line: &[u8]) -> Result<u64, BodyError> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return Err(BodyError("missing chunk size"));
    }
    let (hex, ext) = line.split_at(digits);
    // Leading zeros are legal; what matters is that the value fits.
    let significant = hex.iter().skip_while(|b| **b == b'0').count();
    if significant > 16 {
        return Err(BodyError("chunk size overflows"));
    }
    let mut size: u64 = 0;
    for &b in hex {
        let d = (b as char)
            .to_digit(16)
            .ok_or(BodyError("bad chunk size"))?;
        size = size
            .checked_mul(16)
            .and_then(|s| s.checked_add(u64::from(d)))
            .ok_or(BodyError("chunk size overflows"))?;
    }
    let ext = fields::trim_ows(ext);
    if !ext.is_empty()
        && (ext[0] != b';' || ext.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f))
    {
        return Err(BodyError("invalid chunk extension"));
    }
    Ok(size)
}

/// Each trailer line must be `token ":" value` with no folding and no control characters.
fn validate_trailers(section: &[u8]) -> Result<(), BodyError> {
    if fields::has_bare_cr_or_lf(section) {
        return Err(BodyError("bare CR or LF in trailers"));
    }
    for line in section.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let colon = memchr::memchr(b':', line).ok_or(BodyError("trailer field without a colon"))?;
        if !fields::is_token(&line[..colon]) {
            return Err(BodyError("invalid trailer field name"));
        }
        if line[colon + 1..]
            .iter()
            .any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f)
        {
            return Err(BodyError("control character in a trailer value"));
        }
    }
    Ok(())
}

pub fn encode_chunk_header(len: usize, out: &mut BytesMut) {
    let mut digits = [0u8; 16];
    let mut i = digits.len();
    let mut n = len;
    loop {
        i -= 1;
        digits[i] = b"0123456789abcdef"[n % 16];
        n /= 16;
        if n == 0 {
            break;
        }
    }
    out.put_slice(&digits[i..]);
    out.put_slice(b"\r\n");
}

/// The last chunk, the trailers that may be forwarded, and the final CRLF.
pub fn encode_last_chunk(trailers: &[u8], out: &mut BytesMut) {
    out.put_slice(b"0\r\n");
    for line in trailers.split_inclusive(|b| *b == b'\n') {
        let name = line.split(|b| *b == b':').next().unwrap_or_default();
        if line.len() > 2
            && !FORBIDDEN_TRAILERS
                .iter()
                .any(|f| name.eq_ignore_ascii_case(f.as_bytes()))
        {
            out.put_slice(line);
        }
    }
    out.put_slice(b"\r\n");
}

#[cfg(test)]
#[path = "chunked_tests.rs"]
mod tests;
