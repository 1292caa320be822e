//! Protocol detection on a connection's first bytes: the h2c preface (`core::detect`) and a
//! TLS ClientHello (`core::tls::HANDSHAKE_RECORD`, then rustls reads the hello).
//!
//! Invariants, beyond not panicking:
//! - `classify` says HTTP/2 exactly for the preface, waits exactly on a strict prefix of it,
//!   and never changes its mind as more bytes arrive;
//! - bytes that open like a TLS record are never read as an HTTP/1 request (a permissive
//!   listener cannot mistake a ClientHello for plaintext) nor as h2c;
//! - rustls' ClientHello reader (what the TLS accept path runs) never panics on them.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use ringside::core::detect::{classify, Sniffed, PREFACE};
use ringside::core::http1::parse_request;
use ringside::core::tls::HANDSHAKE_RECORD;
use ringside_fuzz::LIMITS;

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    let verdict = classify(data);
    let want = if data.starts_with(PREFACE) {
        Some(Sniffed::Http2)
    } else if PREFACE.starts_with(data) {
        None
    } else {
        Some(Sniffed::Http1)
    };
    assert_eq!(verdict, want);
    for k in 1..data.len().min(PREFACE.len() + 1) {
        if let Some(early) = classify(&data[..k]) {
            assert_eq!(Some(early), verdict, "decided {early:?} on {k} bytes");
        }
    }

    if data[0] == HANDSHAKE_RECORD {
        assert_eq!(verdict, Some(Sniffed::Http1));
        let mut buf = BytesMut::from(data);
        assert!(
            !matches!(parse_request(&mut buf, &LIMITS), Ok(Some(_))),
            "a TLS record parsed as an HTTP/1 request"
        );
        let mut acceptor = rustls::server::Acceptor::default();
        let mut rd = data;
        while !rd.is_empty() {
            match acceptor.read_tls(&mut rd) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        if let Ok(Some(accepted)) = acceptor.accept() {
            let hello = accepted.client_hello();
            let _ = hello.server_name();
            let _ = hello.alpn().map(|a| a.count());
            let _ = hello.cipher_suites().len();
            let _ = hello.signature_schemes().len();
        }
    }
});
