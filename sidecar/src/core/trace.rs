//! W3C trace context (`traceparent`). An incoming one is always propagated untouched (it is an
//! ordinary end-to-end field). With `--trace-start`, a request that arrives without one gets a
//! fresh trace id, so the access log and the app's logs can be joined even when the client
//! does not trace. Ringside does not export spans, so it does not insert itself as a parent.

use std::borrow::Cow;

use super::http1::RequestHead;

/// The request's trace context: the one it carried if well-formed, else a new one when
/// starting traces is on.
pub fn context(head: &RequestHead, start: bool) -> Option<Cow<'_, str>> {
    context_from(head.header("traceparent"), start)
}

/// [`context`] for any protocol: `incoming` is the request's `traceparent` value, if any.
pub fn context_from(incoming: Option<&[u8]>, start: bool) -> Option<Cow<'_, str>> {
    if let Some(tp) = incoming.and_then(|v| std::str::from_utf8(v).ok()) {
        if valid(tp) {
            return Some(Cow::Borrowed(tp));
        }
    }
    start.then(|| Cow::Owned(new_traceparent()))
}

/// The field to add upstream: only a trace context we started (an incoming one is already
/// forwarded as it came).
pub fn started_field<'a>(
    head: &RequestHead,
    trace: Option<&'a str>,
) -> Vec<(&'static str, &'a [u8])> {
    match trace {
        Some(tp)
            if head
                .header("traceparent")
                .is_none_or(|v| v != tp.as_bytes()) =>
        {
            vec![("traceparent", tp.as_bytes())]
        }
        _ => Vec::new(),
    }
}

/// `00-<32 hex trace-id>-<16 hex parent-id>-<2 hex flags>`, ids not all zero (version 00).
fn valid(tp: &str) -> bool {
    let parts: Vec<&str> = tp.split('-').collect();
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    };
    parts.len() == 4
        && parts[0] == "00"
        && hex(parts[1], 32)
        && hex(parts[2], 16)
        && hex(parts[3], 2)
        && parts[1].bytes().any(|b| b != b'0')
        && parts[2].bytes().any(|b| b != b'0')
}

fn new_traceparent() -> String {
    let trace = fastrand::u128(1..);
    let span = fastrand::u64(1..);
    format!("00-{trace:032x}-{span:016x}-01")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_the_w3c_format() {
        assert!(valid(
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        ));
        assert!(!valid(
            "00-00000000000000000000000000000000-b7ad6b7169203331-01"
        ));
        assert!(!valid(
            "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01"
        ));
        assert!(!valid(
            "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        ));
        assert!(!valid(
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b71692033-01"
        ));
        assert!(valid(&new_traceparent()));
    }
}
