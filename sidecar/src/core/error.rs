//! Why a proxied exchange failed: which side is to blame, what the client is told, and whether
//! the request may be sent again. Every protocol pair reports its failures as a [`ProxyError`],
//! so the status, the `x-ringside-error` label, the gRPC status, the metrics and the retry
//! decision are each derived in one place.

use std::io;
use std::net::SocketAddr;

use thiserror::Error;

/// Who caused a failure: the client, the upstream, or Ringside's own config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Downstream,
    Upstream,
    Internal,
}

/// What a failure proves about the request's fate at the upstream, which is what decides
/// whether it may be replayed (RFC 9110 §9.2.2; the rule itself is `proxy::exchange::may_replay`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// The upstream provably never processed the request: a connect failure, HTTP/2
    /// REFUSED_STREAM, a stream above GOAWAY's last_stream_id (RFC 9113 §8.7), a pooled
    /// connection that failed before the whole request head was written. Any method may be
    /// replayed, if its body is still held.
    Always,
    /// The request reached the upstream, which may have acted on it, and no response came:
    /// only an idempotent request whose body is still held may be replayed.
    IfIdempotent,
    /// A replay cannot help or is not allowed: the client's fault, a timeout, or a response
    /// that already started.
    Never,
}

/// One failure of an exchange. `status()`, `label()`, `side()` and `retry()` say what follows.
#[derive(Debug, Error)]
pub enum ProxyError {
    #[error("no route matches")]
    NoRoute,
    #[error("cluster has no endpoints")]
    NoEndpoint,
    #[error("connect to {addr} failed: {source}")]
    Connect { addr: SocketAddr, source: io::Error },
    #[error("connect to {0} timed out")]
    ConnectTimeout(SocketAddr),
    /// The TLS handshake with the upstream failed: nothing of the request was sent.
    #[error("TLS to {addr} failed: {source}")]
    UpstreamTls {
        addr: SocketAddr,
        source: crate::core::tls::HandshakeError,
    },
    /// The upstream refused the stream before processing it (REFUSED_STREAM, or the stream was
    /// above a GOAWAY's last_stream_id, or the connection was gone before the stream opened).
    #[error("upstream refused the stream: {0}")]
    Refused(String),
    /// A reused connection failed before the request head was fully written: the upstream
    /// cannot have acted on a partial head.
    #[error("pooled upstream connection was closed before the request was sent: {0}")]
    StaleConnection(io::Error),
    #[error("upstream closed the connection before a complete response")]
    UpstreamClosed,
    #[error("upstream I/O error: {0}")]
    UpstreamIo(io::Error),
    /// The upstream reset the stream with this HTTP/2 error code (RFC 9113 §7).
    #[error("upstream reset the stream: {0:?}")]
    UpstreamReset(h2::Reason),
    #[error("upstream sent an invalid response: {0}")]
    UpstreamProtocol(String),
    #[error("route timeout expired")]
    Timeout,
    /// The retry policy's `per_try_timeout` ran out before the attempt's response head (the
    /// route's timeout had not): the upstream may have acted on the request.
    #[error("per-try timeout expired")]
    AttemptTimeout,
    #[error("client I/O error: {0}")]
    DownstreamIo(io::Error),
    #[error("client closed the connection")]
    DownstreamClosed,
    #[error("client sent an invalid request body: {0}")]
    DownstreamProtocol(String),
    /// The client stopped sending its request body for longer than the route timeout.
    #[error("request body stalled")]
    DownstreamTimeout,
    /// A circuit breaker (the cluster's `limits`) refused the request: answered at once.
    #[error("cluster overflow: {0}")]
    Overflow(&'static str),
    /// The request cannot be carried to this cluster (e.g. an HTTP/1 upgrade to HTTP/2).
    #[error("request not supported: {0}")]
    Unsupported(&'static str),
}

impl ProxyError {
    /// The HTTP status for the client when no response bytes have been sent yet.
    pub fn status(&self) -> u16 {
        match self {
            Self::NoRoute => 404,
            Self::Timeout | Self::AttemptTimeout => 504,
            Self::Overflow(_) => 503,
            Self::Unsupported(_) => 501,
            Self::DownstreamTimeout => 408,
            Self::DownstreamIo(_) | Self::DownstreamClosed | Self::DownstreamProtocol(_) => 400,
            _ => 502,
        }
    }

    /// Who is to blame: upstream failures count against the cluster.
    pub fn side(&self) -> Side {
        match self {
            Self::NoRoute | Self::NoEndpoint | Self::Unsupported(_) | Self::Overflow(_) => {
                Side::Internal
            }
            Self::DownstreamIo(_)
            | Self::DownstreamClosed
            | Self::DownstreamProtocol(_)
            | Self::DownstreamTimeout => Side::Downstream,
            _ => Side::Upstream,
        }
    }

    /// What the failure proves about the upstream having processed the request.
    pub fn retry(&self) -> Retry {
        match self {
            Self::Connect { .. }
            | Self::ConnectTimeout(_)
            | Self::UpstreamTls { .. }
            | Self::Refused(_)
            | Self::StaleConnection(_) => Retry::Always,
            Self::UpstreamClosed | Self::UpstreamIo(_) | Self::AttemptTimeout => {
                Retry::IfIdempotent
            }
            _ => Retry::Never,
        }
    }

    /// The short cause sent in `x-ringside-error` and gRPC's `grpc-message`, so a person can
    /// tell a proxy error from an app error.
    pub fn label(&self) -> &'static str {
        match self {
            Self::NoRoute => "no route",
            Self::NoEndpoint => "no endpoint",
            Self::Connect { .. } | Self::ConnectTimeout(_) => "upstream connect failed",
            Self::UpstreamTls { .. } => "upstream TLS handshake failed",
            Self::Refused(_) => "upstream refused the stream",
            Self::StaleConnection(_) | Self::UpstreamClosed | Self::UpstreamIo(_) => {
                "upstream reset"
            }
            Self::UpstreamReset(_) => "upstream reset the stream",
            Self::UpstreamProtocol(_) => "invalid upstream response",
            Self::Timeout => "upstream timeout",
            Self::AttemptTimeout => "upstream per-try timeout",
            Self::DownstreamIo(_) | Self::DownstreamClosed => "client closed the connection",
            Self::DownstreamProtocol(_) => "invalid request body",
            Self::DownstreamTimeout => "request body timeout",
            Self::Unsupported(what) => what,
            Self::Overflow(_) => "overflow",
        }
    }

    /// The gRPC status code for a gRPC client: an upstream reset as gRPC's HTTP/2 protocol
    /// spec maps RST_STREAM codes, anything else through the HTTP status Ringside would send.
    /// `deadline_passed`: the call's own `grpc-timeout` has expired, and DEADLINE_EXCEEDED wins
    /// over whatever reset or timeout raced it.
    pub fn grpc_code(&self, deadline_passed: bool) -> u8 {
        match self {
            _ if deadline_passed => 4,
            Self::UpstreamReset(r) => grpc_code_for_reset(*r),
            Self::Refused(_) => 14,
            other => grpc_code_for_http(other.status()),
        }
    }
}

/// RST_STREAM error codes as gRPC statuses, per gRPC's PROTOCOL-HTTP2 ("Errors").
pub fn grpc_code_for_reset(r: h2::Reason) -> u8 {
    match r {
        h2::Reason::REFUSED_STREAM => 14,     // UNAVAILABLE
        h2::Reason::CANCEL => 1,              // CANCELLED
        h2::Reason::ENHANCE_YOUR_CALM => 8,   // RESOURCE_EXHAUSTED
        h2::Reason::INADEQUATE_SECURITY => 7, // PERMISSION_DENIED
        _ => 13,                              // INTERNAL
    }
}

/// The gRPC status for an HTTP status Ringside answers with (gRPC's http-grpc-status-mapping).
pub fn grpc_code_for_http(status: u16) -> u8 {
    match status {
        400 => 13,
        401 => 16,
        403 => 7,
        404 => 12,
        429 | 502..=504 => 14,
        _ => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resets_map_to_grpc_statuses_as_the_spec_says() {
        assert_eq!(grpc_code_for_reset(h2::Reason::REFUSED_STREAM), 14);
        assert_eq!(grpc_code_for_reset(h2::Reason::CANCEL), 1);
        assert_eq!(grpc_code_for_reset(h2::Reason::ENHANCE_YOUR_CALM), 8);
        assert_eq!(grpc_code_for_reset(h2::Reason::INTERNAL_ERROR), 13);
        assert_eq!(grpc_code_for_reset(h2::Reason::PROTOCOL_ERROR), 13);
        let cancel = ProxyError::UpstreamReset(h2::Reason::CANCEL);
        assert_eq!(cancel.grpc_code(false), 1);
        assert_eq!(
            cancel.grpc_code(true),
            4,
            "a passed deadline wins over the reset"
        );
    }

    #[test]
    fn only_unprocessed_failures_are_always_replayable() {
        let io = || io::Error::from(io::ErrorKind::ConnectionReset);
        assert_eq!(ProxyError::Refused("goaway".into()).retry(), Retry::Always);
        assert_eq!(ProxyError::StaleConnection(io()).retry(), Retry::Always);
        assert_eq!(ProxyError::UpstreamClosed.retry(), Retry::IfIdempotent);
        assert_eq!(ProxyError::Timeout.retry(), Retry::Never);
        assert_eq!(
            ProxyError::UpstreamReset(h2::Reason::CANCEL).retry(),
            Retry::Never
        );
        assert_eq!(ProxyError::DownstreamClosed.side(), Side::Downstream);
        assert_eq!(ProxyError::Unsupported("x").status(), 501);
    }
}
