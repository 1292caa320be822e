//! The same request means the same thing over HTTP/1.1 and HTTP/2 (issue 21, first part): the
//! listener's head limits count both protocols' fields the HTTP/1.1 way (cookie crumbs joined,
//! RFC 9113 §8.2.3), and an authority with userinfo is refused on both (RFC 9113 §8.3.1).
//! Each case goes once over HTTP/1.1 and once over h2c, through Ringside on both runtimes.

use std::time::{Duration, Instant};

use ringside_integration::h2raw::{frame, hpack, Frames, HEADERS};
use ringside_integration::{
    both_runtimes, h2_client, http_config, json_field, Conn, Origin, Ringside,
};

/// HPACK's static-table index for `:status: 400` (RFC 7541 Appendix A, entry 12), as the `h2`
/// crate encodes it.
const STATUS_400: u8 = 0x80 | 12;

/// The status of one request sent with Go's client over HTTP/1.1 (`h1`) or h2c.
fn status(proxy: &Ringside, h1: bool, args: &[&str]) -> String {
    let mut all = args.to_vec();
    if h1 {
        all.push("-h1");
    }
    let (ok, out) = h2_client(proxy.addr("inbound"), &all);
    assert!(ok, "{out}");
    json_field(&out, "status").unwrap_or_else(|| panic!("no status: {out}"))
}

both_runtimes!(fn limits_and_authority_rules_agree_across_protocols(rt) {
    let origin = Origin::start("o");
    let proxy = Ringside::start(rt, &http_config(&[origin.addr]));
    let mut wrong = Vec::new();

    // 150 fields: over the default 100 on either protocol.
    let many: Vec<String> = (0..150).map(|i| format!("x-f{i}: v")).collect();
    let mut args: Vec<&str> = Vec::new();
    for h in &many {
        args.extend(["-header", h.as_str()]);
    }
    // About 63 KB of cookies: one field on HTTP/1.1; Go's h2 client sends 600 crumbs.
    let jar = (0..600).map(|i| format!("c{i:03}={}", "v".repeat(96))).collect::<Vec<_>>().join("; ");
    let cookie = format!("cookie: {jar}");
    let cases: [(&str, Vec<&str>, &str); 3] = [
        ("150 header fields", args, "431"),
        ("600 cookies, ~63 KB joined", vec!["-header", cookie.as_str()], "200"),
        ("a plain request", vec!["-path", "/"], "200"),
    ];
    for (what, args, want) in &cases {
        let (h1, h2) = (status(&proxy, true, args), status(&proxy, false, args));
        if h1 != *want || h2 != *want {
            wrong.push(format!("{what}: HTTP/1.1 {h1}, h2 {h2}, want {want} on both"));
        }
    }

    // Userinfo in the authority: Go's clients refuse to send it, so both go raw.
    let mut c = Conn::open(proxy.addr("inbound"));
    let h1 = c.send(b"GET / HTTP/1.1\r\nHost: user:pw@a.example\r\n\r\n").read_response(false);
    let block = hpack(&[(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "user:pw@a.example")]);
    let mut f = Frames::open(proxy.addr("inbound"), &frame(HEADERS, 0x5, 1, &block));
    let until = Instant::now() + Duration::from_secs(5);
    let h2 = loop {
        match f.next(until) {
            Ok(fr) if fr.kind == HEADERS && fr.stream == 1 => break fr.payload.first().copied(),
            Ok(_) => continue,
            Err(_) => break None,
        }
    };
    if !matches!(&h1, Ok(r) if r.status == 400) || h2 != Some(STATUS_400) {
        wrong.push(format!(
            "userinfo in the authority: HTTP/1.1 {:?}, h2 first header byte {h2:?}, want 400 on both",
            h1.map(|r| r.status)
        ));
    }
    assert!(wrong.is_empty(), "{}\nringside log:\n{}", wrong.join("\n"), proxy.log_text());
});
