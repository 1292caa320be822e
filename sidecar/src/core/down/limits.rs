//! The request-head limits of a listener (`limits.max_header_bytes`, `limits.max_headers`),
//! applied to an HTTP/2 request the way HTTP/1.1 counts them, so that the same request is
//! accepted or refused whichever protocol carried it: fields and bytes are counted as the
//! request's HTTP/1.1 head would have them (request line, `host`, one `name: value\r\n` per
//! field), with `cookie` crumbs joined into one field (RFC 9113 §8.2.3). HPACK's per-field
//! overhead (RFC 9113 §6.5.2: 32 bytes) is not counted; the HTTP/2 transport limit is set
//! above the listener's so that it never decides first.

/// Why a request head is refused: the status and the `x-ringside-error` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub status: u16,
    pub label: &'static str,
}

/// The SETTINGS_MAX_HEADER_LIST_SIZE to announce for a listener: twice its head limit plus
/// HPACK's overhead for its field count, so only [`check_h2`] refuses.
pub fn h2_transport_limit(max_header_bytes: usize, max_headers: usize) -> u32 {
    let bytes = max_header_bytes
        .saturating_mul(2)
        .saturating_add(max_headers.saturating_mul(32));
    u32::try_from(bytes).unwrap_or(u32::MAX)
}

/// Checks an HTTP/2 request against the listener's limits and the authority rules HTTP/1.1
/// requests are held to.
///
/// # Errors
/// 501 for CONNECT (as on HTTP/1.1), 400 for userinfo in `:authority` (RFC 9113 §8.3.1,
/// RFC 9110 §4.2.4), 431 for too many fields or too large a head.
pub fn check_h2(
    parts: &http::request::Parts,
    max_header_bytes: usize,
    max_headers: usize,
) -> Result<(), Refused> {
    // RFC 9110 §9.3.6: Ringside is no CONNECT proxy; HTTP/1.1 answers the same (501).
    if parts.method == http::Method::CONNECT {
        return Err(Refused {
            status: 501,
            label: "method not supported",
        });
    }
    let authority = parts.uri.authority().map(|a| a.as_str());
    if authority.is_some_and(|a| a.contains('@')) {
        return Err(Refused {
            status: 400,
            label: "invalid authority",
        });
    }
    let target = parts.uri.path_and_query().map_or(1, |p| p.as_str().len());
    // "METHOD target HTTP/1.1\r\n", "host: authority\r\n", and the final CRLF.
    let mut bytes = parts.method.as_str().len() + 1 + target + 11 + 2;
    let mut fields = 0usize;
    if let Some(a) = authority {
        bytes += 6 + a.len() + 2;
        fields += 1;
    }
    let mut cookies = 0usize;
    for (name, value) in &parts.headers {
        if name == http::header::HOST && authority.is_some() {
            continue;
        }
        if name == http::header::COOKIE {
            // Joined: "cookie: a=1; b=2\r\n" is one field.
            bytes += value.len() + if cookies == 0 { 10 } else { 2 };
            if cookies == 0 {
                fields += 1;
            }
            cookies += 1;
            continue;
        }
        bytes += name.as_str().len() + 2 + value.len() + 2;
        fields += 1;
    }
    if fields > max_headers {
        return Err(Refused {
            status: 431,
            label: "too many request header fields",
        });
    }
    if bytes > max_header_bytes {
        return Err(Refused {
            status: 431,
            label: "request header section too large",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(authority: &str, headers: &[(&str, String)]) -> http::request::Parts {
        let mut b = http::Request::builder()
            .method("GET")
            .uri(format!("http://{authority}/p"));
        for (n, v) in headers {
            b = b.header(*n, v.as_str());
        }
        b.body(()).expect("request").into_parts().0
    }

    #[test]
    fn userinfo_in_the_authority_is_refused_as_on_http1() {
        for a in ["user:pw@a.example", "a.example@evil.example"] {
            assert_eq!(
                check_h2(&req(a, &[]), 65536, 100).map_err(|r| r.status),
                Err(400)
            );
        }
        assert_eq!(check_h2(&req("a.example:8080", &[]), 65536, 100), Ok(()));
    }

    #[test]
    fn connect_is_not_supported_as_on_http1() {
        let mut parts = req("a.example:443", &[]);
        parts.method = http::Method::CONNECT;
        let r = check_h2(&parts, 65536, 100).map_err(|r| (r.status, r.label));
        assert_eq!(r, Err((501, "method not supported")));
    }

    #[test]
    fn cookie_crumbs_count_as_one_joined_field() {
        // 600 cookies of ~100 bytes: about 63 KB joined, one field, as HTTP/1.1 sends them.
        let crumbs: Vec<(&str, String)> = (0..600)
            .map(|i| ("cookie", format!("c{i:03}={}", "v".repeat(96))))
            .collect();
        assert_eq!(check_h2(&req("a", &crumbs), 65536, 100), Ok(()));
        let refused = check_h2(&req("a", &crumbs), 60_000, 100);
        assert_eq!(refused.map_err(|r| r.status), Err(431));
    }

    #[test]
    fn field_count_and_size_limits_apply() {
        let many: Vec<(&str, String)> = (0..150).map(|i| ("x-f", format!("{i}"))).collect();
        let r = check_h2(&req("a", &many), 65536, 100);
        assert_eq!(
            r.map(|_| ()).map_err(|r| r.label),
            Err("too many request header fields")
        );
        assert_eq!(check_h2(&req("a", &many), 65536, 200), Ok(()));
        assert!(h2_transport_limit(65536, 100) > 65536 * 2);
    }
}
