//! Heap bytes a loaded snapshot keeps per route, counted by a global allocator wrapper: the
//! figure the mesh-scale configs (one route per service, thousands of them) multiply.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

/// The system allocator, counting live bytes.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded unchanged to `System`; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        PEAK.fetch_max(live + layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// The `routes` benchmark's config: `n` routes, one per host, over 1,000 clusters.
fn config(n: usize) -> String {
    let mut s = String::from("listeners:\n  - name: inbound\n    address: 127.0.0.1:80\n    protocol: http\n    routes:\n");
    for i in 0..n {
        s += &format!(
            "      - {{ name: svc-{i}, match: {{ host: svc-{i}.mesh.local, path_prefix: / }}, backends: [ {{ cluster: c{} }} ] }}\n",
            i % 1000
        );
    }
    s += "clusters:\n";
    for i in 0..1000 {
        s += &format!(
            "  - {{ name: c{i}, endpoints: [ 127.0.0.1:{} ] }}\n",
            1000 + i
        );
    }
    s
}

/// Live heap bytes held by the snapshot of `text`, and the most the load had live at once.
fn held(text: &str) -> (isize, isize) {
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let snap = control::load_str(text, "routes.yaml").unwrap_or_else(|p| panic!("{p}"));
    let after = LIVE.load(Ordering::Relaxed);
    let peak = PEAK.load(Ordering::Relaxed);
    drop(snap);
    (after - before, peak - before)
}

#[test]
fn a_route_costs_under_a_kibibyte_of_snapshot() {
    let (small, large) = (config(1), config(10_001));
    // Both texts exist before counting; the tests in this file run one at a time.
    let ((large, large_peak), (small, small_peak)) = (held(&large), held(&small));
    let per_route = (large - small) / 10_000;
    let peak_per_route = (large_peak - small_peak) / 10_000;
    println!("snapshot heap per route: {per_route} bytes; a load's peak per route: {peak_per_route} bytes");
    assert!(
        (100..1024).contains(&per_route),
        "{per_route} bytes per route"
    );
}
