//! The Prometheus recorder behind the `metrics` facade: installed once at startup, rendered
//! by the admin `/metrics`. The exporter's own HTTP listener is compiled out (it would bind
//! 0.0.0.0:9000); histograms get explicit buckets (otherwise they render as summaries).

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Request and upstream latency buckets, seconds: 100 µs to 30 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0,
];

/// Event-loop lag buckets, seconds: 50 µs to 1 s.
const LAG_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.25, 1.0,
];

pub fn install() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("duration_seconds".into()), LATENCY_BUCKETS)?
        .set_buckets_for_metric(Matcher::Suffix("lag_seconds".into()), LAG_BUCKETS)?
        .install_recorder()?;
    describe();
    Ok(handle)
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        "ringside_requests_total",
        "HTTP requests answered, by listener, route, cluster and status code"
    );
    describe_histogram!(
        "ringside_request_duration_seconds",
        Unit::Seconds,
        "Time from request head received to response complete"
    );
    describe_counter!(
        "ringside_upstream_connect_errors_total",
        "Upstream connection attempts that failed or timed out"
    );
    describe_counter!(
        "ringside_upstream_timeouts_total",
        "Requests answered 504 because the route timeout expired"
    );
    describe_counter!(
        "ringside_downstream_connections_opened_total",
        "Downstream connections accepted"
    );
    describe_counter!(
        "ringside_downstream_connections_closed_total",
        "Downstream connections closed"
    );
    describe_gauge!(
        "ringside_downstream_connections_active",
        "Downstream connections open now"
    );
    describe_counter!(
        "ringside_downstream_received_bytes_total",
        Unit::Bytes,
        "Bytes received from downstream on TCP and upgraded connections"
    );
    describe_counter!(
        "ringside_downstream_sent_bytes_total",
        Unit::Bytes,
        "Bytes sent to downstream on TCP and upgraded connections"
    );
    describe_counter!(
        "ringside_config_reloads_total",
        "Config reload attempts by result (applied, rejected)"
    );
    describe_gauge!(
        "ringside_config_last_reload_success_timestamp_seconds",
        Unit::Seconds,
        "When the active config was applied (Unix time)"
    );
    describe_gauge!(
        "ringside_config_info",
        "The active config, by sha256 (value 1)"
    );
    describe_gauge!("ringside_runtime_info", "The I/O runtime in use (value 1)");
    describe_counter!(
        "ringside_access_log_dropped_total",
        "Access-log lines dropped because the writer fell behind"
    );
    describe_gauge!("ringside_workers", "Worker threads");
    describe_histogram!(
        "ringside_worker_event_loop_lag_seconds",
        Unit::Seconds,
        "How late a worker's 250 ms timer fires: time the event loop was busy elsewhere"
    );
    describe_gauge!(
        "ringside_worker_connections",
        "Downstream connections per worker"
    );
}
