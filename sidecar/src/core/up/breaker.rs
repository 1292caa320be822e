//! Circuit breaking: a cluster's upstream connections, requests and retries in flight, counted across all workers
//! (one shared atomic each), refused at once beyond the cluster's `limits`. A cluster without
//! a limit counts nothing, so it pays nothing.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// In-flight counts of one cluster.
#[derive(Debug, Default)]
pub struct Breaker {
    connections: AtomicU32,
    requests: AtomicU32,
    retries: AtomicU32,
}

/// What a slot counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An upstream connection, for as long as it is open.
    Connection,
    Request,
    Retry,
}

impl Breaker {
    fn counter(&self, kind: Kind) -> &AtomicU32 {
        match kind {
            Kind::Connection => &self.connections,
            Kind::Request => &self.requests,
            Kind::Retry => &self.retries,
        }
    }

    /// A slot under `limit` (`None`: unlimited, nothing counted), or `None` when full.
    pub fn admit(self: &Arc<Self>, kind: Kind, limit: Option<u32>) -> Option<Slot> {
        let Some(limit) = limit else {
            return Some(Slot(None));
        };
        let c = self.counter(kind);
        if c.fetch_add(1, Ordering::AcqRel) >= limit {
            c.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Slot(Some((self.clone(), kind))))
    }

    /// In flight now (admin API, tests).
    pub fn in_flight(&self, kind: Kind) -> u32 {
        self.counter(kind).load(Ordering::Acquire)
    }
}

/// A counted request or retry; released on drop, whatever path the exchange took.
#[derive(Debug)]
pub struct Slot(Option<(Arc<Breaker>, Kind)>);

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some((b, kind)) = &self.0 {
            b.counter(*kind).fetch_sub(1, Ordering::AcqRel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_bounded_and_released_on_drop() {
        let b = Arc::new(Breaker::default());
        let s1 = b.admit(Kind::Request, Some(2));
        let s2 = b.admit(Kind::Request, Some(2));
        assert!(s1.is_some() && s2.is_some());
        assert!(b.admit(Kind::Request, Some(2)).is_none());
        assert_eq!(b.in_flight(Kind::Request), 2);
        drop(s1);
        assert!(b.admit(Kind::Request, Some(2)).is_some());
        assert!(b.admit(Kind::Retry, Some(0)).is_none());
        assert!(b.admit(Kind::Retry, None).is_some());
        assert_eq!(b.in_flight(Kind::Retry), 0, "unlimited counts nothing");
    }
}
