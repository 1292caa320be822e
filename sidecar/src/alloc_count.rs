//! A counting global allocator: how many heap allocations the process (and each thread) made,
//! so allocations per request can be measured (`make bench`'s profile step) and asserted
//! (`core::proxy::alloc_tests`).
//!
//! Compiled only for the lib's unit tests and with the `alloc-count` feature, never into a
//! default build. It wraps the real allocator and adds one relaxed atomic add and one
//! thread-local add per call; frees are not counted (every allocation has one).
//!
//! With the feature on, the binary publishes the process totals as the counters
//! `ringside_allocations_total` and `ringside_allocated_bytes_total` on the admin `/metrics`
//! (see [`publish`]).

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

/// Allocator calls (alloc, alloc_zeroed, realloc) since the process started.
static CALLS: AtomicU64 = AtomicU64::new(0);
/// Bytes asked for by those calls (a realloc counts its new size).
static BYTES: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Allocator calls made on this thread. `const`-initialised and without a destructor, so
    /// reaching it never allocates (which the allocator itself must not do).
    static THREAD_CALLS: Cell<u64> = const { Cell::new(0) };
}

/// Wraps allocator `A`, counting every allocation and reallocation.
pub struct Counting<A>(pub A);

impl<A> Counting<A> {
    fn count(size: usize) {
        CALLS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(size as u64, Ordering::Relaxed);
        // `try_with`: a thread being torn down may still free and allocate.
        let _ = THREAD_CALLS.try_with(|c| c.set(c.get() + 1));
    }
}

// SAFETY: every call is forwarded unchanged to `A`, which upholds `GlobalAlloc`'s contract;
// counting touches only atomics and a const thread-local, neither of which allocates.
#[allow(unsafe_code)]
unsafe impl<A: GlobalAlloc> GlobalAlloc for Counting<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::count(layout.size());
        // SAFETY: the caller's contract, passed on.
        unsafe { self.0.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Self::count(layout.size());
        // SAFETY: the caller's contract, passed on.
        unsafe { self.0.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { self.0.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        Self::count(new_size);
        // SAFETY: the caller's contract, passed on.
        unsafe { self.0.realloc(ptr, layout, new_size) }
    }
}

/// Process totals: (allocator calls, bytes asked for), since start. Zero unless a
/// [`Counting`] allocator is the global one.
pub fn process() -> (u64, u64) {
    (CALLS.load(Ordering::Relaxed), BYTES.load(Ordering::Relaxed))
}

/// Allocator calls made on the calling thread since it started.
pub fn this_thread() -> u64 {
    THREAD_CALLS.with(Cell::get)
}

/// How often [`publish`] copies the totals into the metrics registry.
pub const PUBLISH_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// Starts a thread that copies [`process`] into the counters `ringside_allocations_total`
/// and `ringside_allocated_bytes_total` every [`PUBLISH_EVERY`], so the admin `/metrics`
/// shows them (a reader waits at least that long after a load before reading). Its own
/// updates allocate nothing once the two series exist.
pub fn publish() {
    let spawned = std::thread::Builder::new()
        .name("alloc-count".into())
        .spawn(|| loop {
            let (calls, bytes) = process();
            metrics::counter!("ringside_allocations_total").absolute(calls);
            metrics::counter!("ringside_allocated_bytes_total").absolute(bytes);
            std::thread::sleep(PUBLISH_EVERY);
        });
    if let Err(e) = spawned {
        eprintln!("ringside: alloc-count: cannot start the publishing thread: {e}");
    }
}
