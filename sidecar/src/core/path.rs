//! Request path normalisation before routing (DESIGN.md §5.14): the path a route matches is
//! the path the upstream receives, so `/api/../admin` cannot be routed as `/api` and served as
//! `/admin` (Envoy's CVE-2019-9901 class).
//!
//! RFC 3986 §6.2.2: percent-encodings of unreserved characters are decoded and the rest are
//! upper-cased (§6.2.2.1–2), then dot segments are removed (§5.2.4). `%2F` and `%5C` are not
//! separators and stay encoded, or are refused when the listener says so. The query is never
//! touched. Envoy does the same with `normalize_path: true` (Istio's default), `merge_slashes`
//! and `path_with_escaped_slashes_action`.

use control::model::{EscapedSlashes, PathNormalization};

/// Why a path was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("invalid percent-encoding in path")]
    BadPercent,
    #[error("encoded slash in path")]
    EscapedSlash,
}

/// The normalised form of an origin-form `target` (path and optional query), or `None` when
/// it is already normal (the common case: no allocation). Asterisk-form (`*`) is left alone.
///
/// # Errors
/// [`PathError::BadPercent`] for a `%` not followed by two hex digits;
/// [`PathError::EscapedSlash`] for `%2F`/`%5C` when `opts.escaped_slashes` is `reject`.
pub fn normalize(target: &str, opts: &PathNormalization) -> Result<Option<String>, PathError> {
    if !opts.enabled || !target.starts_with('/') {
        return Ok(None);
    }
    let (path, query) = match target.find('?') {
        Some(i) => target.split_at(i),
        None => (target, ""),
    };
    let needs_work =
        path.contains('%') || path.contains("/.") || (opts.merge_slashes && path.contains("//"));
    if !needs_work {
        return Ok(None);
    }
    let decoded = decode_unreserved(path, opts.escaped_slashes)?;
    let mut out = remove_dot_segments(&decoded);
    if opts.merge_slashes {
        out = merge_slashes(&out);
    }
    out.push_str(query);
    Ok((out != target).then_some(out))
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// RFC 3986 §2.3.
fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Decodes `%XX` of unreserved characters; upper-cases every other percent-encoding. Works
/// on bytes, so raw UTF-8 in the path is copied unchanged (not as one char per byte).
fn decode_unreserved(path: &str, slashes: EscapedSlashes) -> Result<String, PathError> {
    let b = path.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(path.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'%' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let (Some(hi), Some(lo)) = (
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) else {
            return Err(PathError::BadPercent);
        };
        let c = hi * 16 + lo;
        if (c == b'/' || c == b'\\') && slashes == EscapedSlashes::Reject {
            return Err(PathError::EscapedSlash);
        }
        if unreserved(c) {
            out.push(c);
        } else {
            out.push(b'%');
            out.push(b"0123456789ABCDEF"[usize::from(hi)]);
            out.push(b"0123456789ABCDEF"[usize::from(lo)]);
        }
        i += 3;
    }
    // Only ASCII `%XX` triplets were replaced, by ASCII: the rest is `path`'s own UTF-8.
    String::from_utf8(out).map_err(|_| PathError::BadPercent)
}

/// RFC 3986 §5.2.4, on an absolute path: `.` segments vanish, `..` removes the segment
/// before it (never above the root).
fn remove_dot_segments(path: &str) -> String {
    let mut segs: Vec<&str> = Vec::new();
    let mut parts = path.split('/').skip(1).peekable();
    // A path ending in `.` or `..` keeps its trailing slash (`/a/b/..` is `/a/`).
    let mut trailing = false;
    while let Some(seg) = parts.next() {
        let last = parts.peek().is_none();
        match seg {
            "." => trailing = last,
            ".." => {
                segs.pop();
                trailing = last;
            }
            s => {
                segs.push(s);
                trailing = false;
            }
        }
    }
    let mut out = String::with_capacity(path.len());
    for s in &segs {
        out.push('/');
        out.push_str(s);
    }
    if trailing || out.is_empty() {
        out.push('/');
    }
    out
}

fn merge_slashes(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if !(c == '/' && out.ends_with('/')) {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> PathNormalization {
        PathNormalization::default()
    }

    fn norm(t: &str) -> String {
        normalize(t, &opts())
            .expect("valid")
            .unwrap_or_else(|| t.to_owned())
    }

    #[test]
    fn dot_segments_are_removed() {
        assert_eq!(norm("/api/../admin"), "/admin");
        assert_eq!(norm("/a/./b/../c?x=/../y"), "/a/c?x=/../y");
        assert_eq!(norm("/../../etc"), "/etc");
        assert_eq!(norm("/a/b/.."), "/a/");
        assert_eq!(norm("/a/."), "/a/");
        assert_eq!(norm("/.."), "/");
        assert_eq!(norm("/a/.hidden/b"), "/a/.hidden/b");
    }

    #[test]
    fn unreserved_encodings_are_decoded_and_the_rest_uppercased() {
        assert_eq!(norm("/%61pi/users"), "/api/users");
        assert_eq!(norm("/%2e%2e/admin"), "/admin");
        assert_eq!(norm("/a%3fb"), "/a%3Fb");
        assert_eq!(norm("/api/%2fx"), "/api/%2Fx");
        assert_eq!(norm("/a%5cb"), "/a%5Cb");
    }

    #[test]
    fn normal_paths_are_not_copied() {
        for t in ["/", "/api/users?x=1", "/a//b", "*", "/a.b/c.d"] {
            assert_eq!(normalize(t, &opts()), Ok(None), "{t}");
        }
    }

    #[test]
    fn options_are_honoured() {
        let merge = PathNormalization {
            merge_slashes: true,
            ..opts()
        };
        assert_eq!(
            normalize("//a///b?q=//", &merge),
            Ok(Some("/a/b?q=//".into()))
        );
        let reject = PathNormalization {
            escaped_slashes: EscapedSlashes::Reject,
            ..opts()
        };
        assert_eq!(normalize("/a%2Fb", &reject), Err(PathError::EscapedSlash));
        assert_eq!(normalize("/a%5cb", &reject), Err(PathError::EscapedSlash));
        assert_eq!(normalize("/a%zz", &opts()), Err(PathError::BadPercent));
        assert_eq!(normalize("/a%2", &opts()), Err(PathError::BadPercent));
        let off = PathNormalization {
            enabled: false,
            ..opts()
        };
        assert_eq!(normalize("/api/../admin", &off), Ok(None));
    }

    /// Found by fuzzing (fuzz/corpus/path/regression-*): raw UTF-8 in a path that needed
    /// normalising was copied one byte per char, so `é` reached the upstream as `Ã©`.
    #[test]
    fn raw_utf8_survives_normalisation() {
        assert_eq!(norm("/caf\u{e9}/./men\u{fc}"), "/caf\u{e9}/men\u{fc}");
        assert_eq!(
            norm("/a\u{49d}\u{41b}.d/ba/./.b/"),
            "/a\u{49d}\u{41b}.d/ba/.b/"
        );
        assert_eq!(norm("/\u{1f600}/%61/../x"), "/\u{1f600}/x");
    }

    #[test]
    fn normalising_twice_changes_nothing() {
        for t in [
            "/api/../admin",
            "/%61pi//x/%2f/./..",
            "/a%7e/b%7E",
            "/x/%252e%252e/",
        ] {
            let once = norm(t);
            assert_eq!(norm(&once), once, "{t}");
        }
    }
}
