use super::*;

fn decode_all(input: &[u8], step: usize) -> Result<(Vec<u8>, Vec<u8>), BodyError> {
    let mut dec = ChunkedDecoder::new();
    let mut buf = BytesMut::new();
    let (mut data, mut trailers) = (Vec::new(), Vec::new());
    for piece in input.chunks(step) {
        buf.extend_from_slice(piece);
        while let Some(c) = dec.decode(&mut buf)? {
            match c {
                Chunk::Data(d) => data.extend_from_slice(&d),
                Chunk::Trailers(t) => trailers.extend_from_slice(&t),
            }
        }
    }
    assert!(dec.is_done(), "body must be complete");
    Ok((data, trailers))
}

#[test]
fn decodes_the_same_whole_or_byte_by_byte() {
    let body = b"5;ext=\"v\"\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: abc\r\n\r\nNEXT";
    for step in [1, 2, 3, 7, body.len()] {
        let (data, trailers) = decode_all(&body[..body.len() - 4], step).expect("valid");
        assert_eq!(data, b"hello world", "step {step}");
        assert_eq!(trailers, b"X-Sum: abc\r\n", "step {step}");
    }
}

#[test]
fn bytes_after_the_body_stay_in_the_buffer() {
    let mut buf = BytesMut::from(&b"3\r\nabc\r\n0\r\n\r\nGET /next"[..]);
    let mut dec = ChunkedDecoder::new();
    while !dec.is_done() {
        dec.decode(&mut buf).expect("ok").expect("progress");
    }
    assert_eq!(&buf[..], b"GET /next");
}

#[test]
fn malformed_chunking_is_refused() {
    for bad in [
        &b"zz\r\n\r\n"[..],
        b" 5\r\nhello\r\n0\r\n\r\n",
        b"+5\r\nhello\r\n0\r\n\r\n",
        b"0x5\r\nhello\r\n0\r\n\r\n",
        b"5\nhello\r\n0\r\n\r\n",
        b"5\r\nhelloXX0\r\n\r\n",
        b"11111111111111111\r\n",
        b"5 junk\r\nhello\r\n0\r\n\r\n",
        b"5;a\x00b\r\nhello\r\n0\r\n\r\n",
        b"0\r\nBad Name: v\r\n\r\n",
        b"0\r\nX: a\nY: b\r\n\r\n",
    ] {
        assert!(
            decode_all(bad, 1).is_err(),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    let long_ext = format!("1;{}\r\na\r\n0\r\n\r\n", "e".repeat(5000));
    assert!(decode_all(long_ext.as_bytes(), 64).is_err());
}

#[test]
fn sizes_with_leading_zeros_are_fine() {
    let (data, _) = decode_all(b"0005\r\nhello\r\n0\r\n\r\n", 4).expect("valid");
    assert_eq!(data, b"hello");
}

#[test]
fn encoding_is_canonical_and_filters_trailers() {
    let mut out = BytesMut::new();
    encode_chunk_header(255, &mut out);
    out.put_slice(CHUNK_END);
    encode_last_chunk(b"X-Sum: 1\r\nContent-Length: 9\r\nhost: evil\r\n", &mut out);
    assert_eq!(&out[..], b"ff\r\n\r\n0\r\nX-Sum: 1\r\n\r\n");
}
