//! Responses Ringside writes itself to HTTP/1 clients: routing misses, upstream failures,
//! rejected requests. Each carries `x-ringside-error` so a person reading `curl` output knows
//! whether the proxy or the app answered.

use bytes::{BufMut, Bytes, BytesMut};

use crate::core::http1::reason;

/// How the local response ends the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conn {
    /// `Connection: close`, then the connection closes.
    Close,
    /// HTTP/1.1 persistence: nothing to say.
    Keep,
    /// An HTTP/1.0 client that asked to keep the connection: `Connection: keep-alive`
    /// (RFC 9112 §9.3).
    KeepAlive10,
}

/// A complete response with a one-line text body saying what happened.
pub fn response(status: u16, detail: &str, conn: Conn) -> Bytes {
    response_retry(status, detail, conn, None)
}

/// [`response`] with `Retry-After: SECONDS` (RFC 9110 §10.2.3), for 429 and 503.
pub fn response_retry(status: u16, detail: &str, conn: Conn, retry_after: Option<u64>) -> Bytes {
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
    if let Some(secs) = retry_after {
        out.put_slice(b"\r\nretry-after: ");
        out.put_slice(secs.to_string().as_bytes());
    }
    match conn {
        Conn::Close => out.put_slice(b"\r\nconnection: close"),
        Conn::KeepAlive10 => out.put_slice(b"\r\nconnection: keep-alive"),
        Conn::Keep => {}
    }
    out.put_slice(b"\r\n\r\n");
    out.put_slice(detail.as_bytes());
    out.put_u8(b'\n');
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_response_is_well_framed() {
        let r = response(404, "no route", Conn::Keep);
        let text = std::str::from_utf8(&r).expect("ascii");
        assert!(text.starts_with("HTTP/1.1 404 Not Found\r\n"), "{text}");
        assert!(text.contains("content-length: 9\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\nno route\n"), "{text}");
        assert!(!text.contains("connection:"));
        let close = response(502, "x", Conn::Close);
        assert!(std::str::from_utf8(&close)
            .expect("ascii")
            .contains("connection: close"));
        let ka = response(404, "x", Conn::KeepAlive10);
        assert!(std::str::from_utf8(&ka)
            .expect("ascii")
            .contains("connection: keep-alive"));
    }
}
