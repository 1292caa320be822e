//! Why a head or body was refused, and the status a client gets for it.

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum RequestError {
    #[error("bad request: {0}")]
    Bad(&'static str),
    #[error("request line too long")]
    UriTooLong,
    #[error("header section too large")]
    HeadersTooLarge,
    #[error("too many header fields")]
    TooManyHeaders,
    #[error("not implemented: {0}")]
    NotImplemented(&'static str),
    #[error("HTTP version not supported")]
    Version,
    /// The head did not arrive within the listener's `header_read` timeout.
    #[error("request head not received in time")]
    Timeout,
    /// The first line names no HTTP version at all: not HTTP/1.x (e.g. a broken HTTP/2
    /// preface). Nothing the client could parse can be sent back, so the connection is closed.
    #[error("not an HTTP/1 request")]
    NotHttp,
}

impl RequestError {
    /// Whether the client gets a response at all (see [`RequestError::NotHttp`]).
    pub fn answerable(&self) -> bool {
        *self != Self::NotHttp
    }

    /// The cause sent in `x-ringside-error` with [`RequestError::status`].
    pub fn label(&self) -> &'static str {
        match self {
            // The label HTTP/2 requests get for the same fault (`down::limits`).
            Self::Bad("invalid Host" | "invalid authority in absolute-form target") => {
                "invalid authority"
            }
            Self::Bad(_) | Self::NotHttp => "invalid request",
            Self::UriTooLong => "request target too long",
            Self::HeadersTooLarge => "request header section too large",
            Self::TooManyHeaders => "too many request header fields",
            Self::NotImplemented("CONNECT") => "method not supported",
            Self::NotImplemented(_) => "transfer coding not supported",
            Self::Version => "HTTP version not supported",
            Self::Timeout => "request head timeout",
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            Self::Bad(_) | Self::NotHttp => 400,
            Self::UriTooLong => 414,
            Self::HeadersTooLarge | Self::TooManyHeaders => 431,
            Self::NotImplemented(_) => 501,
            Self::Version => 505,
            Self::Timeout => 408,
        }
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
#[error("invalid upstream response: {0}")]
pub struct ResponseError(pub &'static str);

#[derive(Debug, Error, PartialEq, Eq)]
#[error("invalid chunked body: {0}")]
pub struct BodyError(pub &'static str);
