//! The ring operations a worker submits, sees complete and abandons, counted by the backend
//! (monoio 0.2.4 exposes no ring statistics): `/runtime` shows them as `ops_submitted`,
//! `ops_completed` and `ops_abandoned`, and `core::proxy::alloc_tests` asserts them per request.

use std::pin::Pin;

thread_local! {
    /// Ring operations this worker submitted, saw complete, and abandoned (dropped before
    /// completion, e.g. a readiness wait that timed out). monoio 0.2.4 exposes no ring
    /// statistics, so the backend counts its own.
    static OPS: std::cell::Cell<[u64; 3]> = const { std::cell::Cell::new([0; 3]) };
}

/// `[submitted, completed, abandoned]` on this worker's ring.
pub fn op_counts() -> [u64; 3] {
    OPS.with(|c| c.get())
}

/// Counts an op: `0` submitted, `1` completed, `2` abandoned.
pub(super) fn bump(i: usize) {
    OPS.with(|c| {
        let mut v = c.get();
        v[i] += 1;
        c.set(v);
    });
}

pin_project_lite::pin_project! {
    /// Counts one ring operation. A plain wrapper rather than an `async fn`, which would store
    /// the wrapped future twice in every idle connection's state.
    pub(super) struct Counted<F> {
        #[pin]
        fut: F,
        done: bool,
    }

    impl<F> PinnedDrop for Counted<F> {
        fn drop(this: Pin<&mut Self>) {
            if !this.done {
                bump(2);
            }
        }
    }
}

/// `fut`, counted as one ring operation.
pub(super) fn counted<F: std::future::Future>(fut: F) -> Counted<F> {
    bump(0);
    Counted { fut, done: false }
}

impl<F: std::future::Future> std::future::Future for Counted<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<F::Output> {
        let this = self.project();
        let out = std::task::ready!(this.fut.poll(cx));
        *this.done = true;
        bump(1);
        std::task::Poll::Ready(out)
    }
}
