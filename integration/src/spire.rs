//! A real SPIRE deployment per test: spire-server (join-token node attestation, SQLite, keys
//! in memory) and spire-agent (the `unix` workload attestor) on loopback, with registration
//! entries keyed by uid, so workloads started under different uids (`Options::uid`) get
//! different SVIDs. Both binaries come from `integration/spire/go.mod` (SPIRE's own Go
//! module), built once into `target/tools/spire` by `integration/spire/build.sh`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::procs::{workspace_root, Proc};

/// The trust domain every test SVID belongs to.
pub const TRUST_DOMAIN: &str = "td.test";
/// The SPIFFE ID the agent's node gets (the join token's alias); entries hang below it.
const NODE_ID: &str = "spiffe://td.test/node";

/// One registration entry: processes running as `uid` get `spiffe_id`, valid `ttl_s` seconds.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    pub spiffe_id: &'a str,
    pub uid: u32,
    pub ttl_s: u32,
    /// A DNS SAN as well (for clients that check a host name, such as Go's crypto/tls).
    pub dns: Option<&'a str>,
}

/// A running SPIRE server and agent; both are killed on drop.
#[derive(Debug)]
pub struct Spire {
    pub dir: tempfile::TempDir,
    /// The agent's Workload API socket.
    pub socket: PathBuf,
    server_socket: PathBuf,
    agent: Option<Logged>,
    server: Logged,
    /// How long the server and agent took to be ready, entries included.
    pub startup: Duration,
    /// The registered SPIFFE IDs: the agent is ready once it has minted an SVID for each.
    ids: Vec<String>,
}

/// A child whose stdout and stderr lines are kept for `wait_log` and failure messages.
#[derive(Debug)]
struct Logged {
    _proc: Proc,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Logged {
    fn spawn(mut cmd: Command) -> Logged {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start a SPIRE binary");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().expect("stdout piped");
        let err = child.stderr.take().expect("stderr piped");
        for pipe in [
            Box::new(out) as Box<dyn std::io::Read + Send>,
            Box::new(err) as Box<dyn std::io::Read + Send>,
        ] {
            let sink = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if std::env::var_os("RINGSIDE_TEST_LOGS").is_some() {
                        eprintln!("[spire] {line}");
                    }
                    sink.lock().expect("log lock").push(line);
                }
            });
        }
        Logged {
            _proc: Proc(child),
            lines,
        }
    }

    fn wait_line(&self, pred: impl Fn(&str) -> bool, within: Duration) -> bool {
        let end = Instant::now() + within;
        loop {
            if self.lines.lock().expect("log lock").iter().any(|l| pred(l)) {
                return true;
            }
            if Instant::now() > end {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn text(&self) -> String {
        self.lines.lock().expect("log lock").join("\n")
    }
}

/// The directory holding `spire-server` and `spire-agent`, built on first use.
pub fn bin_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let script = workspace_root().join("integration/spire/build.sh");
        let out = Command::new("bash")
            .arg(&script)
            .env("CARGO_TARGET_DIR", crate::procs::target_dir())
            .stderr(Stdio::inherit())
            .output()
            .expect("run integration/spire/build.sh (is Go installed?)");
        assert!(out.status.success(), "building SPIRE failed");
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
    })
    .clone()
}

fn free_port() -> u16 {
    // The server binds it a moment later; nothing else on loopback takes ports from the
    // ephemeral range that fast.
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

impl Spire {
    /// [`Spire::server`], then [`Spire::start_agent`].
    pub fn start(entries: &[Entry<'_>]) -> Spire {
        let started = Instant::now();
        let mut spire = Spire::server(entries);
        spire.start_agent();
        spire.startup = started.elapsed();
        eprintln!("SPIRE server and agent ready in {:?}", spire.startup);
        spire
    }

    /// Starts a server and registers `entries` (no agent yet: the Workload API socket does
    /// not exist until [`Spire::start_agent`]).
    pub fn server(entries: &[Entry<'_>]) -> Spire {
        let bin = bin_dir();
        let started = Instant::now();
        let dir = tempfile::tempdir().expect("tempdir");
        // Workloads run under other uids must reach the agent's socket.
        crate::procs::chmod(dir.path(), 0o755);
        let d = dir.path();
        let port = free_port();
        let server_socket = d.join("server.sock");
        let socket = d.join("agent.sock");
        std::fs::write(d.join("server.conf"), server_conf(d, port)).expect("server.conf");
        std::fs::write(d.join("agent.conf"), agent_conf(d, port)).expect("agent.conf");
        let mut cmd = Command::new(bin.join("spire-server"));
        cmd.args(["run", "-config"]).arg(d.join("server.conf"));
        let server = Logged::spawn(cmd);
        let mut spire = Spire {
            socket,
            server_socket,
            agent: None,
            server,
            startup: Duration::ZERO,
            ids: entries.iter().map(|e| e.spiffe_id.to_owned()).collect(),
            dir,
        };
        spire.wait_server();
        for e in entries {
            let (uid, ttl) = (format!("unix:uid:{}", e.uid), e.ttl_s.to_string());
            let mut args = vec![
                "entry",
                "create",
                "-parentID",
                NODE_ID,
                "-spiffeID",
                e.spiffe_id,
                "-selector",
                &uid,
                "-x509SVIDTTL",
                &ttl,
            ];
            if let Some(dns) = e.dns {
                args.extend(["-dns", dns]);
            }
            spire.server_cmd(&args);
        }
        spire.startup = started.elapsed();
        spire
    }

    /// Starts an agent joined with a fresh token; returns once it serves the Workload API
    /// and has minted an SVID for every registered entry (its first entry sync, about 5 s
    /// after it attested: before that the Workload API answers "no identity issued").
    pub fn start_agent(&mut self) {
        let spire = self;
        let token = spire.server_cmd(&["token", "generate", "-spiffeID", NODE_ID, "-ttl", "600"]);
        let token = token
            .trim()
            .strip_prefix("Token: ")
            .unwrap_or_else(|| panic!("unexpected `token generate` output: {token}"))
            .to_owned();
        // A fresh data directory: a restarted agent attests again with its new token.
        let _ = std::fs::remove_dir_all(spire.dir.path().join("agent-data"));
        let mut cmd = Command::new(bin_dir().join("spire-agent"));
        cmd.args(["run", "-config"])
            .arg(spire.dir.path().join("agent.conf"))
            .args(["-joinToken", &token]);
        let agent = Logged::spawn(cmd);
        let up = agent.wait_line(
            |l| l.contains("Starting Workload and SDS APIs"),
            Duration::from_secs(20),
        ) && spire.ids.iter().all(|id| {
            let id = format!("spiffe_id=\"{id}\"");
            agent.wait_line(
                |l| l.contains("Creating X509-SVID") && l.contains(&id),
                Duration::from_secs(20),
            )
        });
        spire.agent = Some(agent);
        assert!(
            up,
            "spire-agent did not start serving SVIDs:\n{}",
            spire.logs()
        );
    }

    /// Kills the agent: the Workload API socket stops answering.
    pub fn stop_agent(&mut self) {
        self.agent = None;
    }

    /// `unix:///...`, as `identity.spiffe_socket` wants it.
    pub fn socket_uri(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// Fetches the SVID of the calling uid (root: the test itself) into `dir` as
    /// `svid.0.pem`, `svid.0.key` and `bundle.0.pem`, the way spiffe-helper writes them.
    pub fn fetch_x509(&self, dir: &Path) {
        let out = Command::new(bin_dir().join("spire-agent"))
            .args(["api", "fetch", "x509", "-socketPath"])
            .arg(&self.socket)
            .arg("-write")
            .arg(dir)
            .output()
            .expect("run spire-agent api fetch");
        assert!(
            out.status.success(),
            "spire-agent api fetch x509: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Both processes' logs, for failure messages.
    pub fn logs(&self) -> String {
        format!(
            "--- spire-server:\n{}\n--- spire-agent:\n{}",
            self.server.text(),
            self.agent.as_ref().map(Logged::text).unwrap_or_default()
        )
    }

    /// Waits until the server answers on its API socket: its log says it started the APIs,
    /// then `healthcheck` confirms the socket serves.
    fn wait_server(&self) {
        assert!(
            self.server.wait_line(
                |l| l.contains("Starting Server APIs"),
                Duration::from_secs(20)
            ),
            "spire-server did not start:\n{}",
            self.logs()
        );
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            let ok = Command::new(bin_dir().join("spire-server"))
                .args(["healthcheck", "-shallow", "-socketPath"])
                .arg(&self.server_socket)
                .output()
                .is_ok_and(|o| o.status.success());
            if ok {
                return;
            }
            assert!(
                Instant::now() < end,
                "spire-server not healthy:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn server_cmd(&self, args: &[&str]) -> String {
        let out = Command::new(bin_dir().join("spire-server"))
            .args(&args[..2])
            .arg("-socketPath")
            .arg(&self.server_socket)
            .args(&args[2..])
            .output()
            .expect("run spire-server");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "spire-server {args:?}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    }
}

fn server_conf(d: &Path, port: u16) -> String {
    let d = d.display();
    format!(
        r#"server {{
    bind_address = "127.0.0.1"
    bind_port = "{port}"
    socket_path = "{d}/server.sock"
    trust_domain = "{TRUST_DOMAIN}"
    data_dir = "{d}/server-data"
    log_level = "INFO"
    ca_ttl = "24h"
    default_x509_svid_ttl = "1h"
}}
plugins {{
    DataStore "sql" {{
        plugin_data {{
            database_type = "sqlite3"
            connection_string = "{d}/server-data/datastore.sqlite3"
        }}
    }}
    NodeAttestor "join_token" {{
        plugin_data {{}}
    }}
    KeyManager "memory" {{
        plugin_data {{}}
    }}
}}
"#
    )
}

fn agent_conf(d: &Path, port: u16) -> String {
    let d = d.display();
    format!(
        r#"agent {{
    data_dir = "{d}/agent-data"
    log_level = "INFO"
    server_address = "127.0.0.1"
    server_port = "{port}"
    socket_path = "{d}/agent.sock"
    trust_domain = "{TRUST_DOMAIN}"
    # The test's server is on loopback and its CA is minutes old: no bundle to pin.
    insecure_bootstrap = true
}}
plugins {{
    NodeAttestor "join_token" {{
        plugin_data {{}}
    }}
    KeyManager "memory" {{
        plugin_data {{}}
    }}
    WorkloadAttestor "unix" {{
        plugin_data {{}}
    }}
}}
"#
    )
}
