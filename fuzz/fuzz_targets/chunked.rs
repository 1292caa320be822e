//! The chunked decoder (`core::http1::ChunkedDecoder`) and the encoding Ringside forwards.
//!
//! Invariants, beyond not panicking:
//! - the body decodes the same (data, trailers, or failure) whole or in pieces of any size;
//! - `check_in_hand` refuses exactly the bodies the decoder fails on;
//! - decode → encode → decode is stable: the canonical encoding decodes to the same data and
//!   to trailers that encode to the same bytes again.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use ringside::core::http1::{check_in_hand, encode_chunk_header, encode_last_chunk, CHUNK_END};
use ringside_fuzz::{decode_in_pieces, pieces, Decoded};

fuzz_target!(|input: &[u8]| {
    // First byte: how many of the next bytes give the piece sizes.
    let Some((&n, rest)) = input.split_first() else {
        return;
    };
    let n = usize::from(n % 8).min(rest.len());
    let (sizes, body) = rest.split_at(n);

    let whole = decode_in_pieces([body]);
    let split = decode_in_pieces(pieces(body, sizes));
    assert_eq!(whole, split, "sizes {sizes:?}");
    assert_eq!(check_in_hand(body).is_err(), whole == Decoded::Failed);

    if let Decoded::Done(data, trailers) = whole {
        let once = encode(&data, &trailers);
        let Decoded::Done(data2, trailers2) = decode_in_pieces([&once[..]]) else {
            panic!("the canonical encoding does not decode: {once:?}");
        };
        assert_eq!(data, data2);
        assert_eq!(once, encode(&data2, &trailers2), "encoding is not stable");
    }
});

/// What Ringside forwards for a decoded body: its data as one chunk, then the last chunk with
/// the trailers it lets through.
fn encode(data: &[u8], trailers: &[u8]) -> BytesMut {
    let mut out = BytesMut::new();
    if !data.is_empty() {
        encode_chunk_header(data.len(), &mut out);
        out.extend_from_slice(data);
        out.extend_from_slice(CHUNK_END);
    }
    encode_last_chunk(trailers, &mut out);
    out
}
