//! Rules for single values of a route match, shared by decoding and docs.

/// Paths are compared against the request's path, which always starts with '/'.
pub(crate) fn path(value: &str) -> Result<(), String> {
    if value.starts_with('/') {
        Ok(())
    } else {
        Err(format!("path `{value}` must start with `/`"))
    }
}

/// RFC 9110 `tchar`: the characters allowed in methods and header names.
fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// Methods are case-sensitive on the wire; requiring uppercase catches `get`,
/// which would otherwise never match a real request.
pub(crate) fn method(value: &str) -> Result<(), String> {
    if !value.is_empty()
        && value.chars().all(is_tchar)
        && !value.chars().any(|c| c.is_ascii_lowercase())
    {
        Ok(())
    } else {
        Err(format!(
            "method `{value}` must be an uppercase HTTP token, e.g. GET or POST"
        ))
    }
}

pub(crate) fn header_name(value: &str) -> Result<(), String> {
    if !value.is_empty() && value.chars().all(is_tchar) {
        Ok(())
    } else {
        Err(format!(
            "invalid header name `{value}`: use letters, digits and !#$%&'*+-.^_`|~ only"
        ))
    }
}

/// A host name or IP, optionally `*.` + suffix; no port, since the request's
/// port is ignored when matching.
pub(crate) fn host(value: &str) -> Result<(), String> {
    let name = value.strip_prefix("*.").unwrap_or(value);
    let is_ipv6 = name.starts_with('[') && name.ends_with(']') && name.len() > 2;
    let valid = is_ipv6
        || (!name.is_empty()
            && !name.starts_with('.')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_'));
    if valid {
        Ok(())
    } else if name.contains(':') && !name.starts_with('[') {
        Err(format!(
            "host `{value}` must not include a port (the request's port is ignored)"
        ))
    } else {
        Err(format!(
            "invalid host `{value}`: expected a name such as example.com or *.example.com"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        assert!(host("example.com").is_ok());
        assert!(host("*.example.com").is_ok());
        assert!(host("[::1]").is_ok());
        assert!(host("*").is_err());
        assert!(host("*.").is_err());
        assert!(host("a b").is_err());
        assert!(host("example.com:80").unwrap_err().contains("port"));
    }

    #[test]
    fn methods_and_headers() {
        assert!(method("GET").is_ok());
        assert!(method("M-SEARCH").is_ok());
        assert!(method("get").is_err());
        assert!(method("GE T").is_err());
        assert!(header_name("x-canary").is_ok());
        assert!(header_name("bad name").is_err());
        assert!(header_name(":authority").is_err());
    }
}
