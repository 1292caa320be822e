//! The admin API seen from another host: a network namespace of the test's own, joined to this
//! one by a veth pair, so requests arrive from a non-loopback address (needs root and `ip`,
//! as in CI).

use std::process::Command;

use ringside_integration::{both_runtimes, Options, Origin, Ringside};

/// A namespace with one veth link to the host namespace; removed on drop.
struct RemoteHost {
    ns: String,
    host_ip: String,
}

impl RemoteHost {
    fn new(tag: u8) -> RemoteHost {
        let id = std::process::id() % 10_000;
        let ns = format!("rs-admin-{id}-{tag}");
        let (a, b) = (format!("rsa{id}{tag}"), format!("rsb{id}{tag}"));
        let subnet = 100 + u32::from(tag);
        let host_ip = format!("10.213.{subnet}.1");
        let peer_ip = format!("10.213.{subnet}.2");
        let sh = |args: &[&str]| {
            let out = Command::new("ip")
                .args(args)
                .output()
                .expect("ip (iproute2) must be installed");
            assert!(
                out.status.success(),
                "ip {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        sh(&["netns", "add", &ns]);
        sh(&["link", "add", &a, "type", "veth", "peer", "name", &b]);
        sh(&["link", "set", &b, "netns", &ns]);
        sh(&["addr", "add", &format!("{host_ip}/30"), "dev", &a]);
        sh(&["link", "set", &a, "up"]);
        sh(&[
            "netns",
            "exec",
            &ns,
            "ip",
            "addr",
            "add",
            &format!("{peer_ip}/30"),
            "dev",
            &b,
        ]);
        sh(&["netns", "exec", &ns, "ip", "link", "set", &b, "up"]);
        RemoteHost { ns, host_ip }
    }

    /// `curl` from inside the namespace; returns the HTTP status.
    fn curl(&self, method: &str, url: &str) -> u16 {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns,
                "curl",
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-m",
                "5",
                "-X",
                method,
                url,
            ])
            .output()
            .expect("curl");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(0)
    }
}

impl Drop for RemoteHost {
    fn drop(&mut self) {
        // Deleting the namespace deletes its end of the veth pair, and with it the other end.
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}

both_runtimes!(fn admin_refuses_mutations_from_another_host(rt) {
    let origin = Origin::start("app");
    let tag = if rt == ringside_integration::Runtime::IoUring { 1 } else { 2 };
    let remote = RemoteHost::new(tag);
    let cfg = format!("admin: {{ address: 0.0.0.0:0 }}\n{}", ringside_integration::http_config(&[origin.addr]));
    let mut proxy = Ringside::start_with(rt, &cfg, &Options::default());
    let port = proxy.addr("admin").port();
    let base = format!("http://{}:{port}", remote.host_ip);
    assert_eq!(remote.curl("GET", &format!("{base}/ready")), 200, "probes answer any peer");
    assert_eq!(remote.curl("POST", &format!("{base}/shutdown")), 403);
    assert_eq!(remote.curl("PUT", &format!("{base}/log-level")), 403);
    assert_eq!(remote.curl("GET", &format!("{base}/debug/pprof/profile?seconds=1")), 403);
    assert_eq!(remote.curl("GET", &format!("{base}/connections")), 403);
    assert!(proxy.alive(), "a refused /shutdown must not drain");
    assert_eq!(ringside_integration::client::get(proxy.addr("admin"), "/ready").status, 200);
});
