//! The id by which compiled routes and listeners name a cluster.
//!
//! Its own module so that routes (which hold ids) and the snapshot (which holds routes) do
//! not import each other.

/// Index into `Snapshot::clusters`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClusterId(pub usize);
