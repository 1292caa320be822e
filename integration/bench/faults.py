"""The `faults` scenario (issue 13's benchmark): the production mix, open loop, through three
endpoints of which one answers half its requests with 503, to see what each proxy's failure
handling gives the client: success rate, p99, and what it costs in CPU per request.

Targets: Ringside on both runtimes with its defaults (outlier ejection on, no retry policy)
and with a retry policy; nginx with max_fails and proxy_next_upstream; HAProxy with observe
layer7, retry-on and redispatch; direct (one good origin) is the control that must hold the
rate. The Go baseline proxies to a single upstream, so it has no row here."""

import http.client
import subprocess
import time
from pathlib import Path

import mixrun
import targets

# The bad endpoint: half its answers are a 502 (the origin's -fail-rate spreads them evenly), a status
# the mix does not ask for, so a policy can retry it without retrying the designed 500s and 503s.
FAIL = ["-fail-rate", "0.5", "-fail-status", "502"]
RETRY = "retry: { attempts: 3, retry_on: [ reset, 502 ], backoff: 5ms }"
TARGETS = ["direct", "ringside-io-uring", "ringside-io-uring-retry", "ringside-epoll", "ringside-epoll-retry",
           "nginx", "haproxy"]


def origin(env, work: Path, name: str, extra: list[str]):
    ready = work / f"{name}.addr"
    p = subprocess.Popen(targets.pinned(env.load_cpu, [str(targets.ROOT / "target/go/origin"), "-addr", "127.0.0.1:0",
                                                      "-name", name, "-ready-file", str(ready), *extra]),
                         stdout=subprocess.DEVNULL, start_new_session=True)
    end = time.time() + 10
    while not ready.exists() and time.time() < end:
        time.sleep(0.02)
    if not ready.exists():
        p.kill()
        raise RuntimeError(f"origin {name} did not start")
    return p, ready.read_text().strip()


def start(name: str, ups: list[str], port: int, cpu: int, workdir: Path) -> targets.Target:
    """Starts one faults target on `port` (admin on port+1) over the endpoints `ups`."""
    listen, admin = f"127.0.0.1:{port}", f"127.0.0.1:{port + 1}"
    workdir.mkdir(parents=True, exist_ok=True)
    values = {"LISTEN": listen, "ADMIN": admin, "UP1": ups[0], "UP2": ups[1], "UP3": ups[2], "DIR": str(workdir)}
    if name.startswith("ringside-"):
        binary = targets.ROOT / "target/release/ringside"
        if not binary.is_file():
            raise targets.Skipped(f"{binary} not built")
        runtime = name.removeprefix("ringside-").removesuffix("-retry")
        if runtime == "io-uring" and not targets.io_uring_works(binary)[0]:
            raise targets.Skipped("io_uring unavailable on this host")
        values["RETRY"] = RETRY if name.endswith("-retry") else ""
        cfg = targets.fill(targets.PEERS / "ringside-faults.yaml", workdir / "ringside.yaml", values)
        argv = [str(binary), "run", "-c", str(cfg), "--runtime", runtime, "--workers", "1", "--log-level", "warn"]
    elif name == "nginx":
        for d in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (workdir / d).mkdir(exist_ok=True)
        cfg = targets.fill(targets.PEERS / "nginx-faults.conf", workdir / "nginx.conf", values)
        argv = ["nginx", "-c", str(cfg), "-p", str(workdir)]
    elif name == "haproxy":
        cfg = targets.fill(targets.PEERS / "haproxy-faults.cfg", workdir / "haproxy.cfg", values)
        argv = ["haproxy", "-db", "-f", str(cfg)]
    else:
        raise targets.Skipped(f"no faults configuration for {name}")
    p = targets.spawn(targets.pinned(cpu, argv), workdir, name)
    t = targets.Target(name, http=listen, pid=p.pid, procs=[p])
    if name.startswith("ringside-"):
        t.admin = admin  # read for ringside_outlier_ejections_total around each measurement
    try:
        targets.wait_port(listen)
    except targets.StartFailed as e:
        t.stop()
        raise targets.StartFailed(f"{e}; {(workdir / f'{name}.log').read_text(errors='replace')[-300:]}") from None
    return t


def run(env, good: str, work: Path, selected: list[str], save, results: list, attempts: list, skipped: dict):
    """Starts the bad and a second good origin, every faults target, and runs the open-loop
    mix over them with mixrun (direct, on a good origin, is the control)."""
    procs, started = [], {}
    try:
        p2, good2 = origin(env, work, "good2", [])
        procs.append(p2)
        p3, bad = origin(env, work, "bad", FAIL)
        procs.append(p3)
        ups = [good, good2, bad]
        for i, name in enumerate(n for n in TARGETS if n in selected or n == "direct"
                                 or n.removesuffix("-retry") in selected):
            if name == "direct":
                started[name] = targets.Target("direct", http=good)
                continue
            try:
                started[name] = start(name, ups, 33000 + 10 * i, env.proxy_cpu, work / f"faults-{name}")
            except (targets.Skipped, targets.StartFailed) as e:
                skipped[name] = str(e)
                print(f"  faults {name}: skipped ({e})", flush=True)
        if "go-baseline" in selected:
            skipped["go-baseline"] = "examples/cmd/baselineproxy proxies to one upstream: no balancing to fail over"
        mixrun.run(env, started, save, results, attempts, s="faults")
    finally:
        for t in started.values():
            t.stop()
        for p in procs:
            p.terminate()


def ejections(t) -> int | None:
    """Ringside's count of outlier ejections so far (its /metrics), None for other targets."""
    admin = getattr(t, "admin", None)
    if admin is None:
        return None
    host, port = admin.rsplit(":", 1)
    c = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        c.request("GET", "/metrics")
        body = c.getresponse().read().decode()
    finally:
        c.close()
    return sum(int(float(line.rsplit(" ", 1)[1])) for line in body.splitlines()
               if line.startswith("ringside_outlier_ejections_total"))
