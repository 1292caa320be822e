//! Ringside control plane: loads, validates and compiles the proxy config.
//!
//! Loading is all-or-nothing: a file either becomes a [`snapshot::Snapshot`]
//! or yields every problem found, each with `file:line:col`, so a bad reload
//! never half-applies and the operator can fix everything in one pass.
#![forbid(unsafe_code)]

mod cluster_id;
pub mod duration;
pub mod endpoint;
pub mod model;
mod node;
mod parse;
mod path_trie;
pub mod problem;
pub mod rate_limit;
mod raw;
mod raw_cluster;
pub mod resilience;
pub mod retry;
pub mod route;
mod route_table;
mod rules;
pub mod snapshot;
pub mod tls;
mod to_model;
mod validate;
pub mod watch;
mod yaml;

use problem::{Problem, Problems};
use sha2::{Digest, Sha256};
use snapshot::Snapshot;
use std::path::Path;

pub use route::{RequestView, RouteSpec};
pub use route_table::RouteTable;
pub use snapshot::{ClusterId, ClusterSpec, ListenerKind, ListenerSpec};

/// Reads and loads a config file. Problems name the file as `path` was given.
pub fn load_file(path: &Path) -> Result<Snapshot, Problems> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path)
        .map_err(|e| Problems::one(Problem::new(&file, 1, 1, format!("cannot read: {e}"))))?;
    match std::str::from_utf8(&bytes) {
        Ok(text) => load_str(text, &file),
        Err(e) => {
            let (line, col) = line_col(&bytes[..e.valid_up_to()]);
            Err(Problems::one(Problem::new(
                &file,
                line,
                col,
                "the file is not valid UTF-8",
            )))
        }
    }
}

/// Loads config text; `file` is only used to label problems.
pub fn load_str(text: &str, file: &str) -> Result<Snapshot, Problems> {
    let sha256 = hex::encode(Sha256::digest(text.as_bytes()));
    let root = parse::parse(text, file).map_err(Problems::one)?;
    let mut sink = node::Sink::new(file);
    let raw = raw::decode(&root, &mut sink);
    validate::check(&raw, &mut sink);
    let problems = sink.into_problems();
    if !problems.is_empty() {
        return Err(Problems::sorted(problems));
    }
    let internal = |reason: String| {
        Problems::one(Problem::new(
            file,
            1,
            1,
            format!("internal error, please report: {reason}"),
        ))
    };
    let config = to_model::config(raw)
        .ok_or_else(|| internal("validated config is missing a required value".into()))?;
    Snapshot::compile(config, sha256).map_err(internal)
}

/// 1-based position just after `prefix`, in characters.
fn line_col(prefix: &[u8]) -> (u32, u32) {
    let text = String::from_utf8_lossy(prefix);
    let line = text.matches('\n').count() + 1;
    let col = text.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (
        u32::try_from(line).unwrap_or(u32::MAX),
        u32::try_from(col).unwrap_or(u32::MAX),
    )
}
