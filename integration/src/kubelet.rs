//! A config directory laid out and updated exactly like kubelet's atomic writer does for a
//! mounted ConfigMap: `..<timestamp>/ringside.yaml`, `..data -> ..<timestamp>`, and the visible
//! `ringside.yaml -> ..data/ringside.yaml`.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

static VERSION: AtomicU32 = AtomicU32::new(0);

fn write_version(dir: &Path, content: &str) -> String {
    let n = VERSION.fetch_add(1, Ordering::Relaxed);
    let name = format!("..2026_11_24_19_00_00.{n:09}");
    std::fs::create_dir(dir.join(&name)).expect("version dir");
    std::fs::write(dir.join(&name).join("ringside.yaml"), content).expect("write version");
    name
}

pub fn create(dir: &Path, content: &str) {
    let first = write_version(dir, content);
    std::os::unix::fs::symlink(&first, dir.join("..data")).expect("..data");
    std::os::unix::fs::symlink("..data/ringside.yaml", dir.join("ringside.yaml"))
        .expect("ringside.yaml");
}

/// New version directory, `..data_tmp` symlink, rename over `..data`, old directory removed.
pub fn update(dir: &Path, content: &str) -> Instant {
    let old = std::fs::read_link(dir.join("..data")).expect("read ..data");
    let new = write_version(dir, content);
    std::os::unix::fs::symlink(&new, dir.join("..data_tmp")).expect("..data_tmp");
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).expect("rename ..data");
    let renamed = Instant::now();
    std::fs::remove_dir_all(dir.join(old)).expect("remove old version");
    renamed
}
