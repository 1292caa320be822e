//! Authorisation by peer identity: a listener's `authz.allow` applies to every connection
//! (tcp) or request (http), a route's on top of it. The identity is the verified client
//! certificate's, known for the whole connection (`Conn::tls`); a connection without one is
//! never admitted where a list applies.

use control::snapshot::ListenerSpec;
use control::tls::AllowList;
use control::RouteSpec;

use super::conns::Conn;

/// Whether a tcp listener's connection may proceed; a refusal is counted and logged.
pub fn admits_connection(spec: &ListenerSpec, conn: &Conn) -> bool {
    decide(&spec.name, [spec.authz.as_deref()], conn)
}

/// Whether a request on `route` may proceed (listener list, then route list); a refusal is
/// counted and logged, and the caller answers 403 (RFC 9110 §15.5.4).
pub fn admits_request(spec: &ListenerSpec, route: &RouteSpec, conn: &Conn) -> bool {
    decide(
        &spec.name,
        [spec.authz.as_deref(), route.authz.as_deref()],
        conn,
    )
}

fn decide<const N: usize>(listener: &str, lists: [Option<&AllowList>; N], conn: &Conn) -> bool {
    if lists.iter().all(Option::is_none) {
        return true;
    }
    let peer = conn.peer_identity();
    let allowed = lists.iter().flatten().all(|l| l.admits(peer));
    let result = if allowed { "allowed" } else { "denied" };
    if !allowed {
        tracing::debug!(peer = %conn.peer, listener,
            identity = peer.map_or("none", |p| p.display()), "refused by authz");
    }
    metrics::counter!("ringside_authz_decisions_total", "listener" => listener.to_owned(), "result" => result)
        .increment(1);
    allowed
}
