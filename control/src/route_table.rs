//! The routes of one HTTP listener, indexed so that finding a request's route costs the same
//! with one route or ten thousand.
//!
//! The answer is defined as a linear scan would give it: the first route, in config order,
//! whose conditions all hold. The index only narrows which routes are tried:
//!
//! - by host: routes with an exact `host` sit in a hash map under their lowercase host;
//!   `*`-wildcards in a second map under their lowercase suffix, which a request's host is
//!   looked up in once per distinct suffix length; routes without a host are tried for every
//!   request;
//! - within each host's group, by path: exact `path`s in a hash map, `path_prefix`es (and
//!   routes without a path, as the empty prefix) in a radix tree walked once along the path;
//! - every candidate is then checked in full (method, headers, and again host and path), in
//!   config order, and the lowest-numbered match over all groups wins.
//!
//! So a lookup costs a few hash lookups and one tree walk, bounded by the lengths of the host
//! and the path, plus the candidates that share the request's host and path but fail on
//! method or headers.

use crate::path_trie::PathTrie;
use crate::route::{normalize_host, HostRule, PathRule, RequestView, RouteSpec};
use std::collections::HashMap;
use std::sync::Arc;

/// Groups this small are scanned in order rather than indexed by path: a mesh config has
/// one or a few routes per host, and a short scan is cheaper than building and walking an
/// index, in time and memory.
const SCAN_AT_MOST: usize = 8;

/// Hosts up to this many bytes are lowercased on the stack (DNS names have at most 253).
const HOST_BUF: usize = 256;

/// Routes of one HTTP listener, in config order, with their host and path index.
#[derive(Clone, Debug)]
pub struct RouteTable {
    routes: Vec<RouteSpec>,
    /// Every group's route indices, one run per group, ascending within each run: one
    /// allocation for the whole index rather than one per host.
    members: Box<[u32]>,
    /// Lowercase exact host → its routes.
    exact_hosts: HashMap<Arc<str>, Group>,
    /// Lowercase wildcard suffix (what followed `*`) → its routes.
    suffixes: HashMap<Arc<str>, Group>,
    /// The distinct lengths of the keys of `suffixes`, ascending.
    suffix_lens: Box<[usize]>,
    /// Routes without a host condition.
    any_host: Group,
}

/// Routes that share a host condition. 16 bytes: a mesh config has one group per service.
#[derive(Clone, Debug)]
enum Group {
    /// `members[start..start + len]`, scanned in order.
    Scan { start: u32, len: u32 },
    /// Too many to scan: indexed by path.
    Indexed(Box<PathIndex>),
}

/// The routes of a group too large to scan, by path.
#[derive(Clone, Debug)]
struct PathIndex {
    /// Exact `path` → its routes, ascending.
    exact: HashMap<Arc<str>, Box<[u32]>>,
    /// `path_prefix`es, and routes without a path under the empty prefix.
    prefixes: PathTrie,
}

/// Which host condition a route has, for grouping: 0 none, 1 exact, 2 wildcard suffix.
fn host_key(route: &RouteSpec) -> (u8, Option<&Arc<str>>) {
    match route.host_rule() {
        HostRule::Any => (0, None),
        HostRule::Exact(h) => (1, Some(h)),
        HostRule::Suffix(s) => (2, Some(s)),
    }
}

impl RouteTable {
    /// Indexes `routes`, which are in config order.
    pub(crate) fn new(routes: Vec<RouteSpec>) -> Self {
        // All indices, sorted by host condition; the sort is stable, so each run of one
        // host stays in config order. Built without a small allocation per host, so that a
        // reload leaves no scattered leftovers in the allocator's pages.
        // More than u32::MAX routes cannot be read from a config file in memory.
        let mut members: Vec<u32> = (0..routes.len())
            .map(|i| u32::try_from(i).unwrap_or(u32::MAX))
            .collect();
        let key = |i: &u32| routes.get(*i as usize).map(host_key);
        members.sort_by(|a, b| key(a).cmp(&key(b)));
        let runs: Vec<(usize, usize)> = runs(&members, |a, b| key(a) == key(b));
        let (mut n_exact, mut n_suffix) = (0, 0);
        for &(start, _) in &runs {
            match key(&members[start]) {
                Some((1, _)) => n_exact += 1,
                Some((2, _)) => n_suffix += 1,
                _ => {}
            }
        }
        let mut table = RouteTable {
            exact_hosts: HashMap::with_capacity(n_exact),
            suffixes: HashMap::with_capacity(n_suffix),
            suffix_lens: Box::default(),
            any_host: Group::Scan { start: 0, len: 0 },
            members: Box::default(),
            routes: Vec::new(),
        };
        for (start, end) in runs {
            let group = Group::new(&members, start, end, &routes);
            match key(&members[start]) {
                Some((1, Some(h))) => {
                    table.exact_hosts.insert(h.clone(), group);
                }
                Some((2, Some(s))) => {
                    table.suffixes.insert(s.clone(), group);
                }
                _ => table.any_host = group,
            }
        }
        let mut lens: Vec<usize> = table.suffixes.keys().map(|s| s.len()).collect();
        lens.sort_unstable();
        lens.dedup();
        table.suffix_lens = lens.into();
        table.members = members.into();
        table.routes = routes;
        table
    }

    /// The first route, in config order, whose match holds for `req`.
    pub fn find(&self, req: &impl RequestView) -> Option<&RouteSpec> {
        let mut best = u32::MAX;
        let groups = (&self.routes[..], &self.members[..]);
        self.any_host.first_match(groups, req, &mut best);
        if let Some(host) = req.host() {
            with_lowercase(normalize_host(host), |host| {
                if let Some(g) = self.exact_hosts.get(host) {
                    g.first_match(groups, req, &mut best);
                }
                // A wildcard needs at least one byte before its suffix.
                for &len in self.suffix_lens.iter().take_while(|&&l| l < host.len()) {
                    let group = host
                        .get(host.len() - len..)
                        .and_then(|s| self.suffixes.get(s));
                    if let Some(g) = group {
                        g.first_match(groups, req, &mut best);
                    }
                }
            });
        }
        self.routes.get(best as usize)
    }

    /// The definition `find` keeps to: the first route whose match holds, by a linear scan.
    /// The test oracle for `find`; outside this crate's tests it exists with the `oracle`
    /// feature (for fuzz targets: build the table with [`crate::load_str`]).
    #[cfg(any(test, feature = "oracle"))]
    pub fn find_by_scan(&self, req: &impl RequestView) -> Option<&RouteSpec> {
        self.routes.iter().find(|r| r.matches(req))
    }

    /// All routes in config order.
    pub fn routes(&self) -> &[RouteSpec] {
        &self.routes
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// Whether the listener has no routes.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}

/// `[start, end)` of each run of neighbours that `same` holds for.
fn runs(items: &[u32], same: impl Fn(&u32, &u32) -> bool) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=items.len() {
        if i == items.len() || !same(&items[start], &items[i]) {
            out.push((start, i));
            start = i;
        }
    }
    out
}

impl Group {
    /// The group of `members[start..end]`.
    fn new(members: &[u32], start: usize, end: usize, routes: &[RouteSpec]) -> Group {
        let run = &members[start..end];
        if run.len() <= SCAN_AT_MOST {
            // Both fit: there are fewer than u32::MAX routes.
            let to_u32 = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
            return Group::Scan {
                start: to_u32(start),
                len: to_u32(run.len()),
            };
        }
        let mut exact: HashMap<Arc<str>, Vec<u32>> = HashMap::new();
        let mut prefixes = PathTrie::default();
        for &i in run {
            let Some(route) = routes.get(i as usize) else {
                continue;
            };
            match route.path_rule() {
                PathRule::Any => prefixes.insert(b"", i),
                PathRule::Prefix(p) => prefixes.insert(p.as_bytes(), i),
                PathRule::Exact(p) => exact.entry(p.clone()).or_default().push(i),
            }
        }
        Group::Indexed(Box::new(PathIndex {
            exact: exact.into_iter().map(|(k, v)| (k, v.into())).collect(),
            prefixes,
        }))
    }

    /// Lowers `best` to the first member whose match holds for `req`, if one comes before it.
    fn first_match(
        &self,
        (routes, members): (&[RouteSpec], &[u32]),
        req: &impl RequestView,
        best: &mut u32,
    ) {
        match self {
            Group::Scan { start, len } => {
                let (start, len) = (*start as usize, *len as usize);
                let run = members.get(start..start + len).unwrap_or_default();
                first_in(run, routes, req, best);
            }
            Group::Indexed(index) => {
                if let Some(run) = index.exact.get(req.path()) {
                    first_in(run, routes, req, best);
                }
                index.prefixes.prefixes_of(req.path().as_bytes(), |run| {
                    first_in(run, routes, req, best);
                });
            }
        }
    }
}

/// `members` ascending: stops at the first that matches or at `best`, whichever is first.
fn first_in(members: &[u32], routes: &[RouteSpec], req: &impl RequestView, best: &mut u32) {
    for &i in members.iter().take_while(|&&i| i < *best) {
        if routes.get(i as usize).is_some_and(|r| r.matches(req)) {
            *best = i;
            return;
        }
    }
}

/// Calls `f` with `host` ASCII-lowercased, on the stack unless it is unusually long.
fn with_lowercase(host: &str, f: impl FnOnce(&str)) {
    let mut buf = [0u8; HOST_BUF];
    if let Some(dst) = buf.get_mut(..host.len()) {
        dst.copy_from_slice(host.as_bytes());
        dst.make_ascii_lowercase();
        // ASCII lowercasing keeps UTF-8 valid, so this always succeeds.
        if let Ok(lower) = std::str::from_utf8(dst) {
            return f(lower);
        }
    }
    f(&host.to_ascii_lowercase());
}

#[cfg(test)]
#[path = "route_table_tests.rs"]
mod tests;
