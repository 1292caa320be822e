"""One function per scenario: run it against a started target, return one result row."""

import resource
import socket
import threading
import time
from pathlib import Path

import load


# (proxy CPU, load CPU): set by bench.py; how busy each core was is read for every window.
CPUS = (0, 1)


def core_ticks(cpu: int) -> tuple[int, int]:
    """(busy, total) jiffies of one CPU since boot, from /proc/stat."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{cpu} "):
            v = [int(x) for x in line.split()[1:]]
            idle = v[3] + v[4]  # idle + iowait
            return sum(v[:8]) - idle, sum(v[:8])
    return 0, 0


def measured(t, run) -> dict:
    """Runs the load and adds the proxy's CPU per request and RSS over that window, and how
    busy the proxy core and the load core were (0..1, everything on them: what is not the
    proxy's on the proxy core is other work disturbing the run)."""
    cores0 = [core_ticks(c) for c in CPUS]
    c0 = t.cpu_seconds()
    r = run()
    c1 = t.cpu_seconds()
    for name, c, (b0, t0) in zip(("proxy_core_busy", "load_core_busy"), CPUS, cores0):
        b1, t1 = core_ticks(c)
        r[name] = (b1 - b0) / (t1 - t0) if t1 > t0 else None
    if t.pid is not None and r["requests"]:
        r["cpu_us_per_req"] = (c1 - c0) * 1e6 / r["requests"]
        r["rss_kib"] = t.rss_kib()
    return r


def steady(t, env):
    return measured(t, lambda: load.wrk(t.http, env.load_cpu, env.seconds, conns=32))


def churn(t, env):
    return measured(t, lambda: load.wrk(t.http, env.load_cpu, env.seconds, conns=16, churn=True))


def tcp(t, env):
    if t.name == "direct":
        return None
    if not t.tcp:
        raise load_skip("no TCP listener")
    view = t.for_tcp()
    return measured(view, lambda: load.wrk(t.tcp, env.load_cpu, env.seconds, conns=32))


def h2(t, env):
    """h2c downstream, HTTP/1.1 upstream (h2load: 4 connections × 16 streams)."""
    if not t.h2c:
        raise load_skip("does not speak h2c downstream")
    return measured(t, lambda: load.h2load(t.h2c, env.load_cpu, env.seconds))


def h2h2(t, env):
    """h2c downstream, h2c upstream (multiplexed upstream connections)."""
    if not t.h2c_h2:
        raise load_skip("not configured to proxy to an h2c upstream")
    return measured(t, lambda: load.h2load(t.h2c_h2, env.load_cpu, env.seconds))


def tls(t, env):
    """TLS 1.3 termination, keep-alive HTTP/1.1 (wrk over https) to the HTTP/1.1 upstream."""
    if not t.tls:
        raise load_skip("no TLS listener")
    return measured(t, lambda: load.wrk(t.tls, env.load_cpu, env.seconds, conns=32, scheme="https"))


def tlsnew(t, env):
    """TLS handshake-heavy: a new connection and full handshake per request (wrk, Connection:
    close): req/s is handshakes/s."""
    if not t.tls:
        raise load_skip("no TLS listener")
    return measured(t, lambda: load.wrk(t.tls, env.load_cpu, env.seconds, conns=16, churn=True, scheme="https"))


def mtlshop(t, env):
    """client → sidecar → mutual TLS (client certificate, SPIFFE ID checked both ways) → sidecar
    → app, both sidecars in the target's one process; compare with plainhop for what mTLS adds."""
    if not t.hop:
        raise load_skip("no sidecar hop configured (Ringside only)")
    return measured(t, lambda: load.wrk(t.hop, env.load_cpu, env.seconds, conns=32))


def plainhop(t, env):
    """The same two-sidecar hop as mtlshop, in plaintext."""
    if not t.plain_hop:
        raise load_skip("no sidecar hop configured (Ringside only)")
    return measured(t, lambda: load.wrk(t.plain_hop, env.load_cpu, env.seconds, conns=32))


# The production mix: response sizes 100 B to 1 MiB, 2% upstream 5xx.
MIX = ["/bytes/100"] * 40 + ["/bytes/1000"] * 25 + ["/bytes/10000"] * 20 + ["/bytes/100000"] * 10 + \
      ["/bytes/1048576"] * 3 + ["/status/500", "/status/503"]


def mixcap(t, env):
    """The target's capacity for the mix's requests, closed loop (wrk, 32 connections): how
    far each target is from its limit at the open-loop rate. The rate itself comes from
    direct's capacity (mixrun.calibrate)."""
    return measured(t, lambda: load.wrk(t.http, env.load_cpu, env.seconds, conns=32, script="mix.lua"))


# Slow clients: 4 connections each reading a 1 MiB response at 256 KiB/s (1 MiB/s in all, a
# few ms of load-core CPU per second), reconnecting when done, for the whole window.
SLOW_CLIENTS, SLOW_RATE = 4, 256 * 1024


def mix(t, env):
    """Open loop at env.mix_rate: 80% on keep-alive connections, 20% on a new connection
    each, plus the slow clients. Latency from each request's intended send time."""
    rate = env.mix_rate
    urls = [t.http + p for p in load.shuffled(MIX)]
    attacks = {}

    def attack(key, r, keepalive):
        attacks[key] = load.vegeta(urls, r, env.mix_seconds, env.load_cpu, keepalive=keepalive)

    slow_stop = threading.Event()
    slow = [threading.Thread(target=slow_client, args=(t.http, slow_stop), daemon=True) for _ in range(SLOW_CLIENTS)]

    def run():
        for s in slow:
            s.start()
        a = threading.Thread(target=attack, args=("keep", max(1, rate * 8 // 10), True))
        b = threading.Thread(target=attack, args=("new", max(1, rate - rate * 8 // 10), False))
        a.start(); b.start(); a.join(); b.join()
        slow_stop.set()
        for s in slow:
            s.join(timeout=6)
        if len(attacks) != 2:
            raise RuntimeError("a vegeta attack failed")
        return load.summarize([attacks["keep"], attacks["new"]], {200, 500, 503}, env.mix_seconds)

    return measured(t, run)


def faults(t, env):
    """The mix through faults.py's three endpoints, one failing; for Ringside, the outlier
    ejections that happened during the window."""
    import faults as f  # faults imports mixrun, which imports this module
    e0 = f.ejections(t)
    r = mix(t, env)
    if e0 is not None:
        r["ejections"] = f.ejections(t) - e0
    return r


def slow_client(addr, stop):
    host, port = addr.rsplit(":", 1)
    while not stop.is_set():
        try:
            s = socket.create_connection((host, int(port)), timeout=5)
            s.sendall(b"GET /bytes/1048576 HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            while not stop.is_set():
                chunk = s.recv(16384)
                if not chunk:
                    break
                time.sleep(16384 / SLOW_RATE)
            s.close()
        except OSError:
            time.sleep(0.1)


def cost(t, env):
    """Proxy CPU at a fixed 1,000 req/s: Istio's 'vCPU per 1,000 requests per second'."""
    if t.pid is None:
        return None
    r = measured(t, lambda: load.summarize(
        [load.vegeta([t.http + "/"], 1000, env.cost_seconds, env.load_cpu)], {200}, env.cost_seconds))
    if "cpu_us_per_req" in r:
        r["vcpu_per_1k_rps"] = r["cpu_us_per_req"] * 1000 / 1e6
    return r


def idle(t, env):
    """Idle keep-alive downstream connections, each having served one request: user-space KiB
    per connection (RSS delta)."""
    if t.pid is None:
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    host, port = t.http.rsplit(":", 1)
    socks = []

    def open_one():
        s = socket.create_connection((host, int(port)), timeout=5)
        s.sendall(b"GET /bytes/10 HTTP/1.1\r\nHost: bench\r\n\r\n")
        s.recv(4096)
        socks.append(s)

    base, note = 0, None
    try:
        for _ in range(100):
            open_one()
        time.sleep(0.3)
        base = t.rss_kib()
        for _ in range(env.idle_conns):
            open_one()
    except OSError as e:
        # e.g. HAProxy's maxconn under this machine's fd limit: report what it did hold.
        note = f"stopped at {len(socks) - 100} connections: {e}"
        print(f"  idle   {t.name:<18} {note}", flush=True)
    try:
        time.sleep(1.0)
        held = len(socks) - 100
        grown = t.rss_kib() - base
        return {"requests": held, "kib_per_conn": grown / held if held > 0 else None, "rss_kib": t.rss_kib(),
                "errors": 0 if note is None else 1, "note": note}
    finally:
        for s in socks:
            s.close()


class load_skip(Exception):
    pass


ALL = {"faults": faults, "steady": steady, "h2": h2, "h2h2": h2h2, "churn": churn, "tcp": tcp, "idle": idle, "mixcap": mixcap, "mix": mix,
       "cost": cost, "tls": tls, "tlsnew": tlsnew, "mtlshop": mtlshop, "plainhop": plainhop}
