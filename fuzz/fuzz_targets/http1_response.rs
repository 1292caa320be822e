//! The HTTP/1 response parser (`core::http1::parse_response`) and the head sent to the client.
//!
//! Invariants, beyond not panicking:
//! - arriving in two reads parses exactly as arriving whole;
//! - a parsed head, encoded for the client with the framing it was parsed with, parses again
//!   to the same status, framing, keep-alive and end-to-end fields;
//! - that re-encoded head is one plain httparse also reads completely.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use ringside::core::http1::{parse_response, BodyKind, DownstreamOpts, ResponseHead, Version};
use ringside_fuzz::{ResponseSummary, LIMITS};

fuzz_target!(|input: &[u8]| {
    let Some((&flags, data)) = input.split_first() else {
        return;
    };
    let req_is_head = flags & 1 == 1;
    let mut whole_buf = BytesMut::from(data);
    let whole = parse_response(&mut whole_buf, req_is_head, &LIMITS);

    let k = usize::from(flags >> 1) * data.len() / 127;
    let mut buf = BytesMut::from(&data[..k]);
    let first = parse_response(&mut buf, req_is_head, &LIMITS);
    buf.extend_from_slice(&data[k..]);
    let pieces = match first {
        Ok(None) => parse_response(&mut buf, req_is_head, &LIMITS),
        other => other,
    };
    match (&whole, &pieces) {
        (Ok(Some(a)), Ok(Some(b))) => {
            assert_eq!(ResponseSummary::of(a), ResponseSummary::of(b));
            assert_eq!(whole_buf, buf, "what follows the head differs");
        }
        (Ok(None), Ok(None)) | (Err(_), Err(_)) => {}
        (a, b) => panic!("whole: {a:?}\nin two reads: {b:?}"),
    }

    if let Ok(Some(head)) = whole {
        round_trip(&head, req_is_head);
    }
});

fn round_trip(head: &ResponseHead, req_is_head: bool) {
    let opts = DownstreamOpts {
        close: !head.keep_alive(),
        keep_alive: false,
        body: head.body(),
        keep_upgrade: false,
    };
    let mut out = BytesMut::new();
    head.encode_downstream(&mut out, &opts);
    let encoded = out.clone();

    let mut headers = vec![httparse::EMPTY_HEADER; 512];
    let mut plain = httparse::Response::new(&mut headers);
    match plain.parse(&encoded) {
        Ok(httparse::Status::Complete(n)) => assert_eq!(n, encoded.len()),
        other => panic!("httparse reads the client's head as {other:?}: {encoded:?}"),
    }

    let limits = ringside::core::http1::Limits {
        max_header_bytes: encoded.len() + 1,
        max_headers: 512,
    };
    let again = match parse_response(&mut out, req_is_head, &limits) {
        Ok(Some(h)) => h,
        other => panic!("the client's head does not parse again: {other:?}: {encoded:?}"),
    };
    assert!(out.is_empty(), "the client's head has bytes after its end");
    let (a, b) = (ResponseSummary::of(head), ResponseSummary::of(&again));
    assert_eq!(a.status, b.status);
    assert_eq!(b.version, Version::Http11);
    assert_eq!(a.body, b.body, "{encoded:?}");
    if a.body != BodyKind::CloseDelimited && a.status != 101 {
        assert_eq!(a.keep_alive, b.keep_alive, "{encoded:?}");
    }
    assert_eq!(a.end_to_end, b.end_to_end, "{encoded:?}");
}
