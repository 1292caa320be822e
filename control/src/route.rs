//! Compiled HTTP routing: first-match route lookup and weighted backend choice.
//!
//! Everything that can be prepared at load time (lowercasing, wildcard
//! suffixes, cumulative weights) is, so per-request work never allocates.

use crate::model::{Route, RouteMatch};
use crate::snapshot::ClusterId;
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

/// Routes of one HTTP listener, in config order.
#[derive(Clone, Debug)]
pub struct RouteTable {
    routes: Vec<RouteSpec>,
}

impl RouteTable {
    pub(crate) fn new(routes: Vec<RouteSpec>) -> Self {
        RouteTable { routes }
    }

    /// The first route whose match holds for `req`.
    pub fn find(&self, req: &impl RequestView) -> Option<&RouteSpec> {
        self.routes.iter().find(|r| r.matcher.matches(req))
    }

    /// All routes in config order.
    pub fn routes(&self) -> &[RouteSpec] {
        &self.routes
    }

    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}

/// A compiled route.
#[derive(Clone, Debug)]
pub struct RouteSpec {
    pub name: String,
    pub timeout: Duration,
    matcher: Matcher,
    /// Never empty and with a positive total: validation guarantees both.
    backends: Vec<(ClusterId, u32)>,
    /// `cumulative[i]` = sum of weights of `backends[..=i]`.
    cumulative: Vec<u64>,
}

impl RouteSpec {
    /// `resolve` maps a backend's cluster name to its id; `None` if unknown.
    pub(crate) fn compile(
        route: &Route,
        resolve: impl Fn(&str) -> Option<ClusterId>,
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
            matcher: Matcher::compile(&route.matcher),
            backends,
            cumulative,
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
}

#[derive(Clone, Debug)]
enum PathMatch {
    Prefix(String),
    Exact(String),
}

#[derive(Clone, Debug)]
enum HostMatch {
    /// Lowercase host.
    Exact(String),
    /// Lowercase suffix including the leading dot, e.g. `.example.com`.
    Subdomain(String),
}

#[derive(Clone, Debug)]
struct Matcher {
    path: Option<PathMatch>,
    host: Option<HostMatch>,
    method: Option<String>,
    /// Lowercase names, exact values.
    headers: Vec<(String, Vec<u8>)>,
}

impl Matcher {
    fn compile(m: &RouteMatch) -> Self {
        let path = match (&m.path, &m.path_prefix) {
            (Some(p), _) => Some(PathMatch::Exact(p.clone())),
            (None, Some(p)) => Some(PathMatch::Prefix(p.clone())),
            (None, None) => None,
        };
        let host = m.host.as_ref().map(|h| {
            let h = h.to_ascii_lowercase();
            match h.strip_prefix('*') {
                Some(suffix) => HostMatch::Subdomain(suffix.to_string()),
                None => HostMatch::Exact(h),
            }
        });
        Matcher {
            path,
            host,
            method: m.method.clone(),
            headers: m
                .headers
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.as_bytes().to_vec()))
                .collect(),
        }
    }

    fn matches(&self, req: &impl RequestView) -> bool {
        let path_ok = match &self.path {
            None => true,
            Some(PathMatch::Prefix(p)) => req.path().starts_with(p.as_str()),
            Some(PathMatch::Exact(p)) => req.path() == p,
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
                .all(|(name, value)| req.header(name) == Some(value.as_slice()))
    }
}

fn host_matches(rule: &HostMatch, host: Option<&str>) -> bool {
    let Some(host) = host.map(strip_port) else {
        return false;
    };
    // A fully qualified `example.com.` names the same host.
    let host = host.strip_suffix('.').unwrap_or(host);
    match rule {
        HostMatch::Exact(h) => host.eq_ignore_ascii_case(h),
        HostMatch::Subdomain(suffix) => {
            host.len() > suffix.len()
                && host.is_char_boundary(host.len() - suffix.len())
                && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
        }
    }
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
