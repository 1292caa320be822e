//! Header-field rules shared by requests and responses: hop-by-hop names, list parsing,
//! Content-Length, and the byte-level checks httparse leaves to us.

use super::{Field, Span};

/// Fields that describe one connection, never forwarded (RFC 9110 §7.6.1; `Trailer` is
/// end-to-end and travels, RFC 9110 §6.6.2), plus the framing
/// fields we always re-derive and HTTP2-Settings (only meaningful with `Upgrade: h2c`).
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "transfer-encoding",
    "upgrade",
    "http2-settings",
    "content-length",
];

pub(crate) fn is_hop_by_hop(name: &[u8]) -> bool {
    HOP_BY_HOP
        .iter()
        .any(|h| name.eq_ignore_ascii_case(h.as_bytes()))
}

/// Whether `name` appears among the `Connection` header's tokens.
pub(crate) fn listed_in_connection(name: &[u8], buf: &[u8], connection: &[Span]) -> bool {
    connection
        .iter()
        .any(|s| s.get(buf).eq_ignore_ascii_case(name))
}

/// The comma-separated tokens of a list-valued field, OWS-trimmed, empties skipped.
pub(crate) fn list_items(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|b| *b == b',')
        .map(trim_ows)
        .filter(|t| !t.is_empty())
}

pub(crate) fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

/// A Content-Length value: 1 to 19 ASCII digits, nothing else (no sign, no list, no spaces).
pub(crate) fn content_length(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// Finds the first bare CR or bare LF in a head: httparse accepts bare LF as a line end,
/// which a peer may not, so a head containing one is ambiguous and refused.
pub(crate) fn has_bare_cr_or_lf(head: &[u8]) -> bool {
    for i in memchr::memchr2_iter(b'\r', b'\n', head) {
        let ok = match head[i] {
            b'\r' => head.get(i + 1) == Some(&b'\n'),
            _ => i > 0 && head[i - 1] == b'\r',
        };
        if !ok {
            return true;
        }
    }
    false
}

pub(crate) fn is_token(v: &[u8]) -> bool {
    !v.is_empty()
        && v.iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Characters allowed in an authority (RFC 3986): no spaces, CTLs, `/`, `?`, `#` or `@`.
pub(crate) fn is_authority(v: &[u8]) -> bool {
    v.iter()
        .all(|&b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:[]%".contains(&b))
}

/// First value of `name` (lowercase) among `fields`.
pub(crate) fn find<'a>(buf: &'a [u8], fields: &[Field], name: &str) -> Option<&'a [u8]> {
    fields
        .iter()
        .find(|f| f.name.get(buf).eq_ignore_ascii_case(name.as_bytes()))
        .map(|f| f.value.get(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_length_is_digits_only() {
        assert_eq!(content_length(b"42"), Some(42));
        assert_eq!(content_length(b"0"), Some(0));
        for bad in [
            &b""[..],
            b"+4",
            b"-4",
            b"4 ",
            b"4,4",
            b"0x10",
            b"99999999999999999999",
        ] {
            assert_eq!(
                content_length(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn bare_line_ends_are_found() {
        assert!(!has_bare_cr_or_lf(b"GET / HTTP/1.1\r\nA: b\r\n\r\n"));
        assert!(has_bare_cr_or_lf(b"GET / HTTP/1.1\nA: b\r\n\r\n"));
        assert!(has_bare_cr_or_lf(b"GET / HTTP/1.1\r\nA: b\rc\r\n\r\n"));
        assert!(has_bare_cr_or_lf(b"\nGET"));
    }

    #[test]
    fn lists_split_and_trim() {
        let items: Vec<&[u8]> = list_items(b" a ,b,, \tc").collect();
        assert_eq!(items, [&b"a"[..], b"b", b"c"]);
    }
}
