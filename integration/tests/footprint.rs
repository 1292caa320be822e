//! What an idle sidecar costs in memory, structurally: the process opts out of transparent
//! huge pages before its first allocation (`sidecar/src/main.rs`), so no 2 MiB page backs the
//! few KiB it touches in an allocator arena. Without that, an idle Ringside held 19 MB of RSS
//! on a kernel in THP's `madvise` mode instead of 10 (docs/benchmarks.md).

use ringside_integration::{both_runtimes, client, http_config, Origin, Ringside};

/// The value of `field` (e.g. `THP_enabled`, `AnonHugePages`) in a `/proc/PID/...` file, as
/// its first number.
fn proc_field(pid: u32, file: &str, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/{file}")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

both_runtimes!(fn no_transparent_huge_pages(rt) {
    let origin = Origin::start("app");
    let proxy = Ringside::start(rt, &http_config(&[origin.addr]));
    // Some traffic, so that the worker's buffers and the pools have been allocated.
    for _ in 0..20 {
        assert_eq!(client::get(proxy.addr("inbound"), "/").status, 200);
    }
    // THP_enabled is in /proc/PID/status since Linux 5.0; where it is missing there is
    // nothing to check against.
    if let Some(enabled) = proc_field(proxy.pid(), "status", "THP_enabled") {
        assert_eq!(enabled, 0, "PR_SET_THP_DISABLE was not set on the proxy process");
    }
    let huge = proc_field(proxy.pid(), "smaps_rollup", "AnonHugePages");
    assert_eq!(huge, Some(0), "anonymous memory backed by huge pages (KiB)");
});
