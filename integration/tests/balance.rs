//! `lb: ewma` (peak EWMA, power of two choices) with real Go origins, one of them slow
//! (`-delay`), on both runtimes: the faster endpoint gets the traffic; round robin, for
//! comparison, splits it evenly.

use ringside_integration::{both_runtimes, client, Origin, Ringside};

fn config(origins: &[&Origin], lb: &str) -> String {
    let eps: Vec<String> = origins.iter().map(|o| o.addr.to_string()).collect();
    format!(
        r#"
listeners:
  - name: inbound
    address: 127.0.0.1:0
    protocol: http
    routes:
      - name: default
        match: {{ path_prefix: / }}
        backends: [ {{ cluster: app }} ]
clusters:
  - name: app
    endpoints: [ {} ]
    lb: {lb}
"#,
        eps.join(", ")
    )
}

fn seen(origin: &Origin) -> u64 {
    client::get(origin.addr, "/seen?path=/x")
        .text()
        .trim()
        .parse()
        .expect("a count")
}

fn run(rt: ringside_integration::Runtime, lb: &str) -> (u64, u64) {
    let fast = Origin::start("fast");
    // Slower than the 30 ms an unobserved endpoint is assumed to take, so its first answer
    // raises its estimate at once (the "peak").
    let slow = Origin::start_with_flags("slow", &["-delay", "60ms"]);
    let proxy = Ringside::start(rt, &config(&[&fast, &slow], lb));
    let mut conn = client::Conn::open(proxy.addr("inbound"));
    for _ in 0..100 {
        assert_eq!(conn.get("/x", "").status, 200);
    }
    (seen(&fast), seen(&slow))
}

both_runtimes!(fn ewma_sends_the_traffic_to_the_faster_endpoint(rt) {
    let (fast, slow) = run(rt, "ewma");
    assert!(slow <= 5, "fast {fast}, slow {slow}");
    let (fast, slow) = run(rt, "round_robin");
    assert_eq!((fast, slow), (50, 50));
});
