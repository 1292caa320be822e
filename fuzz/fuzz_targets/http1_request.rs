//! The HTTP/1 request parser (`core::http1::parse_request`) and the head it sends upstream.
//!
//! Invariants, beyond not panicking:
//! - arriving in two reads (split where the first byte says) parses exactly as arriving whole;
//! - a parsed head, encoded for the upstream, parses again to the same request (method,
//!   target, Host, framing, upgrade, the end-to-end fields) plus Ringside's forwarding fields;
//! - that re-encoded head is one plain httparse also reads completely, with the same length.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use ringside::core::http1::{parse_request, BodyKind, RequestHead, UpstreamOpts, Version};
use ringside_fuzz::{RequestSummary, LIMITS};

fuzz_target!(|input: &[u8]| {
    let Some((&split, data)) = input.split_first() else {
        return;
    };
    let mut whole_buf = BytesMut::from(data);
    let whole = parse_request(&mut whole_buf, &LIMITS);

    // The same bytes in two reads, as a socket may deliver them.
    let k = usize::from(split) * data.len() / 255;
    let mut buf = BytesMut::from(&data[..k]);
    let first = parse_request(&mut buf, &LIMITS);
    let pieces = match first {
        Ok(None) => {
            buf.extend_from_slice(&data[k..]);
            parse_request(&mut buf, &LIMITS)
        }
        other => {
            // A head complete (or refused) in the first read: the rest stays unread.
            buf.extend_from_slice(&data[k..]);
            other
        }
    };
    match (&whole, &pieces) {
        (Ok(Some(a)), Ok(Some(b))) => {
            assert_eq!(RequestSummary::of(a), RequestSummary::of(b));
            assert_eq!(whole_buf, buf, "what follows the head differs");
        }
        (Ok(None), Ok(None)) | (Err(_), Err(_)) => {}
        (a, b) => panic!("whole: {a:?}\nin two reads: {b:?}"),
    }

    if let Ok(Some(head)) = whole {
        round_trip(&head);
    }
});

fn round_trip(head: &RequestHead) {
    let opts = UpstreamOpts {
        client_ip: [10, 0, 0, 1].into(),
        forward_expect: false,
        keep_upgrade: true,
        proto: "http",
        extra: &[],
    };
    let mut out = BytesMut::new();
    head.encode_upstream(&mut out, &opts);
    let encoded = out.clone();

    let mut headers = vec![httparse::EMPTY_HEADER; 512];
    let mut plain = httparse::Request::new(&mut headers);
    match plain.parse(&encoded) {
        Ok(httparse::Status::Complete(n)) => assert_eq!(n, encoded.len()),
        other => panic!("httparse reads the upstream head as {other:?}: {encoded:?}"),
    }

    let limits = ringside::core::http1::Limits {
        max_header_bytes: encoded.len() + 1,
        max_headers: 512,
    };
    let again = match parse_request(&mut out, &limits) {
        Ok(Some(h)) => h,
        other => panic!("the upstream head does not parse again: {other:?}: {encoded:?}"),
    };
    assert!(out.is_empty(), "the upstream head has bytes after its end");
    let (a, b) = (RequestSummary::of(head), RequestSummary::of(&again));
    assert_eq!(a.method, b.method);
    assert_eq!(a.target, b.target);
    assert_eq!(
        a.host.as_deref().unwrap_or(""),
        b.host.as_deref().unwrap_or("")
    );
    assert_eq!(b.version, Version::Http11);
    assert_eq!(a.body, b.body);
    assert_eq!(a.upgrade, b.upgrade);
    assert_eq!(b.keep_alive, true, "the upstream head asks to close");
    assert!(
        !b.expect_continue,
        "Expect was forwarded although Ringside answers it"
    );
    if a.body == BodyKind::Empty {
        assert!(again.header("content-length").is_none());
    }

    // Fields: what travels end to end, in order, then Ringside's own.
    let xff = |(n, _): &(&[u8], &[u8])| !n.eq_ignore_ascii_case(b"x-forwarded-for");
    let sent: Vec<_> = head.end_to_end_fields().filter(xff).collect();
    let got: Vec<_> = again.end_to_end_fields().filter(xff).collect();
    let had_proto = sent
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case(b"x-forwarded-proto"));
    let mut want = sent.clone();
    if !had_proto {
        want.push((&b"x-forwarded-proto"[..], &b"http"[..]));
    }
    assert_eq!(got, want);
    let client = again
        .header("x-forwarded-for")
        .map(|v| v.ends_with(b"10.0.0.1"));
    assert!(
        again
            .end_to_end_fields()
            .any(|(n, v)| n.eq_ignore_ascii_case(b"x-forwarded-for") && v.ends_with(b"10.0.0.1")),
        "the client is not in x-forwarded-for: {client:?}"
    );
}
