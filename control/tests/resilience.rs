//! Decoding and validation of clusters' resilience settings (`outlier`, `retry`,
//! `retry_budget`), through `load_str` as a user's file would be.

use control::load_str;
use control::resilience::Outlier;
use control::retry::{FailureKind, RetryBudget, RetryPolicy, DEFAULT_BACKOFF};
use std::time::Duration;

fn load_outlier(outlier: &str) -> Result<Outlier, String> {
    let text =
        format!("listeners: []\nclusters:\n  - name: a\n    endpoints: [ 127.0.0.1:1 ]\n{outlier}");
    load_str(&text, "t.yaml")
        .map(|s| s.clusters[0].outlier.clone())
        .map_err(|p| p.to_string())
}

#[test]
fn defaults_are_envoys_and_keys_override_them() {
    assert_eq!(load_outlier(""), Ok(Outlier::default()));
    let o = load_outlier("    outlier: { consecutive_5xx: 0, base_ejection: 5s }\n").unwrap();
    assert_eq!(o.consecutive_5xx, 0);
    assert_eq!(o.base_ejection, Duration::from_secs(5));
    assert_eq!(o.max_ejection_percent, 10);
}

#[test]
fn bad_values_are_reported_with_positions() {
    let e = load_outlier("    outlier: { max_ejection_percent: 101 }\n").unwrap_err();
    assert!(
        e.contains("t.yaml:5:") && e.contains("from 0 to 100"),
        "{e}"
    );
    let e = load_outlier("    outlier: { consecutive: 3 }\n").unwrap_err();
    assert!(e.contains("unknown field `consecutive` in outlier"), "{e}");
    let e = load_outlier("    outlier: { base_ejection: 10m, max_ejection: 1m }\n").unwrap_err();
    assert!(
        e.contains("max_ejection must be at least base_ejection"),
        "{e}"
    );
}

fn load(extra: &str) -> Result<(Option<RetryPolicy>, RetryBudget), String> {
    let text =
        format!("listeners: []\nclusters:\n  - name: a\n    endpoints: [ 127.0.0.1:1 ]\n{extra}");
    load_str(&text, "t.yaml")
        .map(|s| {
            (
                s.clusters[0].retry.clone(),
                s.clusters[0].retry_budget.clone(),
            )
        })
        .map_err(|p| p.to_string())
}

#[test]
fn policy_and_budget_decode_with_defaults() {
    let (p, b) = load("    retry: { attempts: 3, retry_on: [ reset, 5xx, 503 ] }\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let p = p.expect("a policy");
    assert_eq!(p.attempts, 3);
    assert_eq!(p.backoff, DEFAULT_BACKOFF);
    assert!(p.on_status(500) && p.on_failure(FailureKind::Reset));
    assert!(!p.on_failure(FailureKind::Connect));
    assert_eq!(b, RetryBudget::default());
    assert_eq!(load(""), Ok((None, RetryBudget::default())));
}

#[test]
fn bad_policies_are_reported() {
    let e = load("    retry: { attempts: 9, retry_on: [ 5xx ] }\n").unwrap_err();
    assert!(e.contains("from 1 to 5"), "{e}");
    let e = load("    retry: { attempts: 2, retry_on: [ 404 ] }\n").unwrap_err();
    assert!(e.contains("not a 5xx"), "{e}");
    let e = load("    retry: { attempts: 2, retry_on: [ sometimes ] }\n").unwrap_err();
    assert!(e.contains("unknown retry condition `sometimes`"), "{e}");
    let e = load("    retry_budget: { ratio: 2 }\n").unwrap_err();
    assert!(e.contains("from 0 to 1"), "{e}");
}

#[test]
fn cluster_limits_decode_and_are_off_by_default() {
    let limits = |extra: &str| {
        let text = format!(
            "listeners: []\nclusters:\n  - name: a\n    endpoints: [ 127.0.0.1:1 ]\n{extra}"
        );
        load_str(&text, "t.yaml")
            .map(|s| s.clusters[0].limits.clone())
            .map_err(|p| p.to_string())
    };
    let none = limits("").expect("loads");
    assert_eq!((none.max_requests, none.max_retries), (None, None));
    let some = limits("    limits: { max_requests: 100, max_retries: 3 }\n").expect("loads");
    assert_eq!((some.max_requests, some.max_retries), (Some(100), Some(3)));
    let conns = limits("    limits: { max_connections: 10 }\n").expect("loads");
    assert_eq!(conns.max_connections, Some(10));
    let e = limits("    limits: { max_pending: 10 }\n").unwrap_err();
    assert!(
        e.contains("unknown field `max_pending` in cluster limits"),
        "{e}"
    );
    // Zero connections or requests would refuse everything; zero retries is a setting.
    let e = limits("    limits: { max_requests: 0, max_connections: 0 }\n").unwrap_err();
    assert!(e.contains("max_requests must be greater than zero"), "{e}");
    assert!(
        e.contains("max_connections must be greater than zero"),
        "{e}"
    );
    let none = limits("    limits: { max_retries: 0 }\n").expect("loads");
    assert_eq!(none.max_retries, Some(0));
}

#[test]
fn per_try_timeout_and_the_retry_on_key() {
    let (p, _) =
        load("    retry: { attempts: 2, retry_on: [ unavailable ], per_try_timeout: 250ms }\n")
            .unwrap_or_else(|e| panic!("{e}"));
    let p = p.expect("a policy");
    assert_eq!(
        p.per_try_timeout,
        Some(std::time::Duration::from_millis(250))
    );
    assert!(p.on_grpc(14) && !p.on_grpc(13) && !p.on_status(503));
    let e =
        load("    retry: { attempts: 2, retry_on: [ 5xx ], per_try_timeout: 0s }\n").unwrap_err();
    assert!(
        e.contains("per_try_timeout must be greater than zero"),
        "{e}"
    );
    // A bare `on` is what YAML 1.1 tools (Helm) turn into `true`: refused, naming the key.
    let e = load("    retry: { attempts: 2, on: [ 5xx ] }\n").unwrap_err();
    assert!(e.contains("retry_on"), "{e}");
}
