//! The upstream side: choosing an endpoint (`balance`, skipping those `outlier` ejected), getting a connection to it (`dial`,
//! the idle HTTP/1 `pool`, multiplexed `h2` connections), and the HTTP/1 exchange's upstream
//! half (`h1`: send, read the response head).

pub mod balance;
pub mod breaker;
pub mod budget;
pub mod dial;
pub mod ewma;
pub mod h1;
pub mod h2;
pub mod outlier;
pub mod pool;

/// Registers the help text of the upstream side's resilience metrics.
pub fn describe() {
    metrics::describe_counter!(
        "ringside_outlier_ejections_total",
        "Endpoints ejected from balancing after consecutive failures"
    );
    metrics::describe_counter!(
        "ringside_retries_total",
        "Requests sent again, by cluster and reason (connect-failure, refused-stream, reset, status)"
    );
    metrics::describe_counter!(
        "ringside_overflow_total",
        "Requests and retries refused by a cluster's circuit breaker (limits), by limit"
    );
    metrics::describe_counter!(
        "ringside_retry_budget_exhausted_total",
        "Retries a retry policy asked for that the cluster's retry budget refused"
    );
}
