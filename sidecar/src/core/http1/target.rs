//! The request-target (RFC 9112 §3.2): which forms each method may use, and the origin-form
//! (or asterisk-form) every request is forwarded in.

use super::error::RequestError;
use super::fields::is_authority;
use super::Span;

/// The request target as it will be forwarded (origin-form).
#[derive(Debug)]
pub(super) enum Target {
    Span(Span),
    /// Absolute-form whose path was empty: `http://a?x` is forwarded as `/?x`.
    Owned(String),
}

/// Checks the request-target form against the method and converts absolute-form to
/// origin-form. Returns the target and, for absolute-form, the authority (the Host to use).
pub(super) fn target(
    buf: &[u8],
    method: &str,
    raw: &str,
) -> Result<(Target, Option<Span>), RequestError> {
    if method == "CONNECT" {
        return Err(RequestError::NotImplemented("CONNECT"));
    }
    if raw.starts_with('/') {
        return Ok((Target::Span(Span::of(buf, raw.as_bytes())), None));
    }
    if raw == "*" {
        return if method == "OPTIONS" {
            Ok((Target::Span(Span::of(buf, raw.as_bytes())), None))
        } else {
            Err(RequestError::Bad("asterisk-form is only for OPTIONS"))
        };
    }
    let lower = raw
        .get(..8)
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let rest = if lower.starts_with("http://") {
        &raw[7..]
    } else if lower.starts_with("https://") {
        &raw[8..]
    } else {
        return Err(RequestError::Bad("invalid request target"));
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..end];
    if authority.is_empty() || authority.contains('@') || !is_authority(authority.as_bytes()) {
        return Err(RequestError::Bad(
            "invalid authority in absolute-form target",
        ));
    }
    let path = &rest[end..];
    let target = if path.is_empty() && method == "OPTIONS" {
        // RFC 9112 §3.2.4: an OPTIONS request for the server as a whole.
        Target::Owned("*".to_owned())
    } else if path.starts_with('/') {
        Target::Span(Span::of(buf, path.as_bytes()))
    } else {
        Target::Owned(format!("/{path}"))
    };
    Ok((target, Some(Span::of(buf, authority.as_bytes()))))
}
