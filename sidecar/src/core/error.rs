//! Why a proxied exchange failed, and which side is to blame: the status a client sees, whether
//! a retry is safe, and what the logs and metrics say all follow from it.

use std::io;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum ProxyError {
    #[error("no route matches")]
    NoRoute,
    #[error("cluster has no endpoints")]
    NoEndpoint,
    #[error("connect to {addr} failed: {source}")]
    Connect {
        addr: std::net::SocketAddr,
        source: io::Error,
    },
    #[error("connect to {0} timed out")]
    ConnectTimeout(std::net::SocketAddr),
    #[error("upstream closed the connection before a complete response")]
    UpstreamClosed,
    #[error("upstream I/O error: {0}")]
    UpstreamIo(io::Error),
    #[error("upstream sent an invalid response: {0}")]
    UpstreamProtocol(String),
    #[error("route timeout expired")]
    Timeout,
    #[error("client I/O error: {0}")]
    DownstreamIo(io::Error),
    #[error("client closed the connection")]
    DownstreamClosed,
    #[error("client sent an invalid request body: {0}")]
    DownstreamProtocol(String),
}

impl ProxyError {
    /// The status for the client when no response bytes have been sent yet.
    pub fn status(&self) -> u16 {
        match self {
            Self::NoRoute => 404,
            Self::NoEndpoint | Self::Connect { .. } | Self::ConnectTimeout(_) => 502,
            Self::UpstreamClosed | Self::UpstreamIo(_) | Self::UpstreamProtocol(_) => 502,
            Self::Timeout => 504,
            Self::DownstreamIo(_) | Self::DownstreamClosed | Self::DownstreamProtocol(_) => 400,
        }
    }

    /// Upstream-side failures count against the upstream; the rest against the client.
    pub fn is_upstream(&self) -> bool {
        !matches!(
            self,
            Self::NoRoute
                | Self::DownstreamIo(_)
                | Self::DownstreamClosed
                | Self::DownstreamProtocol(_)
        )
    }
}
