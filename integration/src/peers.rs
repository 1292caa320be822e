//! The HTTP/2 and gRPC peers: the Go gRPC echo server, and the Go clients that check their
//! own answers and print one JSON line (`examples/cmd/{grpcserver,grpcclient,h2client}`).

use std::net::SocketAddr;
use std::process::Command;

use crate::procs::{go_bin, start_go_server, Proc};

/// `examples/cmd/grpcserver`: the `ringside.examples.Echo` service over h2c on a `:0` port.
/// Every response carries header metadata `x-served-by: NAME`.
#[derive(Debug)]
pub struct GrpcServer {
    pub addr: SocketAddr,
    pub name: String,
    _proc: Proc,
    _dir: tempfile::TempDir,
}

impl GrpcServer {
    pub fn start(name: &str) -> GrpcServer {
        Self::start_with(name, &[])
    }

    /// With more flags: `-ignore-deadline` serves without ever ending a call at its deadline.
    pub fn start_with(name: &str, flags: &[&str]) -> GrpcServer {
        let (addr, proc, dir) = start_go_server("grpcserver", name, flags);
        GrpcServer {
            addr,
            name: name.to_owned(),
            _proc: proc,
            _dir: dir,
        }
    }
}

/// Runs `grpcclient -addr ADDR -mode MODE EXTRA..` (modes: unary, error, server-stream,
/// client-stream, bidi, big, deadline, cancel, cancel-stream, raw, load; extra flags:
/// `-size N`, `-count N`, `-concurrency N`, `-timeout DUR`, `-authority X`, `-n N`, and for
/// raw `-md 'name: value'`, `-await-server-cancel`). Returns whether the check
/// passed, and its JSON line (on failure: its stderr, then its stdout).
pub fn grpc_client(addr: SocketAddr, mode: &str, extra_args: &[&str]) -> (bool, String) {
    run(
        "grpcclient",
        &[&["-addr", &addr.to_string(), "-mode", mode], extra_args].concat(),
    )
}

/// Runs `h2client -addr ADDR EXTRA..` (flags: `-method M`, `-path P`, `-host AUTHORITY`,
/// `-body-size N`, `-unknown-length`, `-header 'n: v'`, `-count N`, `-concurrency C`, `-h1`).
/// Returns whether every request completed (any HTTP status counts), and its JSON line (on
/// failure: its stderr, then its stdout).
pub fn h2_client(addr: SocketAddr, extra_args: &[&str]) -> (bool, String) {
    run(
        "h2client",
        &[&["-addr", &addr.to_string()], extra_args].concat(),
    )
}

fn run(bin: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(go_bin(bin))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {bin}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if out.status.success() {
        (true, stdout)
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        (
            false,
            format!("{bin} {args:?} failed ({}): {stderr}\n{stdout}", out.status),
        )
    }
}

/// The raw value of `"key":` in a one-line JSON object: a number, `true`, or a string
/// without its quotes (escapes left as they are). Enough for the clients' flat answers.
pub fn json_field(json: &str, key: &str) -> Option<String> {
    let k = format!("\"{key}\":");
    let start = json.find(&k)? + k.len();
    let rest = json[start..].trim_start();
    if let Some(s) = rest.strip_prefix('"') {
        let mut end = 0;
        let bytes = s.as_bytes();
        while end < bytes.len() && bytes[end] != b'"' {
            end += if bytes[end] == b'\\' { 2 } else { 1 };
        }
        return Some(s[..end.min(s.len())].to_owned());
    }
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    Some(rest[..end].trim().to_owned())
}

#[cfg(test)]
mod tests {
    #[test]
    fn json_fields() {
        let j = r#"{"a":1,"b":"x\"y","c":true,"d":{"e":"f"}}"#;
        assert_eq!(super::json_field(j, "a").as_deref(), Some("1"));
        assert_eq!(super::json_field(j, "b").as_deref(), Some(r#"x\"y"#));
        assert_eq!(super::json_field(j, "c").as_deref(), Some("true"));
        assert_eq!(super::json_field(j, "e").as_deref(), Some("f"));
        assert_eq!(super::json_field(j, "z"), None);
    }
}
