"""The `routes` scenario: routing and reloads at mesh scale.

One HTTP listener with N routes, each matching its own host (`svc-I.mesh.local`) plus
`path_prefix: /`, spread over 1,000 clusters at every size (all the Go origin, so RSS per
route counts routes only): one route per service a sidecar calls. The last route in config
order, `probe`, is the proxied request's: the worst case for a linear scan. For each N, per
target:

- start to ready: from spawning the process to the first proxied answer on the probe host, and
  the CPU time the process used until then (which a loaded machine does not inflate);
- RSS when ready and settled (3 s after the loads: the allocator returns the parse's pages
  late), and settled RSS per route against the 1-route config;
- req/s and proxy CPU per request, one worker, HTTP/1.1 keep-alive, for a local 404 (a host no
  route names: only the proxy's own work) and for a proxied request;
- reload apply: the config rewritten (a new file renamed over it) with the probe route's host
  changed, to the first request answered by the new table (new connections, so nginx's new
  workers answer too); nginx is told with `nginx -s reload`, Ringside's watcher sees the rename.

Full runs add a soak: 100 reloads of a 5,000-route config, RSS after the first and the last.
nginx gets one `server` block per host (`server_name`), a default server answering 404.
"""

import http.client
import os
import shutil
import statistics
import subprocess
import time
from pathlib import Path

import load
import scenarios
import targets

DOMAIN = "mesh.local"
MISS = f"nobody.{DOMAIN}"
CLUSTERS = 1000
SETTLE_S = 3.0
# Another build to compare with (e.g. one before a change), named by RINGSIDE_BENCH_BINARY.
BINARY = os.environ.get("RINGSIDE_BENCH_BINARY", str(targets.ROOT / "target/release/ringside"))


def probe_host(k: int) -> str:
    return f"probe-{k}.{DOMAIN}"


def ringside_config(n: int, listen: str, admin: str, upstream: str, probe: str) -> str:
    clusters = CLUSTERS
    lines = ["listeners:", "  - name: inbound", f"    address: {listen}", "    protocol: http", "    routes:"]
    for i in range(n - 1):
        lines.append(f"      - {{ name: svc-{i}, match: {{ host: svc-{i}.{DOMAIN}, path_prefix: / }}, "
                     f"backends: [ {{ cluster: c{i % clusters} }} ] }}")
    lines.append(f"      - {{ name: probe, match: {{ host: {probe}, path_prefix: / }}, "
                 "backends: [ { cluster: c0 } ] }")
    lines.append("clusters:")
    lines += [f"  - {{ name: c{i}, endpoints: [ {upstream} ] }}" for i in range(clusters)]
    lines.append(f"admin: {{ address: {admin} }}")
    return "\n".join(lines) + "\n"


def nginx_config(n: int, listen: str, upstream: str, probe: str, workdir: Path) -> str:
    location = ("location / { proxy_pass http://app; proxy_http_version 1.1; "
                "proxy_set_header Connection \"\"; proxy_buffering off; }")
    servers = [f"server {{ listen {listen}; server_name svc-{i}.{DOMAIN}; {location} }}" for i in range(n - 1)]
    servers.append(f"server {{ listen {listen}; server_name {probe}; {location} }}")
    servers.append(f"server {{ listen {listen} default_server; return 404; }}")
    temp = " ".join(f"{d}_temp_path {workdir}/{d};" for d in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return f"""daemon off;
master_process on;
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    {temp}
    keepalive_requests 1000000;
    server_names_hash_max_size 65536;
    server_names_hash_bucket_size 128;
    upstream app {{ server {upstream}; keepalive 64; }}
    {chr(10).join('    ' + s for s in servers)}
}}
"""


def status(addr: str, host: str) -> int | None:
    """One request on a new connection; its status, or None when nothing answers."""
    h, p = addr.rsplit(":", 1)
    c = http.client.HTTPConnection(h, int(p), timeout=2)
    try:
        c.request("GET", "/", headers={"Host": host})
        r = c.getresponse()
        r.read()
        return r.status
    except OSError:
        return None
    finally:
        c.close()


def wait_status(addr: str, host: str, want: int, within: float) -> float:
    """Polls until `host` gets `want`; returns when it did (time.monotonic)."""
    end = time.monotonic() + within
    while time.monotonic() < end:
        if status(addr, host) == want:
            return time.monotonic()
        time.sleep(0.001)
    raise RuntimeError(f"{host} never answered {want} on {addr} within {within}s")


def replace(path: Path, text: str):
    """Writes a new file and renames it over `path`, as config management does."""
    tmp = path.with_name(path.name + ".new")
    tmp.write_text(text)
    os.replace(tmp, path)


class Proxy:
    """One target at one size: started, measured, reloaded, stopped."""

    def __init__(self, kind: str, n: int, upstream: str, port: int, cpu: int, workdir: Path):
        self.kind, self.n, self.upstream, self.cpu = kind, n, upstream, cpu
        self.http, self.admin = f"127.0.0.1:{port}", f"127.0.0.1:{port + 1}"
        self.workdir = workdir
        for d in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (workdir / d).mkdir(parents=True, exist_ok=True)
        self.generation = 0
        self.cfg = workdir / ("nginx.conf" if kind == "nginx" else "ringside.yaml")
        self.cfg.write_text(self.config(self.generation))
        if kind == "nginx":
            argv = ["nginx", "-c", str(self.cfg), "-p", str(workdir)]
        else:
            runtime = kind.removeprefix("ringside-")
            argv = [BINARY, "run", "-c", str(self.cfg), "--runtime", runtime,
                    "--workers", "1", "--log-level", "warn"]
        t0 = time.monotonic()
        p = targets.spawn(targets.pinned(cpu, argv), workdir, kind)
        self.target = targets.Target(kind, http=self.http, pid=p.pid, procs=[p])
        try:
            self.ready_ms = (wait_status(self.http, probe_host(0), 200, 60) - t0) * 1e3
            # CPU time is what a loaded machine does not inflate; the wall time above it does.
            self.ready_cpu_ms = self.target.cpu_seconds() * 1e3
        except RuntimeError:
            self.target.stop()
            raise

    def config(self, generation: int) -> str:
        probe = probe_host(generation)
        if self.kind == "nginx":
            return nginx_config(self.n, self.http, self.upstream, probe, self.workdir)
        return ringside_config(self.n, self.http, self.admin, self.upstream, probe)

    def reload(self) -> float:
        """Applies the next generation; milliseconds from the rename to its first answer."""
        self.generation += 1
        c0 = self.target.cpu_seconds()
        t0 = time.monotonic()
        replace(self.cfg, self.config(self.generation))
        if self.kind == "nginx":
            subprocess.run(["nginx", "-c", str(self.cfg), "-p", str(self.workdir), "-s", "reload"],
                           check=True, capture_output=True, timeout=30)
        done = wait_status(self.http, probe_host(self.generation), 200, 30)
        self.reload_cpu_ms = (self.target.cpu_seconds() - c0) * 1e3
        return (done - t0) * 1e3

    def settled_rss_kib(self) -> int:
        """RSS once the allocator has given back what loading the config used (mimalloc
        returns freed pages after a delay; right at ready the parse's peak is still counted)."""
        time.sleep(SETTLE_S)
        return self.target.rss_kib()

    def load(self, host: str, env, seconds: float) -> dict:
        os.environ["RINGSIDE_BENCH_HOST"] = host
        return scenarios.measured(self.target, lambda: load.wrk(self.http, env.load_cpu, seconds, conns=32,
                                                                script="routes.lua"))


def point(kind: str, n: int, env, upstream: str, work: Path, reloads: int, seconds: float) -> dict:
    p = Proxy(kind, n, upstream, 32000, env.proxy_cpu, work / f"routes-{kind}-{n}")
    try:
        row = {"target": kind, "routes": n, "ready_ms": p.ready_ms, "ready_cpu_ms": p.ready_cpu_ms,
               "rss_ready_kib": p.target.rss_kib()}
        miss = p.load(MISS, env, seconds)
        hit = p.load(probe_host(0), env, seconds)
        row.update(rps_404=miss["rps"], cpu_404=miss.get("cpu_us_per_req"),
                   rps_proxied=hit["rps"], cpu_proxied=hit.get("cpu_us_per_req"), errors=hit["errors"],
                   rss_kib=p.settled_rss_kib())
        times, cpu = [], []
        for _ in range(reloads):
            times.append(p.reload())
            cpu.append(p.reload_cpu_ms)
        row.update(reload_ms=statistics.median(times), reload_ms_max=max(times),
                   reload_cpu_ms=statistics.median(cpu))
        return row
    finally:
        p.target.stop()


def soak(kind: str, n: int, reloads: int, env, upstream: str, work: Path) -> dict:
    """RSS after the first reload and after `reloads` of them, at `n` routes."""
    p = Proxy(kind, n, upstream, 32010, env.proxy_cpu, work / f"routes-soak-{kind}")
    try:
        p.reload()
        first = p.settled_rss_kib()
        for _ in range(reloads - 1):
            p.reload()
        return {"target": kind, "routes": n, "reloads": reloads, "rss_first_kib": first,
                "rss_last_kib": p.settled_rss_kib()}
    finally:
        p.target.stop()


def run(env, upstream: str, work: Path, quick: bool, selected: list[str]) -> tuple[list[dict], dict]:
    """Every size against every selected Ringside runtime and nginx; returns rows and skips."""
    global SETTLE_S
    sizes = [1, 1000] if quick else [1, 100, 1000, 10000]
    if quick:
        SETTLE_S = 1.0
    kinds = [k for k in ("ringside-epoll", "ringside-io-uring", "nginx") if k in selected]
    if quick:
        kinds = [k for k in kinds if k == "ringside-epoll"]
    rows, soaks, skipped = [], [], {}
    for kind in kinds:
        if kind == "nginx" and not shutil.which("nginx"):
            skipped[kind] = "nginx not installed"
            continue
        if kind.startswith("ringside") and not Path(BINARY).exists():
            skipped[kind] = f"{BINARY} not built"
            continue
        try:
            for n in sizes:
                # A few seconds a point: enough for a stable CPU per request, and the machine is shared.
                row = point(kind, n, env, upstream, work, reloads=3 if quick else 10, seconds=1 if quick else 3)
                rows.append(row)
                print(f"  routes {kind:<18} {n:>6} routes: ready {row['ready_ms']:.0f} ms "
                      f"({row['ready_cpu_ms']:.0f} ms CPU), "
                      f"404 {row['rps_404']:,.0f} req/s {row['cpu_404']:.1f} µs/req, "
                      f"proxied {row['rps_proxied']:,.0f} req/s {row['cpu_proxied']:.1f} µs/req, "
                      f"reload {row['reload_ms']:.0f} ms ({row['reload_cpu_ms']:.0f} ms CPU), RSS {row['rss_kib']:,} KiB",
                      flush=True)
            if not quick and kind.startswith("ringside"):
                s = soak(kind, 5000, 100, env, upstream, work)
                soaks.append(s)
                print(f"  routes {kind:<18} soak: RSS {s['rss_first_kib']:,} KiB after 1 reload, "
                      f"{s['rss_last_kib']:,} KiB after {s['reloads']}", flush=True)
        except (RuntimeError, OSError, subprocess.SubprocessError, targets.Skipped) as e:
            skipped[kind] = f"failed: {e}"
            print(f"  routes {kind:<18} FAILED: {e}", flush=True)
    return rows + soaks, skipped


def table(rows: list[dict], skipped: dict) -> str:
    lines = ["### routes (one route per host; ratios against the same target at 1 route)", "",
             "| target | routes | start to ready ms (CPU ms) | reload apply ms, median / max (CPU ms) | "
             "RSS KiB at ready / settled | RSS per route B | 404 req/s | 404 CPU µs/req | ×1 route | "
             "proxied req/s | proxied CPU µs/req | ×1 route |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    points = [r for r in rows if "ready_ms" in r]
    base = {r["target"]: r for r in points if r["routes"] == 1}
    for r in points:
        b = base.get(r["target"], {})
        per_route = ((r["rss_kib"] - b["rss_kib"]) * 1024 / (r["routes"] - 1)) if b and r["routes"] > 1 else None
        ratio = lambda k: f"{r[k] / b[k]:.2f}×" if b.get(k) and r.get(k) else "–"  # noqa: E731
        lines.append(
            f"| {r['target']} | {r['routes']:,} | {r['ready_ms']:.0f} ({r['ready_cpu_ms']:.0f}) | "
            f"{r['reload_ms']:.0f} / {r['reload_ms_max']:.0f} ({r['reload_cpu_ms']:.0f}) | "
            f"{r['rss_ready_kib']:,} / {r['rss_kib']:,} | {'–' if per_route is None else f'{per_route:,.0f}'} | {r['rps_404']:,.0f} | "
            f"{r['cpu_404']:.1f} | {ratio('cpu_404')} | {r['rps_proxied']:,.0f} | {r['cpu_proxied']:.1f} | "
            f"{ratio('cpu_proxied')} |")
    for r in rows:
        if "reloads" in r:
            grown = (r["rss_last_kib"] / r["rss_first_kib"] - 1) * 100
            lines.append(f"\nSoak, {r['target']}: {r['routes']:,} routes, RSS {r['rss_first_kib']:,} KiB after the first "
                         f"reload, {r['rss_last_kib']:,} KiB after {r['reloads']} ({grown:+.1f}%).")
    for target, why in skipped.items():
        lines.append(f"\n{target}: skipped: {why}")
    return "\n".join(lines) + "\n"
