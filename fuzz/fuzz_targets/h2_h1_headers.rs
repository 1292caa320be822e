//! Header translation between HTTP/2 and HTTP/1.1 (`core::bridge::headers`).
//!
//! Invariants, beyond not panicking:
//! - an HTTP/2 request (as the h2 crate hands it over: method, scheme, authority, path and
//!   fields that `http` accepts) either is refused as malformed or becomes an HTTP/1.1 head
//!   that Ringside's own strict parser (what an HTTP/1.1 upstream must accept) reads back
//!   with the same method, target, Host, framing and end-to-end fields;
//! - an HTTP/1.1 response, translated to HTTP/2 and back, keeps its status, framing and
//!   end-to-end fields (per name, in order);
//! - trailers translated HTTP/2 → HTTP/1 → HTTP/2 are unchanged.
#![no_main]

use bytes::BytesMut;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use ringside::core::bridge::headers::{
    h1_request_head, h1_response_head, h1_trailer_lines, h2_response, parse_h1_trailers,
};
use ringside::core::http1::{parse_request, parse_response, BodyKind, Limits};
use ringside_fuzz::{owned_fields, LIMITS};

const CONNECTION_SPECIFIC: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "http2-settings",
    "host",
    "content-length",
    "te",
];

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let _ = match u.int_in_range(0..=2u8) {
        Ok(0) => request(&mut u),
        Ok(1) => response(&mut u),
        Ok(_) => trailers(&mut u),
        Err(_) => Ok(()),
    };
});

fn fields(u: &mut Unstructured<'_>) -> Result<HeaderMap> {
    let mut map = HeaderMap::new();
    for _ in 0..u.int_in_range(0..=12u8)? {
        let name: &[u8] = u.arbitrary()?;
        let value: &[u8] = u.arbitrary()?;
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
            map.append(n, v);
        }
    }
    Ok(map)
}

fn body(u: &mut Unstructured<'_>) -> Result<BodyKind> {
    Ok(match u.int_in_range(0..=2u8)? {
        0 => BodyKind::Empty,
        1 => BodyKind::Length(u.arbitrary()?),
        _ => BodyKind::Chunked,
    })
}

fn request(u: &mut Unstructured<'_>) -> Result<()> {
    let method: &[u8] = u.arbitrary()?;
    let authority: &[u8] = u.arbitrary()?;
    let path: &[u8] = u.arbitrary()?;
    let with_authority: bool = u.arbitrary()?;
    let Ok(method) = http::Method::from_bytes(method) else {
        return Ok(());
    };
    let mut uri = http::Uri::builder().path_and_query(path);
    if with_authority {
        uri = uri.scheme("http").authority(authority);
    }
    let Ok(uri) = uri.build() else {
        return Ok(());
    };
    let headers = fields(u)?;
    let body = body(u)?;
    let mut req = http::Request::new(());
    *req.method_mut() = method;
    *req.uri_mut() = uri;
    *req.headers_mut() = headers;
    let (parts, ()) = req.into_parts();
    let Ok(head) = h1_request_head(&parts, body, "10.0.0.1", "http", &[]) else {
        return Ok(());
    };
    let mut buf = head.clone();
    let limits = Limits {
        max_header_bytes: head.len() + 1,
        max_headers: 512,
    };
    let parsed = match parse_request(&mut buf, &limits) {
        Ok(Some(h)) => h,
        other => panic!("the HTTP/1.1 head for {parts:?} does not parse: {other:?}\n{head:?}"),
    };
    assert!(buf.is_empty());
    assert_eq!(parsed.method(), parts.method.as_str());
    let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    assert_eq!(parsed.target(), target);
    let host = match parts.uri.authority() {
        Some(a) => a.as_str().as_bytes(),
        None => parts.headers.get("host").map_or(&b""[..], |h| h.as_bytes()),
    };
    assert_eq!(parsed.host().unwrap_or("").as_bytes(), host);
    assert_eq!(parsed.body(), body);

    // Every end-to-end field arrives, per name in order; cookies joined into one field.
    let translated = |n: &str| {
        !(CONNECTION_SPECIFIC.contains(&n) || n == "cookie" || n.starts_with("x-forwarded-"))
    };
    let mut want: Vec<(Vec<u8>, Vec<u8>)> = parts
        .headers
        .iter()
        .filter(|(n, _)| translated(n.as_str()))
        .map(|(n, v)| (n.as_str().as_bytes().to_vec(), trim(v.as_bytes())))
        .collect();
    let mut got: Vec<(Vec<u8>, Vec<u8>)> = owned_fields(parsed.end_to_end_fields())
        .into_iter()
        .filter(|(n, _)| translated(&String::from_utf8_lossy(n)))
        .map(|(n, v)| (n, trim(&v)))
        .collect();
    want.sort_by(|a, b| a.0.cmp(&b.0));
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(got, want, "{head:?}");
    let cookies: Vec<&[u8]> = parts
        .headers
        .get_all("cookie")
        .iter()
        .map(HeaderValue::as_bytes)
        .collect();
    if !cookies.is_empty() {
        let joined = trim(&cookies.join(&b"; "[..]));
        assert_eq!(parsed.header("cookie"), Some(&joined[..]));
    }
    Ok(())
}

fn response(u: &mut Unstructured<'_>) -> Result<()> {
    let req_is_head: bool = u.arbitrary()?;
    let rest = u.bytes(u.len())?;
    let mut buf = BytesMut::from(rest);
    let Ok(Some(h1)) = parse_response(&mut buf, req_is_head, &LIMITS) else {
        return Ok(());
    };
    let Ok(h2) = h2_response(&h1) else {
        return Ok(());
    };
    let (parts, ()) = h2.into_parts();
    let kept = parts
        .headers
        .get("content-length")
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .filter(|_| h1.body() == BodyKind::Empty);
    let mut back = h1_response_head(&parts, h1.body(), false, false, kept);
    let text = back.clone();
    let again = match parse_response(&mut back, req_is_head, &LIMITS) {
        Ok(Some(h)) => h,
        other => panic!("the translated head does not parse: {other:?}\n{text:?}"),
    };
    assert_eq!(again.status(), h1.status());
    assert_eq!(again.body(), h1.body(), "{text:?}");
    let lower = |fields: Vec<(Vec<u8>, Vec<u8>)>| {
        let mut v: Vec<_> = fields
            .into_iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v))
            .filter(|(n, _)| n != b"te")
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    assert_eq!(
        lower(owned_fields(again.end_to_end_fields())),
        lower(owned_fields(h1.end_to_end_fields())),
        "{text:?}"
    );
    Ok(())
}

fn trailers(u: &mut Unstructured<'_>) -> Result<()> {
    let map = fields(u)?;
    let lines = h1_trailer_lines(&map);
    let back = parse_h1_trailers(&lines);
    let translated: HeaderMap = map
        .iter()
        .filter(|(n, _)| !CONNECTION_SPECIFIC.contains(&n.as_str()))
        .map(|(n, v)| (n.clone(), trimmed(v)))
        .fold(HeaderMap::new(), |mut m, (n, v)| {
            m.append(n, v);
            m
        });
    assert_eq!(back.as_ref(), Some(&translated), "{lines:?}");
    Ok(())
}

/// HTTP/1 field values never begin or end with whitespace (RFC 9110 §5.5: a parser excludes
/// it), while `http` lets an HTTP/2 value keep it: the one documented difference.
fn trim(v: &[u8]) -> Vec<u8> {
    let start = v
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t'))
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .map_or(start, |i| i + 1);
    v[start..end.max(start)].to_vec()
}

fn trimmed(v: &HeaderValue) -> HeaderValue {
    HeaderValue::from_bytes(&trim(v.as_bytes())).unwrap_or_else(|_| v.clone())
}
