//! Route rate limits on the data plane: one shared limiter per route (`control::rate_limit`,
//! lock-free), read against one process-wide monotonic clock so every worker agrees on "now".

use std::sync::OnceLock;
use std::time::Instant;

use control::RouteSpec;

/// Admits a request on `route`, or gives the `Retry-After` seconds (at least 1) and counts
/// the refusal in `ringside_rate_limited_total`.
pub fn admit(listener: &str, route: &RouteSpec) -> Result<(), u64> {
    let Some(limiter) = &route.rate_limit else {
        return Ok(());
    };
    static START: OnceLock<Instant> = OnceLock::new();
    let now = START.get_or_init(Instant::now).elapsed().as_nanos();
    let now = u64::try_from(now).unwrap_or(u64::MAX);
    limiter.acquire(now).map_err(|wait| {
        metrics::counter!("ringside_rate_limited_total", "listener" => listener.to_owned(), "route" => route.name.clone())
            .increment(1);
        wait.as_secs() + 1
    })
}
