//! A config directory laid out and updated exactly like kubelet's atomic writer does for a
//! mounted ConfigMap: `..<timestamp>/ringside.yaml`, `..data -> ..<timestamp>`, and the visible
//! `ringside.yaml -> ..data/ringside.yaml`.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

static VERSION: AtomicU32 = AtomicU32::new(0);

fn write_version(dir: &Path, files: &[(&str, &str)]) -> String {
    let n = VERSION.fetch_add(1, Ordering::Relaxed);
    let name = format!("..2026_11_24_19_00_00.{n:09}");
    std::fs::create_dir(dir.join(&name)).expect("version dir");
    for (file, content) in files {
        std::fs::write(dir.join(&name).join(file), content).expect("write version");
    }
    name
}

pub fn create(dir: &Path, content: &str) {
    create_files(dir, &[("ringside.yaml", content)]);
}

/// A mounted Secret or ConfigMap with several keys (e.g. `tls.crt`, `tls.key`, `ca.crt`).
pub fn create_files(dir: &Path, files: &[(&str, &str)]) {
    let first = write_version(dir, files);
    std::os::unix::fs::symlink(&first, dir.join("..data")).expect("..data");
    for (file, _) in files {
        std::os::unix::fs::symlink(format!("..data/{file}"), dir.join(file)).expect("key link");
    }
}

/// New version directory, `..data_tmp` symlink, rename over `..data`, old directory removed.
pub fn update(dir: &Path, content: &str) -> Instant {
    update_files(dir, &[("ringside.yaml", content)])
}

/// [`update`] for a volume made by [`create_files`]: every key changes at once.
pub fn update_files(dir: &Path, files: &[(&str, &str)]) -> Instant {
    let old = std::fs::read_link(dir.join("..data")).expect("read ..data");
    let new = write_version(dir, files);
    std::os::unix::fs::symlink(&new, dir.join("..data_tmp")).expect("..data_tmp");
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).expect("rename ..data");
    let renamed = Instant::now();
    std::fs::remove_dir_all(dir.join(old)).expect("remove old version");
    renamed
}
