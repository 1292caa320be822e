//! Real processes: the ringside binary and the Go peers, built once per test binary and
//! killed when their handles drop.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::Runtime;

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The cargo target directory (`CARGO_TARGET_DIR`, else `target/` in the workspace).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// The ringside binary under test: `RINGSIDE_BIN`, or a debug build with the test hooks,
/// built once per test process (cargo serialises concurrent builds itself).
pub fn ringside_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("RINGSIDE_BIN") {
            return PathBuf::from(p);
        }
        let status = Command::new(env!("CARGO"))
            .args([
                "build",
                "-q",
                "-p",
                "ringside",
                "--features",
                "test-hooks",
                "--bin",
                "ringside",
            ])
            .current_dir(workspace_root())
            .status()
            .expect("run cargo build");
        assert!(status.success(), "building ringside failed");
        target_dir().join("debug").join("ringside")
    })
    .clone()
}

pub(crate) fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// A copy of the ringside binary that any uid can run: the build's own may sit under a
/// directory only its owner can enter.
pub fn world_executable_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("ringside-bin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create bin dir");
        chmod(&dir, 0o755);
        let bin = dir.join("ringside");
        std::fs::copy(ringside_bin(), &bin).expect("copy ringside binary");
        chmod(&bin, 0o755);
        bin
    })
    .clone()
}

/// A Go program from `examples/cmd/NAME`, built once per test process.
pub fn go_bin(name: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .expect("go build lock");
    if let Some(p) = built.get(name) {
        return p.clone();
    }
    let out = target_dir().join("go").join(name);
    let status = Command::new("go")
        .args(["build", "-o"])
        .arg(&out)
        .arg(format!("./cmd/{name}"))
        .current_dir(workspace_root().join("examples"))
        .status()
        .expect("run go build (is Go installed?)");
    assert!(status.success(), "go build ./cmd/{name} failed");
    built.insert(name.to_owned(), out.clone());
    out
}

/// Kills the child when dropped, so a failing test leaves nothing running.
#[derive(Debug)]
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The Go origin server (`examples/cmd/origin`) on a `:0` port.
#[derive(Debug)]
pub struct Origin {
    pub addr: SocketAddr,
    pub name: String,
    _proc: Proc,
    _dir: tempfile::TempDir,
}

impl Origin {
    /// Requests for `path` this origin has received (its `/seen?path=` counter): what the
    /// tests count at the upstream rather than trust the proxy's own figures for.
    pub fn seen(&self, path: &str) -> u64 {
        crate::client::get(self.addr, &format!("/seen?path={path}"))
            .text()
            .trim()
            .parse()
            .expect("a count")
    }

    pub fn start(name: &str) -> Origin {
        Self::launch(name, "127.0.0.1:0", None, &[])
    }

    /// An origin that also speaks h2c with prior knowledge on the same port (`-h2c`), for
    /// clusters with `protocol: http2`. Its responses say which protocol arrived in
    /// `x-origin-proto` (`HTTP/1.1` or `HTTP/2.0`), as does `/headers` in `proto`.
    pub fn start_h2c(name: &str) -> Origin {
        Self::launch(name, "127.0.0.1:0", None, &["-h2c"])
    }

    /// With more origin flags (e.g. `-h2c -h2-max-streams 4`).
    pub fn start_with_flags(name: &str, flags: &[&str]) -> Origin {
        Self::launch(name, "127.0.0.1:0", None, flags)
    }

    /// The origin's process id (to stop it with SIGSTOP, for one).
    pub fn pid(&self) -> u32 {
        self._proc.0.id()
    }

    /// On `addr` (port 0 picks one), optionally inside network namespace `netns`.
    pub fn start_at(name: &str, addr: &str, netns: Option<&str>) -> Origin {
        Self::launch(name, addr, netns, &[])
    }

    fn launch(name: &str, addr: &str, netns: Option<&str>, extra: &[&str]) -> Origin {
        let (addr, proc, dir) = start_go_server_at("origin", name, addr, netns, extra);
        Origin {
            addr,
            name: name.to_owned(),
            _proc: proc,
            _dir: dir,
        }
    }
}

/// Starts `examples/cmd/BIN -addr 127.0.0.1:0 -name NAME -ready-file F EXTRA..` and waits
/// for the address it bound.
pub(crate) fn start_go_server(
    bin: &str,
    name: &str,
    extra: &[&str],
) -> (SocketAddr, Proc, tempfile::TempDir) {
    start_go_server_at(bin, name, "127.0.0.1:0", None, extra)
}

/// [`start_go_server`] on `addr`, optionally inside network namespace `netns`.
pub(crate) fn start_go_server_at(
    bin: &str,
    name: &str,
    addr: &str,
    netns: Option<&str>,
    extra: &[&str],
) -> (SocketAddr, Proc, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let ready = dir.path().join("addr");
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns]).arg(go_bin(bin));
            c
        }
        None => Command::new(go_bin(bin)),
    };
    let child = cmd
        .args(["-addr", addr, "-name", name])
        .args(extra)
        .arg("-ready-file")
        .arg(&ready)
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {bin}: {e}"));
    let proc = Proc(child);
    let addr = wait_for_file(&ready, Duration::from_secs(10));
    (addr, proc, dir)
}

fn wait_for_file(path: &Path, within: Duration) -> SocketAddr {
    let end = Instant::now() + within;
    loop {
        if let Ok(s) = std::fs::read_to_string(path) {
            if let Ok(a) = s.trim().parse() {
                return a;
            }
        }
        assert!(Instant::now() < end, "{} did not appear", path.display());
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A running ringside, its bound listeners, and everything it logged.
#[derive(Debug)]
pub struct Ringside {
    pub listeners: HashMap<String, SocketAddr>,
    pub logs: Arc<Mutex<Vec<String>>>,
    pub config_path: PathBuf,
    pub dir: tempfile::TempDir,
    proc: Proc,
}

/// How to start ringside, beyond the config.
#[derive(Debug, Clone)]
pub struct Options {
    pub workers: usize,
    pub log_level: String,
    /// `--runtime` value instead of the test's runtime (e.g. `auto`).
    pub runtime_flag: Option<&'static str>,
    /// Start under a seccomp filter that fails the io_uring syscalls with this errno.
    pub block_io_uring: Option<i32>,
    /// Start under this Docker-format seccomp profile (its JSON text).
    pub seccomp_profile: Option<String>,
    /// More `ringside run` flags.
    pub extra_args: Vec<String>,
    /// Lay the config out like a mounted ConfigMap (see [`Ringside::kubelet_update`]).
    pub kubelet_layout: bool,
    /// Run inside this network namespace (`ip netns exec`).
    pub netns: Option<String>,
    /// Run as this uid and gid (`setpriv`, after entering the namespace, which needs root).
    pub uid: Option<u32>,
    /// More environment variables for the process (e.g. a `test-hooks` setting).
    pub env: Vec<(String, String)>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            workers: 1,
            log_level: "info,ringside=debug".into(),
            runtime_flag: None,
            block_io_uring: None,
            seccomp_profile: None,
            extra_args: Vec::new(),
            kubelet_layout: false,
            netns: None,
            uid: None,
            env: Vec::new(),
        }
    }
}

impl Ringside {
    pub fn start(rt: Runtime, config: &str) -> Ringside {
        Self::start_with(rt, config, &Options::default())
    }

    pub fn start_with(rt: Runtime, config: &str, opts: &Options) -> Ringside {
        let dir = tempfile::tempdir().expect("tempdir");
        let config_path = dir.path().join("ringside.yaml");
        // Parallel tests must not share the default admin port.
        let config = if config.contains("admin:") {
            config.to_owned()
        } else {
            format!("admin: {{ address: 127.0.0.1:0 }}\n{config}")
        };
        if opts.kubelet_layout {
            crate::kubelet::create(dir.path(), &config);
        } else {
            std::fs::write(&config_path, config).expect("write config");
        }
        let mut cmd = match (&opts.netns, opts.uid) {
            (None, None) => Command::new(ringside_bin()),
            (ns, uid) => {
                let mut c = Command::new(if ns.is_some() { "ip" } else { "setpriv" });
                if let Some(ns) = ns {
                    c.args(["netns", "exec", ns]);
                    if uid.is_some() {
                        c.arg("setpriv");
                    }
                }
                if let Some(uid) = uid {
                    // Another uid must be able to read the config and run the binary.
                    chmod(dir.path(), 0o755);
                    c.args([
                        format!("--reuid={uid}"),
                        format!("--regid={uid}"),
                        "--clear-groups".into(),
                        "--".into(),
                    ]);
                    c.arg(world_executable_bin());
                } else {
                    c.arg(ringside_bin());
                }
                c
            }
        };
        cmd.args(["run", "-c"])
            .arg(&config_path)
            .args(["--runtime", opts.runtime_flag.unwrap_or(rt.flag())])
            .args(["--workers", &opts.workers.to_string()])
            .args(["--log-level", &opts.log_level])
            .args(&opts.extra_args)
            .envs(opts.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(errno) = opts.block_io_uring {
            crate::seccomp::block_io_uring(&mut cmd, errno);
        }
        if let Some(profile) = &opts.seccomp_profile {
            crate::seccomp::apply_profile(&mut cmd, profile);
        }
        let mut child = cmd.spawn().expect("start ringside");
        let stderr = child.stderr.take().expect("stderr piped");
        let proc = Proc(child);
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("listener bound")
                    || line.contains("admin listening")
                    || line.contains("ringside ready")
                {
                    let _ = tx.send(line.clone());
                }
                if std::env::var_os("RINGSIDE_TEST_LOGS").is_some() {
                    eprintln!("[ringside] {line}");
                }
                sink.lock().expect("log lock").push(line);
            }
        });
        let mut listeners = HashMap::new();
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            let left = end.saturating_duration_since(Instant::now());
            let line = rx.recv_timeout(left).unwrap_or_else(|_| {
                panic!(
                    "ringside did not become ready; logs:\n{}",
                    logs.lock().expect("logs").join("\n")
                )
            });
            if line.contains("ringside ready") {
                break;
            }
            let name = if line.contains("admin listening") {
                "admin".to_owned()
            } else {
                field(&line, "listener").expect("listener field")
            };
            let addr = field(&line, "address")
                .and_then(|a| a.parse().ok())
                .expect("address field");
            listeners.insert(name, addr);
        }
        Ringside {
            listeners,
            logs,
            config_path,
            dir,
            proc,
        }
    }

    /// The address of listener `name`.
    pub fn addr(&self, name: &str) -> SocketAddr {
        *self
            .listeners
            .get(name)
            .unwrap_or_else(|| panic!("no listener {name}"))
    }

    pub fn pid(&self) -> u32 {
        self.proc.0.id()
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.proc.0.try_wait(), Ok(None))
    }

    /// Waits up to `within` for a log line containing `needle`.
    pub fn wait_log(&self, needle: &str, within: Duration) -> bool {
        let end = Instant::now() + within;
        loop {
            if self
                .logs
                .lock()
                .expect("logs")
                .iter()
                .any(|l| l.contains(needle))
            {
                return true;
            }
            if Instant::now() > end {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Replaces the config the way kubelet updates a mounted ConfigMap; returns the moment of
    /// the atomic rename. Needs `Options::kubelet_layout`.
    pub fn kubelet_update(&self, config: &str) -> Instant {
        let admin = self.addr("admin");
        crate::kubelet::update(
            self.dir.path(),
            &format!("admin: {{ address: {admin} }}\n{config}"),
        )
    }

    pub fn log_text(&self) -> String {
        self.logs.lock().expect("logs").join("\n")
    }
}

/// Extracts `key=value` (optionally quoted) from a tracing text log line.
fn field(line: &str, key: &str) -> Option<String> {
    let start = line.find(&format!("{key}="))? + key.len() + 1;
    let rest = &line[start..];
    let value = if let Some(stripped) = rest.strip_prefix('"') {
        &stripped[..stripped.find('"')?]
    } else {
        rest.split_whitespace().next()?
    };
    Some(value.to_owned())
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_tracing_fields() {
        let l = r#"2026-01-01T00:00:00Z  INFO ringside::app: listener bound listener="inbound" address=127.0.0.1:4143"#;
        assert_eq!(super::field(l, "listener").as_deref(), Some("inbound"));
        assert_eq!(
            super::field(l, "address").as_deref(),
            Some("127.0.0.1:4143")
        );
    }
}
