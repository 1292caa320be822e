//! Request heads from clients: strict parsing, routing views, and the head sent upstream.

use std::net::IpAddr;

use bytes::{BufMut, Bytes, BytesMut};

use super::error::RequestError;
use super::field_list::FieldList;
use super::fields::{self, content_length, is_authority, list_items};
use super::target::{target, Target};
use super::{BodyKind, Field, Limits, Span, Version};

/// Heads with up to this many fields parse without a heap-allocated header array.
const STACK_HEADERS: usize = 48;
/// Empty lines tolerated before a request line (RFC 9112 §2.2).
const MAX_LEADING_CRLF: usize = 8;

/// A parsed request head. Owns the head's bytes; everything else is spans into them.
#[derive(Debug)]
pub struct RequestHead {
    buf: Bytes,
    p: Parts,
}

/// What the proxy adds or keeps when forwarding a request.
#[derive(Debug)]
pub struct UpstreamOpts<'a> {
    pub client_ip: IpAddr,
    /// Forward `Expect: 100-continue` (off: the proxy answers 100 itself).
    pub forward_expect: bool,
    /// Keep `Connection: upgrade` and `Upgrade` (a WebSocket handshake).
    pub keep_upgrade: bool,
    /// `x-forwarded-proto` value when the client did not send one.
    pub proto: &'a str,
    /// Fields to add (e.g. a `traceparent` the proxy started).
    pub extra: &'a [(&'a str, &'a [u8])],
}

impl RequestHead {
    pub fn method(&self) -> &str {
        self.p.method.str(&self.buf)
    }

    pub fn is_head(&self) -> bool {
        self.method() == "HEAD"
    }

    /// Origin-form target, as forwarded.
    pub fn target(&self) -> &str {
        match &self.p.target {
            Target::Span(s) => s.str(&self.buf),
            Target::Owned(s) => s,
        }
    }

    /// Replaces the target with its normalised form (`core::path`): what routes match on is
    /// what the upstream receives (DESIGN.md §5.14).
    pub fn set_target(&mut self, normalized: String) {
        self.p.target = Target::Owned(normalized);
    }

    /// The target without its query: what routes match on.
    pub fn path(&self) -> &str {
        let t = self.target();
        t.split_once('?').map_or(t, |(p, _)| p)
    }

    /// The authority from Host (or from an absolute-form target), as received.
    pub fn host(&self) -> Option<&str> {
        self.p.host.map(|s| s.str(&self.buf))
    }

    pub fn version(&self) -> Version {
        self.p.version
    }

    pub fn header(&self, lowercase_name: &str) -> Option<&[u8]> {
        fields::find(&self.buf, &self.p.fields, lowercase_name)
    }

    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.p
            .fields
            .iter()
            .map(|f| (f.name.str(&self.buf), f.value.get(&self.buf)))
    }

    pub fn body(&self) -> BodyKind {
        self.p.body
    }

    pub fn keep_alive(&self) -> bool {
        self.p.keep_alive
    }

    pub fn expect_continue(&self) -> bool {
        self.p.expect_continue
    }

    /// The protocol asked for by a valid upgrade request (`websocket`). `h2c` is never
    /// reported: those upgrades are stripped and the request served as HTTP/1.1.
    pub fn upgrade(&self) -> Option<&str> {
        self.p.upgrade.map(|s| s.str(&self.buf))
    }

    /// Appends the head to send upstream: origin-form HTTP/1.1, hop-by-hop fields dropped,
    /// one Host, framing re-derived, `x-forwarded-for` extended.
    pub fn encode_upstream(&self, out: &mut BytesMut, opts: &UpstreamOpts<'_>) {
        out.reserve(self.buf.len() + 128);
        out.put_slice(self.method().as_bytes());
        out.put_u8(b' ');
        out.put_slice(self.target().as_bytes());
        out.put_slice(b" HTTP/1.1\r\n");
        match self.p.host {
            Some(host) => {
                out.put_slice(b"host: ");
                out.put_slice(host.get(&self.buf));
                out.put_slice(b"\r\n");
            }
            // An HTTP/1.0 request may come without one, but what goes upstream is HTTP/1.1,
            // which needs the field: empty when the target has no authority (RFC 9112 §3.2).
            None => out.put_slice(b"host: \r\n"),
        }
        let mut xff: Option<Span> = None;
        let mut has_proto = false;
        for f in self.p.fields.iter() {
            let name = f.name.get(&self.buf);
            if !self.is_end_to_end(name, opts.forward_expect) {
                continue;
            }
            if name.eq_ignore_ascii_case(b"x-forwarded-for") {
                // Joined into one field below, with the client appended.
                if xff.is_none() {
                    xff = Some(f.value);
                } else {
                    put_field(out, name, f.value.get(&self.buf));
                }
                continue;
            }
            has_proto |= name.eq_ignore_ascii_case(b"x-forwarded-proto");
            put_field(out, name, f.value.get(&self.buf));
        }
        match self.p.body {
            BodyKind::Length(n) => {
                out.put_slice(b"content-length: ");
                out.put_slice(itoa(n, &mut [0u8; 20]));
                out.put_slice(b"\r\n");
            }
            BodyKind::Chunked => out.put_slice(b"transfer-encoding: chunked\r\n"),
            BodyKind::Empty | BodyKind::CloseDelimited => {}
        }
        out.put_slice(b"x-forwarded-for: ");
        if let Some(prev) = xff {
            out.put_slice(prev.get(&self.buf));
            out.put_slice(b", ");
        }
        // Formatted in place: `IpAddr`'s Display needs no heap, `to_string` would.
        let _ = std::fmt::Write::write_fmt(out, format_args!("{}", opts.client_ip));
        out.put_slice(b"\r\n");
        if !has_proto {
            out.put_slice(b"x-forwarded-proto: ");
            out.put_slice(opts.proto.as_bytes());
            out.put_slice(b"\r\n");
        }
        for (name, value) in opts.extra {
            put_field(out, name.as_bytes(), value);
        }
        if let (true, Some(up)) = (opts.keep_upgrade, self.p.upgrade) {
            out.put_slice(b"connection: upgrade\r\nupgrade: ");
            out.put_slice(up.get(&self.buf));
            out.put_slice(b"\r\n");
        }
        out.put_slice(b"\r\n");
    }
}

impl RequestHead {
    /// Whether a field travels past this hop: not hop-by-hop, not named by `Connection`, not
    /// Host (carried separately), and `Expect` only when the proxy does not answer it itself.
    fn is_end_to_end(&self, name: &[u8], forward_expect: bool) -> bool {
        !(fields::is_hop_by_hop(name)
            || name.eq_ignore_ascii_case(b"host")
            // Only Ringside vouches for a client certificate (Envoy's SANITIZE_SET).
            || name.eq_ignore_ascii_case(XFCC.as_bytes())
            || fields::listed_in_connection(name, &self.buf, &self.p.connection)
            || (name.eq_ignore_ascii_case(b"expect") && !forward_expect))
    }

    /// The fields that travel past this hop, as received (for translation to HTTP/2).
    pub fn end_to_end_fields(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.p
            .fields
            .iter()
            .map(|f| (f.name.get(&self.buf), f.value.get(&self.buf)))
            .filter(|(n, _)| self.is_end_to_end(n, false))
    }
}

/// `x-forwarded-client-cert`: the verified client certificate, as Envoy sends it upstream.
pub const XFCC: &str = "x-forwarded-client-cert";

fn put_field(out: &mut BytesMut, name: &[u8], value: &[u8]) {
    out.put_slice(name);
    out.put_slice(b": ");
    out.put_slice(value);
    out.put_slice(b"\r\n");
}

/// Formats `n` in decimal into `buf`, without allocating; returns the digits written.
pub fn itoa(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

/// Parses a request head from the front of `buf`. `Ok(None)`: incomplete, read more. On
/// success the head's bytes are split off `buf`, which keeps what follows (body, pipelined
/// requests).
pub fn parse_request(
    buf: &mut BytesMut,
    limits: &Limits,
) -> Result<Option<RequestHead>, RequestError> {
    let skip = buf
        .chunks(2)
        .take(MAX_LEADING_CRLF)
        .take_while(|c| *c == b"\r\n")
        .count()
        * 2;
    let _ = buf.split_to(skip);
    if buf.is_empty() {
        return Ok(None);
    }
    let mut stack = [httparse::EMPTY_HEADER; STACK_HEADERS];
    let parsed = match parse_with(buf, &mut stack, limits) {
        Err(RequestError::TooManyHeaders) if limits.max_headers > STACK_HEADERS => {
            let mut heap = vec![httparse::EMPTY_HEADER; limits.max_headers + 1];
            parse_with(buf, &mut heap, limits)?
        }
        other => other?,
    };
    match parsed {
        // Spans are offsets from the start of `buf`, so they stay valid in the split-off head.
        Some((len, p)) => Ok(Some(RequestHead {
            buf: buf.split_to(len).freeze(),
            p,
        })),
        None if buf.len() > limits.max_header_bytes => {
            // Still no end of the request line: it is the line that is too long.
            let line_done = memchr::memchr(b'\n', &buf[..limits.max_header_bytes]).is_some();
            Err(if line_done {
                RequestError::HeadersTooLarge
            } else {
                RequestError::UriTooLong
            })
        }
        None => Ok(None),
    }
}

fn map_httparse(e: httparse::Error) -> RequestError {
    match e {
        httparse::Error::Version => RequestError::Version,
        httparse::Error::TooManyHeaders => RequestError::TooManyHeaders,
        httparse::Error::HeaderName => RequestError::Bad("invalid header field name"),
        httparse::Error::HeaderValue => RequestError::Bad("invalid header field value"),
        httparse::Error::Token => RequestError::Bad("invalid method"),
        httparse::Error::NewLine | httparse::Error::Status => {
            RequestError::Bad("malformed request line")
        }
    }
}

/// `METHOD SP target SP HTTP/x.y`: three parts, so a version error is about the version (505)
/// rather than, say, a space inside the target (400).
fn well_formed_request_line(buf: &[u8]) -> bool {
    let line = buf.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let parts: Vec<&[u8]> = line.split(|b| *b == b' ').collect();
    parts.len() == 3 && parts[2].starts_with(b"HTTP/")
}

/// Whether the request line ends in something that at least claims to be an HTTP version.
fn names_a_version(buf: &[u8]) -> bool {
    let line = buf.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    line.rsplit(|b| *b == b' ')
        .next()
        .is_some_and(|v| v.starts_with(b"HTTP/"))
}

/// What parsing found, as spans into the head's bytes.
#[derive(Debug)]
struct Parts {
    method: Span,
    target: Target,
    version: Version,
    fields: FieldList,
    host: Option<Span>,
    body: BodyKind,
    keep_alive: bool,
    expect_continue: bool,
    upgrade: Option<Span>,
    connection: Vec<Span>,
}

/// Tokenises with httparse into `headers`, then applies every rule httparse leaves to us.
fn parse_with<'b>(
    buf: &'b [u8],
    headers: &mut [httparse::Header<'b>],
    limits: &Limits,
) -> Result<Option<(usize, Parts)>, RequestError> {
    let mut req = httparse::Request::new(headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::Version) if !names_a_version(buf) => {
            return Err(RequestError::NotHttp)
        }
        Err(httparse::Error::Version) if !well_formed_request_line(buf) => {
            return Err(RequestError::Bad("malformed request line"))
        }
        Err(e) => return Err(map_httparse(e)),
    };
    if len > limits.max_header_bytes {
        // RFC 9112 §3: a request line longer than the limit on its own is 414, not 431.
        let line = memchr::memchr(b'\n', buf).unwrap_or(len);
        return Err(if line >= limits.max_header_bytes {
            RequestError::UriTooLong
        } else {
            RequestError::HeadersTooLarge
        });
    }
    if req.headers.len() > limits.max_headers {
        return Err(RequestError::TooManyHeaders);
    }
    if fields::has_bare_cr_or_lf(&buf[..len]) {
        return Err(RequestError::Bad("bare CR or LF in the head"));
    }
    let version = match req.version {
        Some(0) => Version::Http10,
        Some(1) => Version::Http11,
        _ => return Err(RequestError::Version),
    };
    let method = req.method.ok_or(RequestError::Bad("missing method"))?;
    let raw_target = req.path.ok_or(RequestError::Bad("missing target"))?;
    let method_span = Span::of(buf, method.as_bytes());

    let mut fields = FieldList::with_capacity(req.headers.len());
    let mut host = None;
    let mut hosts = 0;
    let mut length = None;
    let mut chunked = false;
    let mut other_coding = false;
    let mut connection = Vec::new();
    let (mut close, mut keep_alive_token, mut upgrade_token) = (false, false, false);
    let mut upgrade_value = None;
    let mut expect_continue = false;

    for h in req.headers.iter() {
        let name = h.name.as_bytes();
        let value = h.value;
        if name.is_empty() {
            return Err(RequestError::Bad("empty header field name"));
        }
        if value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            return Err(RequestError::Bad(
                "control character in a header field value",
            ));
        }
        let field = Field {
            name: Span::of(buf, name),
            value: Span::of(buf, value),
        };
        match name.len() {
            4 if name.eq_ignore_ascii_case(b"host") => {
                hosts += 1;
                if hosts > 1 {
                    return Err(RequestError::Bad("more than one Host field"));
                }
                if !is_authority(value) {
                    return Err(RequestError::Bad("invalid Host"));
                }
                host = Some(field.value);
            }
            14 if name.eq_ignore_ascii_case(b"content-length") => {
                if length.is_some() {
                    return Err(RequestError::Bad("more than one Content-Length field"));
                }
                length =
                    Some(content_length(value).ok_or(RequestError::Bad("invalid Content-Length"))?);
            }
            17 if name.eq_ignore_ascii_case(b"transfer-encoding") => {
                if list_items(value).next().is_none() {
                    return Err(RequestError::Bad("empty Transfer-Encoding"));
                }
                for coding in list_items(value) {
                    if chunked {
                        // Anything after `chunked` (even another `chunked`) is ambiguous.
                        return Err(RequestError::Bad(
                            "chunked is not the final transfer coding",
                        ));
                    }
                    if coding.eq_ignore_ascii_case(b"chunked") {
                        chunked = true;
                    } else {
                        other_coding = true;
                    }
                }
            }
            10 if name.eq_ignore_ascii_case(b"connection") => {
                for t in list_items(value) {
                    if t.eq_ignore_ascii_case(b"close") {
                        close = true;
                    } else if t.eq_ignore_ascii_case(b"keep-alive") {
                        keep_alive_token = true;
                    } else if t.eq_ignore_ascii_case(b"upgrade") {
                        upgrade_token = true;
                    } else {
                        connection.push(Span::of(buf, t));
                    }
                }
            }
            7 if name.eq_ignore_ascii_case(b"upgrade") => {
                upgrade_value = list_items(value).next().map(|t| Span::of(buf, t));
            }
            6 if name.eq_ignore_ascii_case(b"expect") => {
                expect_continue = fields::trim_ows(value).eq_ignore_ascii_case(b"100-continue");
            }
            _ => {}
        }
        fields.push(field);
    }

    if other_coding {
        // `gzip` alone has no end we could find; `gzip, chunked` would mean forwarding a
        // coding we do not decode. Either way: not implemented, and never guessed at.
        return Err(RequestError::NotImplemented(
            "transfer codings other than chunked",
        ));
    }
    if chunked && version == Version::Http10 {
        return Err(RequestError::Bad(
            "Transfer-Encoding in an HTTP/1.0 request",
        ));
    }
    if chunked && length.is_some() {
        return Err(RequestError::Bad(
            "both Content-Length and Transfer-Encoding",
        ));
    }
    let body = match (chunked, length) {
        (true, _) => BodyKind::Chunked,
        (false, Some(n)) => BodyKind::Length(n),
        (false, None) => BodyKind::Empty,
    };

    let (target, absolute_host) = target(buf, method, raw_target)?;
    if absolute_host.is_some() {
        host = absolute_host;
    } else if version == Version::Http11 && hosts == 0 {
        return Err(RequestError::Bad("missing Host"));
    }

    let upgrade = match (upgrade_token, upgrade_value) {
        (true, Some(u)) if !u.get(buf).eq_ignore_ascii_case(b"h2c") => Some(u),
        _ => None,
    };
    let keep_alive = match version {
        Version::Http11 => !close,
        Version::Http10 => keep_alive_token && !close,
    };
    let parts = Parts {
        method: method_span,
        target,
        version,
        fields,
        host,
        body,
        keep_alive,
        expect_continue,
        upgrade,
        connection,
    };
    Ok(Some((len, parts)))
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
