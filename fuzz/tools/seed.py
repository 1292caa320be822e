#!/usr/bin/env python3
"""Writes the committed seed corpora (fuzz/corpus/<target>/seed-*) from the byte-string
literals in the codec's unit tests, the repo's example configs and a few hand-made inputs.
Run once when seeds change: `python3 fuzz/tools/seed.py` (docs/fuzzing.md). Each seed is
named by a hash of its bytes, so rerunning it adds nothing twice."""
import hashlib, pathlib, re, sys

root = pathlib.Path(__file__).resolve().parents[2]
corpus = root / "fuzz" / "corpus"

def rust_bytes(lit):
    """The bytes of a Rust b"..." literal body (escapes \\r \\n \\t \\0 \\\\ \\" \\xNN)."""
    out, i = bytearray(), 0
    while i < len(lit):
        c = lit[i]
        if c != "\\":
            out += c.encode(); i += 1; continue
        n = lit[i + 1]
        if n == "x":
            out.append(int(lit[i + 2:i + 4], 16)); i += 4; continue
        if n == "\n":  # line continuation: skip the newline and leading spaces
            i += 2
            while i < len(lit) and lit[i] in " \t": i += 1
            continue
        out += {"r": b"\r", "n": b"\n", "t": b"\t", "0": b"\0", "\\": b"\\", '"': b'"', "'": b"'"}[n]
        i += 2
    return bytes(out)

def literals(path):
    text = path.read_text()
    return [rust_bytes(m) for m in re.findall(r'b"((?:[^"\\]|\\.|\\\n)*)"', text, re.S)]

def put(target, data):
    d = corpus / target
    d.mkdir(parents=True, exist_ok=True)
    (d / ("seed-" + hashlib.sha1(data).hexdigest()[:16])).write_bytes(data)

http1 = root / "sidecar/src/core/http1"
reqs = [b for b in literals(http1 / "request_tests.rs") if b[:1].isalpha() or b.startswith(b"\r\n")]
resps = [b for b in literals(http1 / "response_tests.rs") if b.startswith(b"HTTP/")]
chunks = [b for b in literals(http1 / "chunked_tests.rs") if len(b) > 2]
for b in reqs:
    put("http1_request", b"\x80" + b)          # first byte: where the two-read split falls
    put("detect", b)
for b in resps:
    put("http1_response", b"\x40" + b)         # bit 0: request was HEAD; rest: split point
    put("http1_response", b"\x41" + b)
    put("h2_h1_headers", b"\x01\x00" + b)      # mode 1 (response), not HEAD
for b in chunks:
    put("chunked", b"\x02\x03\x07" + b)        # two piece sizes: 3, 7
    put("chunked", b"\x00" + b)
for b in [b"5\r\nhello\r\n0\r\n\r\n", b"3;ext=1\r\nabc\r\n0\r\ngrpc-status: 0\r\n\r\n",
          b"000000000000000000001\r\nx\r\n0\r\n\r\n"]:
    put("chunked", b"\x01\x01" + b)

# Detection: the h2c preface, a TLS 1.3 ClientHello (openssl s_client's shape, SNI and ALPN).
preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
put("detect", preface + b"\x00\x00\x12\x04\x00\x00\x00\x00\x00")
hello_body = (b"\x03\x03" + bytes(32) + b"\x00" + b"\x00\x04\x13\x01\x13\x02" + b"\x01\x00")
sni = b"\x00\x00\x00\x0e\x00\x0c\x00\x00\x09localhost"
alpn = b"\x00\x10\x00\x0e\x00\x0c\x02h2\x08http/1.1"
versions = b"\x00\x2b\x00\x03\x02\x03\x04"
groups = b"\x00\x0a\x00\x04\x00\x02\x00\x1d"
sigs = b"\x00\x0d\x00\x04\x00\x02\x08\x04"
keyshare = b"\x00\x33\x00\x26\x00\x24\x00\x1d\x00\x20" + bytes(range(32))
exts = sni + alpn + versions + groups + sigs + keyshare
hello_body += len(exts).to_bytes(2, "big") + exts
hs = b"\x01" + len(hello_body).to_bytes(3, "big") + hello_body
put("detect", b"\x16\x03\x01" + len(hs).to_bytes(2, "big") + hs)
put("detect", b"\x16\x03\x01\x00")

# Paths: the normalisation tests' targets, under each flag combination.
paths = re.findall(r'"(/[^"]*)"', (root / "sidecar/src/core/path.rs").read_text())
for p in paths:
    for flags in (0, 1, 2, 3):
        put("path", bytes([flags]) + p.encode())

# h2 → h1 requests: mode 0, then length-prefixed method, authority, path (Unstructured reads
# a byte slice's length from the end of the input, so the simplest seeds are hand-made).
put("h2_h1_headers", b"\x00GET\x00example.com\x00/a?b=1\x00\x01")
put("h2_h1_headers", b"\x02cookie\x00a=1\x00")

# Configs: the repo's example, some YAML the chart tests render, the docs' config blocks.
configs = [root / "examples/configs/ringside.yaml"]
configs += sorted((root / "charts/tests/golden").glob("*.yaml"))[:6] if (root / "charts/tests/golden").exists() else []
for c in configs:
    put("config", c.read_bytes())
for doc in sorted((root / "docs").glob("*.md")):
    for block in re.findall(r"```yaml\n(.*?)```", doc.read_text(), re.S):
        put("config", block.encode())
put("config", b"listeners:\n  - name: a\n    address: 127.0.0.1:1\n    protocol: http\n"
              b"    routes:\n      - name: r\n        match: { host: '*.a.b', path_prefix: /x, method: GET,"
              b" headers: { x-a: '1' } }\n        backends: [ { cluster: c, weight: 1 } ]\n"
              b"clusters:\n  - name: c\n    endpoints: [ 127.0.0.1:2 ]\n")

# Route tables: byte strings the structured reader turns into routes and requests.
for s in (b"\x05" * 40, bytes(range(64)), b"\x17\x02\x03\x01\x04\x00\x05" * 12):
    put("route_table", s)
print("seeds in", corpus, {d.name: len(list(d.iterdir())) for d in sorted(corpus.iterdir())})
