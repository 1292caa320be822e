"""The proxies under test: started pinned to the proxy CPU, measured from /proc, stopped."""

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PEERS = Path(__file__).resolve().parent / "peers"
CLK_TCK = os.sysconf("SC_CLK_TCK")


class Skipped(Exception):
    """A target that cannot run here (not installed, not built, no io_uring), with the reason."""


class StartFailed(Exception):
    """A target that can run here but did not start: a failure of the run, never a skip."""


def io_uring_works(binary: Path) -> tuple[bool, str]:
    """Whether this host runs Ringside's io_uring backend, asked of the binary itself."""
    out = subprocess.run([str(binary), "probe"], capture_output=True, text=True, timeout=30)
    return "auto picks: io-uring" in out.stdout, out.stdout.strip()


@dataclass
class Target:
    name: str
    http: str  # host:port for HTTP/1.1
    tcp: str | None = None  # host:port of an opaque TCP listener to the same upstream
    h2c: str | None = None  # host:port speaking h2c with prior knowledge (to an HTTP/1.1 upstream)
    h2c_h2: str | None = None  # host:port speaking h2c, proxying to the upstream over h2c
    tls: str | None = None  # host:port terminating TLS (ALPN h2, http/1.1) to the HTTP/1.1 upstream
    hop: str | None = None  # plaintext in, a mutual-TLS sidecar hop inside the target, then the app
    plain_hop: str | None = None  # the same hop in plaintext
    pid: int | None = None  # the process whose CPU and memory are the proxy's
    procs: list = field(default_factory=list)
    tcp_pid: int | None = None  # when TCP proxying is a separate process (Go baseline)
    admin: str | None = None  # Ringside's admin address (/metrics, /runtime, /debug/pprof)

    def for_tcp(self) -> "Target":
        """The view to measure in the tcp scenario."""
        if self.tcp_pid is None:
            return self
        return Target(self.name, http=self.http, tcp=self.tcp, pid=self.tcp_pid)

    def tree(self) -> list[int]:
        """The measured process and its children (nginx master + worker)."""
        if self.pid is None:
            return []
        out = subprocess.run(["pgrep", "-P", str(self.pid)], capture_output=True, text=True)
        return [self.pid] + [int(p) for p in out.stdout.split()]

    def cpu_seconds(self) -> float:
        ticks = 0
        for pid in self.tree():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                ticks += int(fields[11]) + int(fields[12])
            except (OSError, IndexError):
                pass
        return ticks / CLK_TCK

    def rss_kib(self) -> int:
        total = 0
        for pid in self.tree():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except OSError:
                pass
        return total

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()


def wait_port(addr: str, within: float = 10.0):
    host, port = addr.rsplit(":", 1)
    end = time.time() + within
    while time.time() < end:
        try:
            socket.create_connection((host, int(port)), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise StartFailed(f"nothing listening on {addr} after {within}s")


def pinned(cpu: int, argv: list[str]) -> list[str]:
    return ["taskset", "-c", str(cpu), *argv] if shutil.which("taskset") else argv


def fill(template: Path, out: Path, values: dict[str, str]) -> Path:
    text = template.read_text()
    for k, v in values.items():
        text = text.replace(f"@{k}@", v)
    out.write_text(text)
    return out


def spawn(argv, workdir: Path, name: str, env=None):
    log = open(workdir / f"{name}.log", "w")
    return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)


# Where bench.py wrote the TLS certificates (make_certs): CA, server, client, server.pem.
CERTS: Path | None = None


def make_certs(out: Path) -> Path:
    """An ECDSA P-256 CA, a server certificate (localhost, 127.0.0.1, spiffe://bench.test/server)
    and a client certificate (spiffe://bench.test/client), with openssl."""
    out.mkdir(parents=True, exist_ok=True)

    def run(*argv):
        subprocess.run(argv, check=True, capture_output=True, cwd=out)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    run("openssl", "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "30",
        "-subj", "/CN=bench CA")
    for who, san in (("server", "DNS:localhost,IP:127.0.0.1,URI:spiffe://bench.test/server"),
                     ("client", "URI:spiffe://bench.test/client")):
        run("openssl", "req", *ec, "-keyout", f"{who}.key", "-out", f"{who}.csr", "-subj", f"/CN={who}")
        (out / f"{who}.ext").write_text(f"subjectAltName={san}\n")
        run("openssl", "x509", "-req", "-in", f"{who}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", f"{who}.crt", "-days", "30", "-extfile", f"{who}.ext")
    (out / "server.pem").write_text((out / "server.crt").read_text() + (out / "server.key").read_text())
    return out


def start(name: str, upstream: str, port: int, cpu: int, workdir: Path, binary: Path | None = None) -> Target:
    """Starts target `name` on ports port..port+8, proxying to `upstream`. `binary`: the
    Ringside build to run for a `ringside-*` target (default target/release/ringside)."""
    http, tcp, h2, admin, tls, hop, hop_in, plain_hop, plain_hop_in = (f"127.0.0.1:{port + i}" for i in range(9))
    certs = str(CERTS or "")
    workdir.mkdir(parents=True, exist_ok=True)
    if name == "direct":
        # The Go origin speaks h2c itself (-h2c), so direct has an h2 row too.
        return Target(name, http=upstream, h2c=upstream, h2c_h2=upstream)
    if name.startswith(("ringside-", "before-")):
        # `before-io-uring` / `before-epoll`: another build of Ringside (RINGSIDE_BEFORE_BIN,
        # e.g. the previous commit's), measured in the same run to compare a change.
        if name.startswith("before-"):
            binary = Path(os.environ.get("RINGSIDE_BEFORE_BIN", ""))
            name_rt = "ringside-" + name.removeprefix("before-")
        else:
            binary = binary or ROOT / "target/release/ringside"
            name_rt = name
        if not binary.is_file():
            raise Skipped(f"{binary} not built (before-*: set RINGSIDE_BEFORE_BIN)")
        cfg = fill(PEERS / "ringside.yaml", workdir / "ringside.yaml",
                   {"LISTEN": http, "LISTEN_TCP": tcp, "LISTEN_H2": h2, "UPSTREAM": upstream, "ADMIN": admin,
                    "LISTEN_TLS": tls, "LISTEN_HOP": hop, "LISTEN_HOP_IN": hop_in, "CERTS": certs,
                    "LISTEN_PLAIN_HOP": plain_hop, "LISTEN_PLAIN_HOP_IN": plain_hop_in})
        # `ringside-epoll-nometrics`: the same without request metrics, to measure their cost.
        runtime = name_rt.removeprefix("ringside-").removesuffix("-nometrics")
        if runtime == "io-uring":
            works, probe = io_uring_works(binary)
            if not works:
                raise Skipped(f"io_uring unavailable on this host ({probe.splitlines()[-1] if probe else 'no probe output'})")
        argv = [str(binary), "run", "-c", str(cfg), "--runtime", runtime, "--workers", "1", "--log-level", "warn"]
        if name.endswith("-nometrics"):
            argv.append("--no-metrics")
        p = spawn(pinned(cpu, argv), workdir, name)
        # One port serves HTTP/1.1 and h2c: the listener detects the HTTP/2 preface.
        t = Target(name, http=http, tcp=tcp, h2c=http, h2c_h2=h2, tls=tls, hop=hop, plain_hop=plain_hop,
                   pid=p.pid, procs=[p], admin=admin)
    elif name == "go-baseline":
        binary = ROOT / "target/go/baselineproxy"
        if not binary.exists():
            raise Skipped("target/go/baselineproxy not built")
        env = dict(os.environ, GOMAXPROCS="1")
        p1 = spawn(pinned(cpu, [str(binary), "-listen", http, "-upstream", f"http://{upstream}"]), workdir, name, env)
        p2 = spawn(pinned(cpu, [str(binary), "-listen", tcp, "-upstream", upstream, "-tcp"]), workdir, name + "-tcp", env)
        # The TCP proxy is a second process: measured separately in the tcp scenario.
        t = Target(name, http=http, tcp=tcp, pid=p1.pid, procs=[p1, p2], tcp_pid=p2.pid)
    elif name == "nginx":
        if not shutil.which("nginx"):
            raise Skipped("nginx not installed (apt-get install nginx)")
        for d in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (workdir / d).mkdir(exist_ok=True)
        stream = Path("/usr/lib/nginx/modules/ngx_stream_module.so")
        # Debian builds the stream (TCP) module as a separate package, libnginx-mod-stream.
        load = f"load_module {stream};" if stream.exists() else ""
        cfg = fill(PEERS / "nginx.conf", workdir / "nginx.conf",
                   {"LISTEN": http, "LISTEN_TCP": tcp, "LISTEN_H2": h2, "UPSTREAM": upstream, "DIR": str(workdir),
                    "LOAD_STREAM": load, "LISTEN_TLS": tls, "CERTS": certs})
        p = spawn(pinned(cpu, ["nginx", "-c", str(cfg), "-p", str(workdir)]), workdir, name)
        t = Target(name, http=http, tcp=tcp, h2c=h2, tls=tls, pid=p.pid, procs=[p])
    elif name == "haproxy":
        if not shutil.which("haproxy"):
            raise Skipped("haproxy not installed (apt-get install haproxy)")
        cfg = fill(PEERS / "haproxy.cfg", workdir / "haproxy.cfg",
                   {"LISTEN": http, "LISTEN_TCP": tcp, "LISTEN_H2": h2, "UPSTREAM": upstream,
                    "LISTEN_TLS": tls, "CERTS": certs})
        p = spawn(pinned(cpu, ["haproxy", "-db", "-f", str(cfg)]), workdir, name)
        t = Target(name, http=http, tcp=tcp, h2c=h2, tls=tls, pid=p.pid, procs=[p])
    else:
        raise Skipped(f"unknown target {name}")
    try:
        for addr in (t.http, t.tcp, t.tls, t.hop, t.plain_hop):
            if addr:
                wait_port(addr)
    except StartFailed as e:
        t.stop()
        logs = sorted(workdir.glob("*.log"))
        tail = "; ".join(f"{p.name}: {p.read_text(errors='replace').strip()[-300:]}" for p in logs)
        raise StartFailed(f"{e}; {tail}") from None
    return t
