//! One compiled HTTP route: its match conditions and weighted backend choice.
//!
//! Everything that can be prepared at load time (lowercasing, wildcard
//! suffixes, cumulative weights) is, so per-request work never allocates.
//! [`crate::RouteTable`] indexes these routes by host and path; the
//! conditions here stay the definition of what a route matches.

use crate::cluster_id::ClusterId;
use crate::model::{Route, RouteMatch};
use std::sync::Arc;
use std::time::Duration;

/// What the router needs to know about a request.
pub trait RequestView {
    /// Request method, e.g. `GET`.
    fn method(&self) -> &str;
    /// Host from `:authority` or `Host`, possibly with a port.
    fn host(&self) -> Option<&str>;
    /// Path only, without the query string.
    fn path(&self) -> &str;
    /// Value of a header, looked up by its lowercase name.
    fn header(&self, lowercase_name: &str) -> Option<&[u8]>;
}

/// A compiled route.
#[derive(Clone, Debug)]
pub struct RouteSpec {
    pub name: String,
    pub timeout: Duration,
    matcher: Matcher,
    /// Never empty and with a positive total: validation guarantees both.
    backends: Box<[(ClusterId, u32)]>,
    /// `cumulative[i]` = sum of weights of `backends[..=i]`.
    cumulative: Box<[u64]>,
    /// Peers allowed on this route, checked after the listener's; `None`: anyone the
    /// listener admits.
    pub authz: Option<std::sync::Arc<crate::tls::AllowList>>,
    /// The route's rate limit, shared by every worker (a reload starts it afresh).
    pub rate_limit: Option<std::sync::Arc<crate::rate_limit::RateLimiter>>,
    /// The route's own retry policy; `None`: the cluster's applies.
    pub retry: Option<std::sync::Arc<crate::retry::RetryPolicy>>,
}

impl RouteSpec {
    /// `resolve` maps a backend's cluster name to its id; `None` if unknown.
    /// `strings` shares equal hosts, paths, methods and header names between routes.
    pub(crate) fn compile(
        route: &Route,
        resolve: impl Fn(&str) -> Option<ClusterId>,
        strings: &mut Interner,
    ) -> Result<Self, String> {
        let mut backends = Vec::with_capacity(route.backends.len());
        let mut cumulative = Vec::with_capacity(route.backends.len());
        let mut total = 0u64;
        for b in &route.backends {
            let id = resolve(&b.cluster).ok_or_else(|| {
                format!("route `{}`: unknown cluster `{}`", route.name, b.cluster)
            })?;
            total += u64::from(b.weight);
            backends.push((id, b.weight));
            cumulative.push(total);
        }
        if total == 0 {
            return Err(format!("route `{}` has no weight", route.name));
        }
        Ok(RouteSpec {
            name: route.name.clone(),
            timeout: route.timeout,
            matcher: Matcher::compile(&route.matcher, strings),
            backends: backends.into(),
            cumulative: cumulative.into(),
            authz: route.authz.as_ref().and_then(|a| a.compiled.0.clone()),
            rate_limit: route
                .rate_limit
                .as_ref()
                .map(|c| std::sync::Arc::new(crate::rate_limit::RateLimiter::new(c))),
            retry: route.retry.clone().map(std::sync::Arc::new),
        })
    }

    /// Weighted choice. `random` is uniform over `u32`; it is scaled onto
    /// `[0, total)` with a multiply-shift, which is exactly proportional when
    /// `random` is evenly spread and avoids modulo bias.
    pub fn pick_cluster(&self, random: u32) -> ClusterId {
        let total = self.cumulative.last().copied().unwrap_or(0);
        let target = (u64::from(random) * total) >> 32;
        let index = self.cumulative.partition_point(|&c| c <= target);
        self.backends
            .get(index)
            .or(self.backends.last())
            .map_or(ClusterId(0), |b| b.0)
    }

    /// Backends with their weights, in config order.
    pub fn backends(&self) -> &[(ClusterId, u32)] {
        &self.backends
    }

    /// Whether every condition of this route holds for `req`.
    pub(crate) fn matches(&self, req: &impl RequestView) -> bool {
        self.matcher.matches(req)
    }

    /// The host condition, as the route table indexes it.
    pub(crate) fn host_rule(&self) -> HostRule<'_> {
        match &self.matcher.host {
            None => HostRule::Any,
            Some(HostMatch::Exact(h)) => HostRule::Exact(h),
            Some(HostMatch::Subdomain(s)) => HostRule::Suffix(s),
        }
    }

    /// The path condition, as the route table indexes it.
    pub(crate) fn path_rule(&self) -> PathRule<'_> {
        match &self.matcher.path {
            None => PathRule::Any,
            Some(PathMatch::Exact(p)) => PathRule::Exact(p),
            Some(PathMatch::Prefix(p)) => PathRule::Prefix(p),
        }
    }
}

/// A route's host condition, for indexing. Strings are ASCII-lowercase.
pub(crate) enum HostRule<'a> {
    /// No condition: any host, or none.
    Any,
    /// The request's host (port and one trailing dot removed) equals this, ignoring ASCII case.
    Exact(&'a Arc<str>),
    /// The request's host ends with this (what followed `*` in the config) and is longer.
    Suffix(&'a Arc<str>),
}

/// A route's path condition, for indexing. Byte-wise, case-sensitive.
pub(crate) enum PathRule<'a> {
    Any,
    Exact(&'a Arc<str>),
    Prefix(&'a Arc<str>),
}

/// Hands out one shared copy of each distinct string: a mesh config repeats the same
/// hosts, paths, methods and header names across thousands of routes.
#[derive(Default)]
pub(crate) struct Interner {
    seen: std::collections::HashSet<Arc<str>>,
}

impl Interner {
    pub(crate) fn get(&mut self, s: &str) -> Arc<str> {
        if let Some(shared) = self.seen.get(s) {
            return shared.clone();
        }
        let shared: Arc<str> = Arc::from(s);
        self.seen.insert(shared.clone());
        shared
    }
}

#[derive(Clone, Debug)]
enum PathMatch {
    Prefix(Arc<str>),
    Exact(Arc<str>),
}

#[derive(Clone, Debug)]
enum HostMatch {
    /// Lowercase host.
    Exact(Arc<str>),
    /// Lowercase suffix including the leading dot, e.g. `.example.com`.
    Subdomain(Arc<str>),
}

/// A header that must be present: lowercase name, exact value.
type HeaderMatch = (Arc<str>, Box<[u8]>);

#[derive(Clone, Debug)]
struct Matcher {
    path: Option<PathMatch>,
    host: Option<HostMatch>,
    method: Option<Arc<str>>,
    /// Lowercase names, exact values.
    headers: Box<[HeaderMatch]>,
}

impl Matcher {
    fn compile(m: &RouteMatch, strings: &mut Interner) -> Self {
        let path = match (&m.path, &m.path_prefix) {
            (Some(p), _) => Some(PathMatch::Exact(strings.get(p))),
            (None, Some(p)) => Some(PathMatch::Prefix(strings.get(p))),
            (None, None) => None,
        };
        let host = m.host.as_ref().map(|h| {
            let h = h.to_ascii_lowercase();
            match h.strip_prefix('*') {
                Some(suffix) => HostMatch::Subdomain(strings.get(suffix)),
                None => HostMatch::Exact(strings.get(&h)),
            }
        });
        Matcher {
            path,
            host,
            method: m.method.as_deref().map(|m| strings.get(m)),
            headers: m
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        strings.get(&k.to_ascii_lowercase()),
                        v.as_bytes().to_vec().into_boxed_slice(),
                    )
                })
                .collect(),
        }
    }

    fn matches(&self, req: &impl RequestView) -> bool {
        let path_ok = match &self.path {
            None => true,
            Some(PathMatch::Prefix(p)) => req.path().starts_with(&**p),
            Some(PathMatch::Exact(p)) => req.path() == &**p,
        };
        path_ok
            && self.method.as_deref().is_none_or(|m| req.method() == m)
            && self
                .host
                .as_ref()
                .is_none_or(|h| host_matches(h, req.host()))
            && self
                .headers
                .iter()
                .all(|(name, value)| req.header(name) == Some(&**value))
    }
}

fn host_matches(rule: &HostMatch, host: Option<&str>) -> bool {
    let Some(host) = host.map(normalize_host) else {
        return false;
    };
    match rule {
        HostMatch::Exact(h) => host.eq_ignore_ascii_case(h),
        HostMatch::Subdomain(suffix) => {
            host.len() > suffix.len()
                && host.is_char_boundary(host.len() - suffix.len())
                && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
        }
    }
}

/// The host that host conditions compare: without its port, and a fully qualified
/// `example.com.` names the same host as `example.com`. Case is left as it is.
pub(crate) fn normalize_host(host: &str) -> &str {
    let host = strip_port(host);
    host.strip_suffix('.').unwrap_or(host)
}

/// `example.com:8080` -> `example.com`, `[::1]:80` -> `[::1]`.
fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return match host.find(']') {
            Some(end) => &host[..=end],
            None => host,
        };
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_ports() {
        assert_eq!(strip_port("example.com:8080"), "example.com");
        assert_eq!(strip_port("example.com"), "example.com");
        assert_eq!(strip_port("[::1]:80"), "[::1]");
        assert_eq!(strip_port("[::1]"), "[::1]");
    }

    #[test]
    fn wildcard_needs_a_label() {
        let rule = HostMatch::Subdomain(".example.com".into());
        assert!(host_matches(&rule, Some("a.example.com")));
        assert!(host_matches(&rule, Some("A.B.Example.COM:443")));
        assert!(!host_matches(&rule, Some("example.com")));
        assert!(!host_matches(&rule, Some(".example.com")));
        assert!(!host_matches(&rule, Some("badexample.com")));
        assert!(!host_matches(&rule, None));
    }
}
