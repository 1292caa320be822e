//! Responses Ringside writes itself: routing misses, upstream failures, rejected requests.

use bytes::{BufMut, Bytes, BytesMut};

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

/// A complete response with a one-line text body saying what happened, so a person reading
/// `curl` output knows whether the proxy or the app answered.
pub fn response(status: u16, detail: &str, close: bool) -> Bytes {
    let body_len = detail.len() + 1;
    let mut out = BytesMut::with_capacity(160 + detail.len());
    out.put_slice(b"HTTP/1.1 ");
    out.put_slice(status.to_string().as_bytes());
    out.put_u8(b' ');
    out.put_slice(reason(status).as_bytes());
    out.put_slice(b"\r\ncontent-type: text/plain\r\nx-ringside-error: ");
    out.put_slice(detail.as_bytes());
    out.put_slice(b"\r\ncontent-length: ");
    out.put_slice(body_len.to_string().as_bytes());
    if close {
        out.put_slice(b"\r\nconnection: close");
    }
    out.put_slice(b"\r\n\r\n");
    out.put_slice(detail.as_bytes());
    out.put_u8(b'\n');
    out.freeze()
}

pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_response_is_well_framed() {
        let r = response(404, "no route", false);
        let text = std::str::from_utf8(&r).expect("ascii");
        assert!(text.starts_with("HTTP/1.1 404 Not Found\r\n"), "{text}");
        assert!(text.contains("content-length: 9\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\nno route\n"), "{text}");
        assert!(!text.contains("connection: close"));
        assert!(std::str::from_utf8(&response(502, "x", true))
            .expect("ascii")
            .contains("connection: close"));
    }
}
