//! DNS discovery: cluster endpoints written as `host:port` become the live set of every
//! address their names resolve to (A and AAAA), re-resolved as the answers' TTLs say, on a
//! thread of its own so a slow or dead DNS server never stalls a data-plane worker.
//!
//! - [`live`]: the table workers read (one lock-free load per request to a named cluster).
//! - [`resolver`]: the thread that fills it, with `hickory-resolver` and the pod's
//!   `/etc/resolv.conf` (search list, `ndots`), or the servers `--dns-server` names.

pub mod live;
pub mod resolver;

pub use live::{Live, Resolved};

/// Registers the help text of discovery's metrics and the upstream side's resilience metrics
/// (after the recorder is installed; called when the resolver thread starts).
pub fn describe() {
    metrics::describe_counter!(
        "ringside_dns_resolutions_total",
        "Lookups of cluster endpoint names by result (changed, ok, empty, error)"
    );
    metrics::describe_gauge!(
        "ringside_cluster_endpoints",
        "Live endpoints of a cluster with DNS names"
    );
    crate::core::up::describe();
    crate::core::shed::describe();
}
