//! Path normalisation before routing (`core::path::normalize`).
//!
//! Invariants, beyond not panicking:
//! - normalising is idempotent: a normalised target is already normal (`Ok(None)`);
//! - the result is an absolute path with no `.` or `..` segment, no lowercase or
//!   unreserved percent-encoding, no `//` when slashes are merged, and the same query;
//! - a target is refused for a bad percent-encoding exactly when its path has a `%` not
//!   followed by two hex digits, and for an escaped slash only when the listener says so.
#![no_main]

use control::model::{EscapedSlashes, PathNormalization};
use libfuzzer_sys::fuzz_target;
use ringside::core::path::{normalize, PathError};

fuzz_target!(|input: &[u8]| {
    let Some((&flags, rest)) = input.split_first() else {
        return;
    };
    let Ok(target) = std::str::from_utf8(rest) else {
        return;
    };
    let opts = PathNormalization {
        enabled: true,
        merge_slashes: flags & 1 == 1,
        escaped_slashes: if flags & 2 == 2 {
            EscapedSlashes::Reject
        } else {
            EscapedSlashes::Keep
        },
    };
    let (path, query) = split_query(target);
    let result = normalize(target, &opts);
    if !target.starts_with('/') {
        assert_eq!(result, Ok(None));
        return;
    }
    let bad_percent = (0..path.len()).any(|i| {
        path.as_bytes()[i] == b'%'
            && !(path
                .as_bytes()
                .get(i + 1)
                .is_some_and(u8::is_ascii_hexdigit)
                && path
                    .as_bytes()
                    .get(i + 2)
                    .is_some_and(u8::is_ascii_hexdigit))
    });
    let escaped_slash = {
        let p = path.to_ascii_lowercase();
        p.contains("%2f") || p.contains("%5c")
    };
    match result {
        Err(PathError::BadPercent) => assert!(bad_percent),
        Err(PathError::EscapedSlash) => {
            assert!(escaped_slash && opts.escaped_slashes == EscapedSlashes::Reject)
        }
        Ok(out) => {
            assert!(!bad_percent, "a bad percent-encoding passed");
            if opts.escaped_slashes == EscapedSlashes::Reject {
                assert!(!escaped_slash, "an escaped slash passed");
            }
            let out = out.unwrap_or_else(|| target.to_owned());
            assert_eq!(normalize(&out, &opts), Ok(None), "not idempotent: {out:?}");
            let (npath, nquery) = split_query(&out);
            assert_eq!(nquery, query);
            assert!(npath.starts_with('/'));
            assert!(
                !npath.split('/').any(|s| s == "." || s == ".."),
                "dot segment left in {npath:?}"
            );
            if opts.merge_slashes {
                assert!(!npath.contains("//"), "{npath:?}");
            }
            for (i, _) in npath.match_indices('%') {
                let enc = &npath.as_bytes()[i + 1..i + 3];
                assert!(
                    !enc.iter().any(u8::is_ascii_lowercase),
                    "lowercase percent-encoding in {npath:?}"
                );
                let c = u8::from_str_radix(std::str::from_utf8(enc).unwrap_or("zz"), 16)
                    .unwrap_or(b'%');
                assert!(
                    !(c.is_ascii_alphanumeric() || b"-._~".contains(&c)),
                    "encoded unreserved character in {npath:?}"
                );
            }
        }
    }
});

fn split_query(t: &str) -> (&str, &str) {
    match t.find('?') {
        Some(i) => t.split_at(i),
        None => (t, ""),
    }
}
