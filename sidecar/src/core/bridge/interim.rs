//! Where an upstream's informational (1xx) responses go: RFC 9110 §15.2 says a proxy forwards
//! them, to HTTP/1.1 clients as interim heads and to HTTP/2 clients as informational HEADERS
//! (RFC 9113 §8.1). HTTP/1.0 clients get none (RFC 9110 §15.2: they cannot parse them).

use std::future::Future;
use std::io;

use bytes::{Bytes, BytesMut};
use h2::server::SendResponse;

use super::headers;
use crate::core::http1::{BodyKind, DownstreamOpts, ResponseHead};
use crate::core::rt::WriteHalf;

/// A destination for 1xx responses other than 101.
pub trait Interim {
    /// Forwards one informational response head.
    ///
    /// # Errors
    /// The client connection failed.
    fn informational(&mut self, head: &ResponseHead) -> impl Future<Output = io::Result<()>>;

    /// Forwards one informational response from an HTTP/2 upstream.
    ///
    /// # Errors
    /// The client connection failed.
    fn informational_h2(
        &mut self,
        head: http::Response<()>,
    ) -> impl Future<Output = io::Result<()>>;
}

/// Drops 1xx responses (an HTTP/1.0 client).
pub struct Drop1xx;

impl Interim for Drop1xx {
    async fn informational(&mut self, _: &ResponseHead) -> io::Result<()> {
        Ok(())
    }

    async fn informational_h2(&mut self, _: http::Response<()>) -> io::Result<()> {
        Ok(())
    }
}

/// An HTTP/1.1 client connection.
pub struct H1Interim<'a, W>(pub &'a mut W);

impl<W: WriteHalf> Interim for H1Interim<'_, W> {
    async fn informational(&mut self, head: &ResponseHead) -> io::Result<()> {
        self.0.write_all(h1_informational(head)).await
    }

    async fn informational_h2(&mut self, head: http::Response<()>) -> io::Result<()> {
        self.0.write_all(h1_informational_h2(head)).await
    }
}

/// An HTTP/1 upstream's informational head, encoded for an HTTP/1.1 client.
pub fn h1_informational(head: &ResponseHead) -> Bytes {
    let mut out = BytesMut::with_capacity(128);
    head.encode_downstream(
        &mut out,
        &DownstreamOpts {
            close: false,
            keep_alive: false,
            body: BodyKind::Empty,
            keep_upgrade: false,
        },
    );
    out.freeze()
}

/// An HTTP/2 upstream's informational response, encoded for an HTTP/1.1 client.
pub fn h1_informational_h2(head: http::Response<()>) -> Bytes {
    let (parts, ()) = head.into_parts();
    headers::h1_response_head(&parts, BodyKind::Empty, false, false, None).freeze()
}

/// An HTTP/2 client's stream, before its final response.
pub struct H2Interim<'a>(pub &'a mut SendResponse<Bytes>);

impl Interim for H2Interim<'_> {
    async fn informational(&mut self, head: &ResponseHead) -> io::Result<()> {
        let resp = headers::h2_response(head).map_err(io::Error::other)?;
        self.0.send_informational(resp).map_err(io::Error::other)
    }

    async fn informational_h2(&mut self, head: http::Response<()>) -> io::Result<()> {
        self.0.send_informational(head).map_err(io::Error::other)
    }
}
