//! Header translation between HTTP/1.1 and HTTP/2 (RFC 9113 §8.2–8.3), and the gRPC facts the
//! proxy reads from headers.

use bytes::{BufMut, BytesMut};
use http::header::{HeaderMap, HeaderName, HeaderValue};

use crate::core::http1::fields::is_authority;
use crate::core::http1::{itoa, scratch, BodyKind, ResponseHead};

/// Fields that are connection-specific in HTTP/1 and must not appear in HTTP/2 (§8.2.2);
/// `te` is allowed only as `trailers` and handled apart. Framing is re-derived per side.
const CONNECTION_SPECIFIC: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "http2-settings",
    "host",
    "content-length",
];

fn is_connection_specific(name: &str) -> bool {
    CONNECTION_SPECIFIC.contains(&name)
}

/// The largest Content-Length an HTTP/1.1 head carries: the 19 digits Ringside's request
/// parser accepts (`u64::MAX` has 20), so what goes upstream is what it would accept itself.
const MAX_CONTENT_LENGTH: u64 = 9_999_999_999_999_999_999;

/// Why a request cannot be translated.
#[derive(Debug, thiserror::Error)]
pub enum Malformed {
    #[error("invalid field {0}")]
    Field(String),
    #[error("missing :authority and Host")]
    NoAuthority,
    #[error("CONNECT is not supported")]
    Connect,
}

/// Adds HTTP/1 fields (already stripped of hop-by-hop ones) to an HTTP/2 header map.
pub fn extend_from_h1<'a>(
    map: &mut HeaderMap,
    fields: impl Iterator<Item = (&'a [u8], &'a [u8])>,
) -> Result<(), Malformed> {
    for (name, value) in fields {
        let name = HeaderName::from_bytes(name)
            .map_err(|_| Malformed::Field(String::from_utf8_lossy(name).into_owned()))?;
        if is_connection_specific(name.as_str()) || name == http::header::TE {
            continue;
        }
        let value = HeaderValue::from_bytes(value)
            .map_err(|_| Malformed::Field(name.as_str().to_owned()))?;
        map.append(name, value);
    }
    Ok(())
}

/// Appends the client (its IP, formatted once per connection) to `x-forwarded-for` and sets
/// `x-forwarded-proto` if absent.
pub fn add_forwarded(map: &mut HeaderMap, client: &str, proto: &'static str) {
    let xff = HeaderName::from_static("x-forwarded-for");
    let value = match joined_xff(map, client) {
        Some(v) => HeaderValue::from_bytes(&v),
        None => HeaderValue::from_str(client),
    };
    if let Ok(v) = value {
        map.insert(xff, v);
    }
    let proto_name = HeaderName::from_static("x-forwarded-proto");
    if !map.contains_key(&proto_name) {
        map.insert(proto_name, HeaderValue::from_static(proto));
    }
}

/// Sets Ringside's own fields (`traceparent`, `x-forwarded-client-cert`), replacing any the
/// client sent.
pub fn insert_extra(map: &mut HeaderMap, extra: &[(&str, &[u8])]) {
    for (name, value) in extra {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value),
        ) {
            map.insert(n, v);
        }
    }
}

/// Every `x-forwarded-for` value the request carried, joined, with `client` appended; `None`
/// when it carried none (the common case: then the field is just `client`).
fn joined_xff(map: &HeaderMap, client: &str) -> Option<Vec<u8>> {
    let mut prev = map.get_all("x-forwarded-for").iter().peekable();
    prev.peek()?;
    let mut out = Vec::with_capacity(64);
    for v in prev {
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b", ");
    }
    out.extend_from_slice(client.as_bytes());
    Some(out)
}

/// The HTTP/1.1 request head for an HTTP/2 request: origin-form target, `Host` from
/// `:authority`, cookies rejoined (§8.2.3), connection-specific fields dropped, framing
/// re-derived from `body`.
pub fn h1_request_head(
    parts: &http::request::Parts,
    body: BodyKind,
    client: &str,
    proto: &str,
    extra: &[(&str, &[u8])],
) -> Result<BytesMut, Malformed> {
    if parts.method == http::Method::CONNECT {
        return Err(Malformed::Connect);
    }
    if matches!(body, BodyKind::Length(n) if n > MAX_CONTENT_LENGTH) {
        return Err(Malformed::Field("content-length".into()));
    }
    let host = match parts.uri.authority() {
        Some(a) => a.as_str().as_bytes().to_vec(),
        None => parts
            .headers
            .get(http::header::HOST)
            .map(|h| h.as_bytes().to_vec())
            .ok_or(Malformed::NoAuthority)?,
    };
    // What `http` accepts as an authority (userinfo, RFC 9113 §8.3.1 forbids it) or as a Host
    // value (spaces, `/`) is more than an HTTP/1.1 upstream must: refused, not forwarded.
    if !is_authority(&host) {
        return Err(Malformed::Field(":authority".into()));
    }
    let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    // `http` takes `?q` as a path and query; RFC 9113 §8.3.1 wants `/` first (or `*` for
    // OPTIONS), and so does an HTTP/1.1 upstream's request line.
    if !(target.starts_with('/') || (target == "*" && parts.method == http::Method::OPTIONS)) {
        return Err(Malformed::Field(":path".into()));
    }
    let headers = &parts.headers;
    // Into the worker's head buffer: no allocation per head.
    Ok(scratch::encode(512, |out| {
        out.put_slice(parts.method.as_str().as_bytes());
        out.put_u8(b' ');
        out.put_slice(target.as_bytes());
        out.put_slice(b" HTTP/1.1\r\nhost: ");
        out.put_slice(&host);
        out.put_slice(b"\r\n");
        let mut cookies: Vec<&[u8]> = Vec::new();
        for (name, value) in headers {
            if name == http::header::COOKIE {
                cookies.push(value.as_bytes());
                continue;
            }
            // `te: trailers` means nothing to an HTTP/1 upstream that we could honour.
            if is_connection_specific(name.as_str())
                || name == http::header::TE
                || name.as_str() == "x-forwarded-for"
            {
                continue;
            }
            put_field(out, name.as_str().as_bytes(), value.as_bytes());
        }
        match joined_xff(headers, client) {
            Some(v) => put_field(out, b"x-forwarded-for", &v),
            None => put_field(out, b"x-forwarded-for", client.as_bytes()),
        }
        if !headers.contains_key("x-forwarded-proto") {
            put_field(out, b"x-forwarded-proto", proto.as_bytes());
        }
        if !cookies.is_empty() {
            put_field(out, b"cookie", &cookies.join(&b"; "[..]));
        }
        for (name, value) in extra {
            put_field(out, name.as_bytes(), value);
        }
        match body {
            BodyKind::Length(n) => put_field(out, b"content-length", itoa(n, &mut [0u8; 20])),
            BodyKind::Chunked => put_field(out, b"transfer-encoding", b"chunked"),
            BodyKind::Empty | BodyKind::CloseDelimited => {}
        }
        out.put_slice(b"\r\n");
    }))
}

/// The HTTP/1.1 response head for an HTTP/2 response, framed as `body` says. `close` adds
/// `Connection: close`, `keep_alive` adds `Connection: keep-alive` (an HTTP/1.0 client), and
/// `kept_length` is the Content-Length a bodiless HEAD or 304 response keeps (RFC 9110 §8.6).
pub fn h1_response_head(
    parts: &http::response::Parts,
    body: BodyKind,
    close: bool,
    keep_alive: bool,
    kept_length: Option<u64>,
) -> BytesMut {
    // Into the worker's head buffer: no allocation per head.
    scratch::encode(512, |out| {
        out.put_slice(b"HTTP/1.1 ");
        out.put_slice(parts.status.as_str().as_bytes());
        out.put_u8(b' ');
        out.put_slice(
            parts
                .status
                .canonical_reason()
                .unwrap_or("Unknown")
                .as_bytes(),
        );
        out.put_slice(b"\r\n");
        for (name, value) in &parts.headers {
            if is_connection_specific(name.as_str()) || name == http::header::TE {
                continue;
            }
            put_field(out, name.as_str().as_bytes(), value.as_bytes());
        }
        match (body, kept_length) {
            (BodyKind::Length(n), _) | (_, Some(n)) => {
                put_field(out, b"content-length", itoa(n, &mut [0u8; 20]))
            }
            (BodyKind::Chunked, None) => put_field(out, b"transfer-encoding", b"chunked"),
            _ => {}
        }
        if close {
            put_field(out, b"connection", b"close");
        } else if keep_alive {
            put_field(out, b"connection", b"keep-alive");
        }
        out.put_slice(b"\r\n");
    })
}

/// An HTTP/1 response head as an HTTP/2 response.
pub fn h2_response(head: &ResponseHead) -> Result<http::Response<()>, Malformed> {
    let mut resp = http::Response::new(());
    *resp.status_mut() = http::StatusCode::from_u16(head.status())
        .map_err(|_| Malformed::Field(":status".into()))?;
    extend_from_h1(resp.headers_mut(), head.end_to_end_fields())?;
    // A HEAD or 304 response's Content-Length describes the body it would have had.
    if let (BodyKind::Length(n), _) | (_, Some(n)) = (head.body(), kept_length(head)) {
        resp.headers_mut()
            .insert(http::header::CONTENT_LENGTH, HeaderValue::from(n));
    }
    Ok(resp)
}

/// The Content-Length a bodiless response keeps: HEAD and 304 responses describe the body
/// they would have had; a 204 (or 1xx) never carries one (RFC 9110 §8.6).
fn kept_length(head: &ResponseHead) -> Option<u64> {
    if length_forbidden(head.status()) {
        return None;
    }
    match head.body() {
        BodyKind::Empty => head
            .header("content-length")
            .and_then(|v| std::str::from_utf8(v).ok()?.parse().ok()),
        _ => None,
    }
}

/// Whether a response with `status` must never carry Content-Length (RFC 9110 §8.6: 1xx and
/// 204), whatever its upstream sent: the one rule every protocol pair applies.
pub fn length_forbidden(status: u16) -> bool {
    status == 204 || status < 200
}

/// HTTP/2 trailers as HTTP/1 trailer lines, each ending in CRLF.
pub fn h1_trailer_lines(map: &HeaderMap) -> Vec<u8> {
    let mut out = BytesMut::new();
    for (name, value) in map {
        put_field(&mut out, name.as_str().as_bytes(), value.as_bytes());
    }
    out.to_vec()
}

/// HTTP/1 trailer lines as an HTTP/2 trailer map; `None` if they do not parse.
pub fn parse_h1_trailers(lines: &[u8]) -> Option<HeaderMap> {
    let mut map = HeaderMap::new();
    if lines.is_empty() {
        return Some(map);
    }
    let mut with_end = lines.to_vec();
    with_end.extend_from_slice(b"\r\n");
    let mut fields = [httparse::EMPTY_HEADER; 64];
    match httparse::parse_headers(&with_end, &mut fields) {
        Ok(httparse::Status::Complete((_, parsed))) => {
            let iter = parsed.iter().map(|h| (h.name.as_bytes(), h.value));
            extend_from_h1(&mut map, iter).ok()?;
            Some(map)
        }
        _ => None,
    }
}

fn put_field(out: &mut BytesMut, name: &[u8], value: &[u8]) {
    out.put_slice(name);
    out.put_slice(b": ");
    out.put_slice(value);
    out.put_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn h2_request_becomes_an_origin_form_h1_head() {
        let req = http::Request::builder()
            .method("POST")
            .uri("http://app.local:8080/a/b?x=1")
            .header("cookie", "a=1")
            .header("cookie", "b=2")
            .header("te", "trailers")
            .header("x-forwarded-for", "10.0.0.1")
            .body(())
            .expect("request");
        let (parts, ()) = req.into_parts();
        let head = h1_request_head(
            &parts,
            BodyKind::Chunked,
            "127.0.0.9",
            "http",
            &[("traceparent", b"00-x")],
        )
        .expect("head");
        let text = std::str::from_utf8(&head).expect("ascii");
        assert!(
            text.starts_with("POST /a/b?x=1 HTTP/1.1\r\nhost: app.local:8080\r\n"),
            "{text}"
        );
        assert!(text.contains("cookie: a=1; b=2\r\n"), "{text}");
        assert!(
            text.contains("x-forwarded-for: 10.0.0.1, 127.0.0.9\r\n"),
            "{text}"
        );
        assert!(text.contains("x-forwarded-proto: http\r\n"), "{text}");
        assert!(text.contains("traceparent: 00-x\r\n"), "{text}");
        assert!(text.contains("transfer-encoding: chunked\r\n"), "{text}");
        assert!(!text.contains("te: trailers"), "{text}");
        assert!(text.ends_with("\r\n\r\n"));
    }

    #[test]
    fn connect_and_missing_authority_are_refused() {
        let (parts, ()) = http::Request::builder()
            .method("CONNECT")
            .uri("example.com:443")
            .body(())
            .expect("request")
            .into_parts();
        let ip = "127.0.0.1";
        assert!(matches!(
            h1_request_head(&parts, BodyKind::Empty, ip, "http", &[]),
            Err(Malformed::Connect)
        ));
        let (parts, ()) = http::Request::builder()
            .uri("/x")
            .body(())
            .expect("request")
            .into_parts();
        assert!(matches!(
            h1_request_head(&parts, BodyKind::Empty, ip, "http", &[]),
            Err(Malformed::NoAuthority)
        ));
    }

    /// Found by fuzzing (fuzz/corpus/h2_h1_headers/regression-*): an `:authority` with
    /// userinfo, or a Host that is no authority, became a Host line an HTTP/1.1 upstream
    /// refuses (Ringside's own parser answers 400 to it).
    #[test]
    fn authorities_an_http1_upstream_would_refuse_are_refused() {
        let ip = "127.0.0.1";
        let (parts, ()) = http::Request::builder()
            .uri("http://user@app.local/x")
            .body(())
            .expect("request")
            .into_parts();
        assert!(matches!(
            h1_request_head(&parts, BodyKind::Empty, ip, "http", &[]),
            Err(Malformed::Field(_))
        ));
        for bad in ["a b", "a/b", "u@a"] {
            let (parts, ()) = http::Request::builder()
                .uri("/x")
                .header("host", bad)
                .body(())
                .expect("request")
                .into_parts();
            assert!(
                matches!(
                    h1_request_head(&parts, BodyKind::Empty, ip, "http", &[]),
                    Err(Malformed::Field(_))
                ),
                "{bad}"
            );
        }
        let (parts, ()) = http::Request::builder()
            .uri("http://[::1]:8080/x")
            .body(())
            .expect("request")
            .into_parts();
        assert!(h1_request_head(&parts, BodyKind::Empty, ip, "http", &[]).is_ok());
    }

    /// Found by fuzzing (fuzz/corpus/h2_h1_headers/regression-*): an HTTP/2 content-length
    /// of 20 digits, or a `:path` that is no origin-form (`?q`, `*` but for OPTIONS), became an
    /// HTTP/1.1 head that HTTP/1.1 parsers refuse.
    #[test]
    fn lengths_and_paths_an_http1_upstream_would_refuse_are_refused() {
        let (parts, ()) = http::Request::builder()
            .method("POST")
            .uri("http://a/x")
            .body(())
            .expect("request")
            .into_parts();
        let ip = "127.0.0.1";
        let huge = BodyKind::Length(MAX_CONTENT_LENGTH + 1);
        assert!(matches!(
            h1_request_head(&parts, huge, ip, "http", &[]),
            Err(Malformed::Field(_))
        ));
        for (method, path) in [("GET", "?q"), ("GET", "*")] {
            let (parts, ()) = http::Request::builder()
                .method(method)
                .uri(
                    http::Uri::builder()
                        .scheme("http")
                        .authority("a")
                        .path_and_query(path)
                        .build()
                        .expect("uri"),
                )
                .body(())
                .expect("request")
                .into_parts();
            assert!(
                matches!(
                    h1_request_head(&parts, BodyKind::Empty, ip, "http", &[]),
                    Err(Malformed::Field(_))
                ),
                "{path}"
            );
        }
        let max = BodyKind::Length(MAX_CONTENT_LENGTH);
        let head = h1_request_head(&parts, max, ip, "http", &[]).expect("19 digits");
        let mut buf = BytesMut::from(&head[..]);
        let limits = crate::core::http1::Limits {
            max_header_bytes: 8192,
            max_headers: 64,
        };
        let parsed = crate::core::http1::parse_request(&mut buf, &limits)
            .expect("valid")
            .expect("complete");
        assert_eq!(parsed.body(), max);
    }

    #[test]
    fn trailers_round_trip_between_versions() {
        let mut t = HeaderMap::new();
        t.insert("grpc-status", HeaderValue::from_static("5"));
        t.insert("grpc-message", HeaderValue::from_static("not%20found"));
        let lines = h1_trailer_lines(&t);
        let back = parse_h1_trailers(&lines).expect("parses");
        assert_eq!(back, t);
        assert_eq!(crate::core::h2::grpc::grpc_status(&back), Some("5"));
        assert!(parse_h1_trailers(b"").expect("empty").is_empty());
    }

    #[test]
    fn connection_specific_fields_never_cross() {
        let mut map = HeaderMap::new();
        let fields: Vec<(&[u8], &[u8])> = vec![
            (b"Keep-Alive", b"timeout=5"),
            (b"Upgrade", b"h2c"),
            (b"TE", b"trailers"),
            (b"X-App", b"1"),
        ];
        extend_from_h1(&mut map, fields.into_iter()).expect("valid");
        assert_eq!(map.len(), 1);
        assert_eq!(map.get("x-app").map(|v| v.as_bytes()), Some(&b"1"[..]));
    }
}
