//! The one retry rule, for every protocol pair (DESIGN.md §5.11), and where a cluster's retry
//! policy may widen it: only among the replays the rule deems safe.

use control::retry::{FailureKind, RetryPolicy};

use crate::core::error::{ProxyError, Retry};

/// Attempts per request, the first included: a replay is only ever of a request the rule below
/// allows, so this bounds how long a burst of refusals (a GOAWAY storm) may delay one request.
pub const MAX_ATTEMPTS: u32 = 3;

/// The facts about a request and its attempt that decide whether it may be replayed.
#[derive(Debug, Clone, Copy)]
pub struct Replay {
    /// RFC 9110 §9.2.2: GET, HEAD, OPTIONS, TRACE, PUT, DELETE.
    pub idempotent: bool,
    /// The request body is absent, or every byte of it is still held to send again.
    pub body_held: bool,
    /// The attempt used a connection that had carried earlier requests. A reused connection
    /// failing without a response is the keep-alive race (the upstream closed it as the
    /// request went out), worth one replay of an idempotent request; a fresh connection
    /// failing is the upstream's own failure, left to retry policies.
    pub reused: bool,
}

/// What the one rule allows after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// No replay.
    No,
    /// A replay the rule itself makes: the upstream provably did not process the request, or
    /// an idempotent one met the keep-alive race.
    Safe,
    /// A replay only the cluster's retry policy asks for (within its budget).
    Policy,
}

/// The one retry rule, for every protocol pair (DESIGN.md §5.11). A replay is *safe* when the
/// request's body is held and the upstream provably did not process it, or the request is
/// idempotent (RFC 9110 §9.2.2: a proxy must not automatically retry a non-idempotent request
/// the upstream may have seen). Among safe replays the rule itself makes the unprocessed ones
/// and the keep-alive race (a reused connection), at most [`MAX_ATTEMPTS`] in all; a retry
/// `policy` may add the others it names, up to its own `attempts`. A policy never widens what
/// is safe.
pub fn may_replay(
    e: &ProxyError,
    req: Replay,
    attempts: u32,
    policy: Option<&RetryPolicy>,
) -> Verdict {
    let safe = req.body_held
        && match e.retry() {
            Retry::Always => true,
            Retry::IfIdempotent => req.idempotent,
            Retry::Never => false,
        };
    if !safe {
        return Verdict::No;
    }
    // A per-try timeout on a reused connection is no keep-alive race: only a policy retries it.
    let race = req.reused && !matches!(e, ProxyError::AttemptTimeout);
    if (e.retry() == Retry::Always || race) && attempts < MAX_ATTEMPTS {
        return Verdict::Safe;
    }
    match (policy, failure_kind(e)) {
        (Some(p), Some(kind)) if attempts < p.attempts && p.on_failure(kind) => Verdict::Policy,
        _ => Verdict::No,
    }
}

/// Whether a response with `status` may be retried: only under a policy that names it, and
/// only for an idempotent request whose body is held (the upstream processed it).
pub fn may_retry_status(
    status: u16,
    req: Replay,
    attempts: u32,
    policy: Option<&RetryPolicy>,
) -> bool {
    policy.is_some_and(|p| {
        attempts < p.attempts && req.body_held && req.idempotent && p.on_status(status)
    })
}

/// Whether a Trailers-Only gRPC response with status `code` may be retried: only under a
/// policy that names the code (`unavailable`, ...), and only if the request's body is held.
/// Unlike [`may_retry_status`] the method is not asked: every gRPC call is a POST, and naming a
/// gRPC code in a route's policy is the service owner's statement that a call answered so was
/// not acted on (gRPC's own retry policy, gRFC A6, retries non-idempotent calls the same way).
pub fn may_retry_grpc(code: u8, req: Replay, attempts: u32, policy: Option<&RetryPolicy>) -> bool {
    policy.is_some_and(|p| attempts < p.attempts && req.body_held && p.on_grpc(code))
}

/// How a retry condition sees a failure.
pub fn failure_kind(e: &ProxyError) -> Option<FailureKind> {
    match e {
        ProxyError::Connect { .. } | ProxyError::ConnectTimeout(_) => Some(FailureKind::Connect),
        ProxyError::Refused(_) | ProxyError::UpstreamReset(h2::Reason::REFUSED_STREAM) => {
            Some(FailureKind::Refused)
        }
        ProxyError::StaleConnection(_)
        | ProxyError::UpstreamClosed
        | ProxyError::UpstreamIo(_)
        | ProxyError::UpstreamReset(_) => Some(FailureKind::Reset),
        ProxyError::AttemptTimeout => Some(FailureKind::AttemptTimeout),
        _ => None,
    }
}

/// The `reason` label of `ringside_retries_total`.
pub fn kind_label(k: FailureKind) -> &'static str {
    match k {
        FailureKind::Connect => "connect-failure",
        FailureKind::Refused => "refused-stream",
        FailureKind::Reset => "reset",
        FailureKind::AttemptTimeout => "per-try-timeout",
    }
}

/// RFC 9110 §9.2.2.
pub fn idempotent(method: &str) -> bool {
    matches!(
        method,
        "GET" | "HEAD" | "OPTIONS" | "TRACE" | "PUT" | "DELETE"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const POST_NO_BODY: Replay = Replay {
        idempotent: false,
        body_held: true,
        reused: true,
    };
    const GET: Replay = Replay {
        idempotent: true,
        body_held: true,
        reused: true,
    };

    fn rule(e: &ProxyError, req: Replay, attempts: u32) -> bool {
        may_replay(e, req, attempts, None) == Verdict::Safe
    }

    fn policy(on: &[control::retry::RetryOn]) -> RetryPolicy {
        RetryPolicy {
            attempts: 3,
            retry_on: on.to_vec(),
            backoff: Duration::from_millis(1),
            per_try_timeout: None,
        }
    }

    #[test]
    fn a_non_idempotent_request_the_upstream_may_have_seen_is_never_replayed() {
        assert!(!rule(&ProxyError::UpstreamClosed, POST_NO_BODY, 1));
        assert!(rule(&ProxyError::UpstreamClosed, GET, 1));
        let fresh = Replay {
            reused: false,
            ..GET
        };
        assert!(!rule(&ProxyError::UpstreamClosed, fresh, 1));
    }

    #[test]
    fn an_unprocessed_request_is_replayed_whatever_its_method() {
        let refused = ProxyError::Refused("GOAWAY".into());
        assert!(rule(&refused, POST_NO_BODY, 1));
        let streamed = Replay {
            body_held: false,
            ..POST_NO_BODY
        };
        assert!(!rule(&refused, streamed, 1), "its body is gone");
        assert!(!rule(&refused, POST_NO_BODY, MAX_ATTEMPTS));
    }

    #[test]
    fn timeouts_and_client_faults_are_never_replayed() {
        assert!(!rule(&ProxyError::Timeout, GET, 1));
        assert!(!rule(&ProxyError::DownstreamClosed, GET, 1));
        assert!(idempotent("PUT") && !idempotent("POST") && !idempotent("PATCH"));
    }

    #[test]
    fn a_policy_widens_only_what_is_safe() {
        use control::retry::RetryOn;
        let p = policy(&[RetryOn::Reset, RetryOn::FiveXx]);
        let fresh_get = Replay {
            reused: false,
            ..GET
        };
        let fresh_post = Replay {
            reused: false,
            ..POST_NO_BODY
        };
        let closed = ProxyError::UpstreamClosed;
        assert_eq!(may_replay(&closed, fresh_get, 1, Some(&p)), Verdict::Policy);
        assert_eq!(
            may_replay(&closed, fresh_get, 3, Some(&p)),
            Verdict::No,
            "attempts spent"
        );
        assert_eq!(
            may_replay(&closed, fresh_post, 1, Some(&p)),
            Verdict::No,
            "POST reached the upstream"
        );
        assert_eq!(
            may_replay(&ProxyError::Timeout, fresh_get, 1, Some(&p)),
            Verdict::No
        );
        let gateway_only = policy(&[RetryOn::Status(503)]);
        assert_eq!(
            may_replay(&closed, fresh_get, 1, Some(&gateway_only)),
            Verdict::No
        );
        assert!(may_retry_status(500, fresh_get, 1, Some(&p)));
        assert!(
            !may_retry_status(500, fresh_post, 1, Some(&p)),
            "never a POST"
        );
        assert!(!may_retry_status(404, fresh_get, 1, Some(&p)));
        assert!(
            !may_retry_status(500, fresh_get, 1, None),
            "no policy, no status retries"
        );
        assert!(may_retry_status(503, fresh_get, 1, Some(&gateway_only)));
        assert!(!may_retry_status(500, fresh_get, 1, Some(&gateway_only)));
    }

    #[test]
    fn a_per_try_timeout_is_retried_only_by_a_policy_and_only_if_idempotent() {
        use control::retry::RetryOn;
        let t = ProxyError::AttemptTimeout;
        assert_eq!(
            may_replay(&t, GET, 1, None),
            Verdict::No,
            "no keep-alive race"
        );
        let p = policy(&[RetryOn::GatewayError]);
        assert_eq!(may_replay(&t, GET, 1, Some(&p)), Verdict::Policy);
        assert_eq!(may_replay(&t, POST_NO_BODY, 1, Some(&p)), Verdict::No);
        let resets_only = policy(&[RetryOn::Reset]);
        assert_eq!(may_replay(&t, GET, 1, Some(&resets_only)), Verdict::No);
    }

    #[test]
    fn a_grpc_status_is_retried_only_when_the_policy_names_it_and_the_body_is_held() {
        use control::retry::RetryOn;
        let p = policy(&[RetryOn::Unavailable]);
        assert!(
            may_retry_grpc(14, POST_NO_BODY, 1, Some(&p)),
            "a gRPC call is a POST"
        );
        assert!(!may_retry_grpc(13, POST_NO_BODY, 1, Some(&p)));
        assert!(
            !may_retry_grpc(14, POST_NO_BODY, 3, Some(&p)),
            "attempts spent"
        );
        let streamed = Replay {
            body_held: false,
            ..POST_NO_BODY
        };
        assert!(!may_retry_grpc(14, streamed, 1, Some(&p)));
        assert!(!may_retry_grpc(14, POST_NO_BODY, 1, None));
        assert!(!may_retry_grpc(
            14,
            POST_NO_BODY,
            1,
            Some(&policy(&[RetryOn::FiveXx]))
        ));
    }
}
