#!/usr/bin/env python3
"""Does a request cost more with 10,000 routes than with one? Two answers that a noisy
machine cannot blur as much as the `routes` scenario's single pass:

1. **Interleaved CPU per request.** The 1-route and the N-route Ringside are started in
   turns, `--rounds` times (the order alternates each round), each loaded with wrk for
   `--seconds` on a local 404 and on a proxied request; the proxy's CPU time per request is
   read from /proc. Machine noise then lands on both sizes alike; the report is each size's
   median (and range) and the ratio of medians. Each start also gives its time to ready (wall
   and CPU ms, from spawn to the first 200 on the probe route) and `--reloads` reload apply
   times (config rename to the first request answered by the new table, ms).
2. **Instructions per request** (when valgrind is installed): Ringside runs under callgrind,
   is warmed up, its counters are zeroed, `--requests` requests are sent with h2load (HTTP/1.1
   keep-alive) and the counters dumped: user-space instructions executed by the whole
   process per request. This is deterministic to a fraction of a percent and is exactly the
   cost the route table adds (the lookup is user-space work; the kernel's share of a request
   does not depend on the routes).

Same layout as bench.py: the proxy on CPU 0 with one worker, the load and the Go origin
on CPU 1. Configs are the `routes` scenario's (routes.py): one route per host, the probe
route last.

    python3 integration/bench/routecost.py                  # make bench-routes
    python3 integration/bench/routecost.py --sizes 1,10000 --rounds 3 --no-callgrind
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import faults  # noqa: E402
import routes  # noqa: E402
import targets  # noqa: E402

PROXY_CPU, LOAD_CPU = 0, 1


class Env:
    """What routes.Proxy.load needs from bench.py's environment."""
    load_cpu = LOAD_CPU


def interleaved(runtimes, sizes, rounds, seconds, reloads, upstream, work) -> list[dict]:
    """CPU µs per request for each (runtime, size, request), `rounds` times, sizes alternating;
    with each start's time to ready (wall and CPU ms) and `reloads` reload apply times (ms)."""
    samples: dict[tuple, list[float]] = {}
    for r in range(rounds):
        for rt in runtimes:
            order = sizes if r % 2 == 0 else list(reversed(sizes))
            for n in order:
                p = routes.Proxy(f"ringside-{rt}", n, upstream, 32100, PROXY_CPU, work / f"cpu-{rt}-{n}")
                try:
                    samples.setdefault((rt, n, "ready_ms"), []).append(p.ready_ms)
                    samples.setdefault((rt, n, "ready_cpu_ms"), []).append(p.ready_cpu_ms)
                    for what, host in (("404", routes.MISS), ("proxied", routes.probe_host(0))):
                        m = p.load(host, Env, seconds)
                        if m["requests"] == 0 or (what == "proxied" and m["errors"]):
                            raise RuntimeError(f"{rt} {n} routes {what}: {m}")
                        samples.setdefault((rt, n, what), []).append(m["cpu_us_per_req"])
                    for _ in range(reloads):
                        samples.setdefault((rt, n, "reload_ms"), []).append(p.reload())
                finally:
                    p.target.stop()
            print(f"  round {r + 1}/{rounds} {rt}: " + ", ".join(
                f"{n}:{samples[(rt, n, '404')][-1]:.1f}/{samples[(rt, n, 'proxied')][-1]:.1f}" for n in sizes),
                flush=True)
    rows = []
    for (rt, n, what), v in sorted(samples.items()):
        rows.append({"runtime": rt, "routes": n, "request": what, "median": statistics.median(v),
                     "min": min(v), "max": max(v), "samples": v})
    return rows


def callgrind_point(rt, n, what, requests, upstream, work: Path) -> dict:
    """Instructions per request of one Ringside under callgrind."""
    d = work / f"cg-{rt}-{n}-{what}"
    d.mkdir(parents=True, exist_ok=True)
    for old in d.glob("callgrind.out*"):
        old.unlink()
    port = 32200
    http, admin = f"127.0.0.1:{port}", f"127.0.0.1:{port + 1}"
    cfg = d / "ringside.yaml"
    cfg.write_text(routes.ringside_config(n, http, admin, upstream, routes.probe_host(0)))
    out = d / "callgrind.out"
    argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--dump-instr=no",
            routes.BINARY, "run", "-c", str(cfg), "--runtime", rt, "--workers", "1", "--log-level", "warn"]
    p = targets.spawn(targets.pinned(PROXY_CPU, argv), d, "ringside")
    try:
        routes.wait_status(http, routes.probe_host(0), 200, 90)
        host = routes.MISS if what == "404" else routes.probe_host(0)
        want = 404 if what == "404" else 200

        def send(k):
            res = subprocess.run(targets.pinned(LOAD_CPU, ["h2load", "--h1", "-n", str(k), "-c", "4",
                                                           "-H", f":authority: {host}", f"http://{http}/"]),
                                 capture_output=True, text=True, timeout=600)
            codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", res.stdout)
            got = [int(x) for x in codes.groups()] if codes else []
            idx = {200: 0, 404: 2}[want]
            if not got or got[idx] != k:
                raise RuntimeError(f"h2load: expected {k} × {want}: {res.stdout[-600:]}{res.stderr[-300:]}")

        send(requests // 2)  # warm-up: connections, pools, caches
        control = ["callgrind_control"]
        subprocess.run([*control, "--zero", str(p.pid)], check=True, capture_output=True, timeout=120)
        send(requests)
        subprocess.run([*control, "--dump", str(p.pid)], check=True, capture_output=True, timeout=120)
        dumps = sorted(d.glob("callgrind.out*"), key=lambda f: f.stat().st_mtime)
        text = dumps[-1].read_text(errors="replace") if dumps else ""
        m = re.search(r"^(?:totals|summary): (\d+)", text, re.M)
        if not m:
            raise RuntimeError(f"no totals in {dumps[-1] if dumps else d}")
        ir = int(m.group(1))
        return {"runtime": rt, "routes": n, "request": what, "requests": requests, "instructions": ir,
                "ir_per_req": ir / requests}
    finally:
        targets.Target("cg", http=http, pid=p.pid, procs=[p]).stop()


def callgrind_point_retried(rt, n, what, requests, upstream, work, tries=3) -> dict:
    """Valgrind runs one thread at a time and, in 3.19, holds its lock across a blocking
    `io_uring_enter`: now and then the io_uring worker waits in the kernel while the thread
    that would wake it waits for valgrind, and Ringside never becomes ready. Only under
    valgrind; such a start is abandoned and tried again."""
    for attempt in range(1, tries + 1):
        try:
            return callgrind_point(rt, n, what, requests, upstream, work)
        except RuntimeError as e:
            if attempt == tries:
                raise
            print(f"  callgrind {rt} {n} routes {what}: attempt {attempt} failed ({str(e)[:120]}), again", flush=True)
    raise AssertionError("unreachable")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1,10000", help="route counts for the interleaved CPU runs")
    ap.add_argument("--cg-sizes", default="1,100,1000,10000", help="route counts for callgrind")
    ap.add_argument("--runtimes", default="epoll,io-uring")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=3)
    ap.add_argument("--reloads", type=int, default=3, help="reloads timed per start")
    ap.add_argument("--requests", type=int, default=4000, help="requests counted under callgrind")
    ap.add_argument("--tries", type=int, default=4, help="starts tried per callgrind point")
    ap.add_argument("--no-callgrind", action="store_true")
    ap.add_argument("--no-interleaved", action="store_true")
    ap.add_argument("--out", default=str(targets.ROOT / "target/bench"))
    a = ap.parse_args()
    runtimes = a.runtimes.split(",")
    if "io-uring" in runtimes:
        ok, why = targets.io_uring_works(Path(routes.BINARY))
        if not ok:
            print(f"io-uring skipped: {why}")
            runtimes.remove("io-uring")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "loadavg": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="routecost-") as tmp:
        work = Path(tmp)
        origin, upstream = faults.origin(Env, work, "bench", [])
        try:
            if not a.no_interleaved:
                sizes = [int(x) for x in a.sizes.split(",")]
                print(f"== interleaved CPU per request: sizes {sizes}, {a.rounds} rounds of {a.seconds:g} s", flush=True)
                result["interleaved"] = interleaved(runtimes, sizes, a.rounds, a.seconds, a.reloads, upstream, work)
                save(out, result)
            if not a.no_callgrind:
                if not shutil.which("valgrind"):
                    print("callgrind skipped: valgrind not installed (apt-get install valgrind)")
                else:
                    rows = result["callgrind"] = []
                    for rt in runtimes:
                        for n in [int(x) for x in a.cg_sizes.split(",")]:
                            for what in ("404", "proxied"):
                                try:
                                    row = callgrind_point_retried(rt, n, what, a.requests, upstream, work, a.tries)
                                except RuntimeError as e:
                                    # One point that never started must not cost the others.
                                    print(f"  callgrind {rt} {n} routes {what}: gave up: {e}", flush=True)
                                    rows.append({"runtime": rt, "routes": n, "request": what, "error": str(e)})
                                    continue
                                print(f"  callgrind {rt:<8} {n:>6} routes {what:<7} {row['ir_per_req']:,.0f} instructions/request",
                                      flush=True)
                                rows.append(row)
                                save(out, result)
        finally:
            origin.terminate()
    save(out, result)
    print(table(result))


def save(out: Path, result: dict):
    """Writes what has been measured so far, so that a run cut short keeps it."""
    (out / "routecost.json").write_text(json.dumps(result, indent=2) + "\n")


def table(result: dict) -> str:
    lines = []
    rows = result.get("interleaved", [])
    if rows:
        lines += ["| runtime | routes | 404 CPU µs/req, median (min–max) | ×1 route | proxied CPU µs/req, median (min–max) | ×1 route "
                  "| start to ready ms, median (max) | CPU ms | reload apply ms, median (max) |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        by = {(r["runtime"], r["routes"], r["request"]): r for r in rows}
        for rt, n in sorted({(r["runtime"], r["routes"]) for r in rows}):
            cells = []
            for what in ("404", "proxied"):
                r, base = by[(rt, n, what)], by.get((rt, 1, what))
                ratio = f"{r['median'] / base['median']:.2f}×" if base else "–"
                cells += [f"{r['median']:.1f} ({r['min']:.1f}–{r['max']:.1f})", ratio]
            ready, cpu = by[(rt, n, "ready_ms")], by[(rt, n, "ready_cpu_ms")]
            cells += [f"{ready['median']:.0f} ({ready['max']:.0f})", f"{cpu['median']:.0f}"]
            rl = by.get((rt, n, "reload_ms"))
            cells.append(f"{rl['median']:.0f} ({rl['max']:.0f})" if rl else "–")
            lines.append(f"| {rt} | {n:,} | " + " | ".join(cells) + " |")
        lines.append("")
    rows = [r for r in result.get("callgrind", []) if "error" not in r]
    if rows:
        lines += ["| runtime | routes | 404 instructions/req | ×1 route | proxied instructions/req | ×1 route |",
                  "|---|---:|---:|---:|---:|---:|"]
        by = {(r["runtime"], r["routes"], r["request"]): r for r in rows}
        for rt, n in sorted({(r["runtime"], r["routes"]) for r in rows}):
            cells = []
            for what in ("404", "proxied"):
                r, base = by.get((rt, n, what)), by.get((rt, 1, what))
                if not r:
                    cells += ["did not start", "–"]
                    continue
                ratio = f"{r['ir_per_req'] / base['ir_per_req']:.3f}×" if base else "–"
                cells += [f"{r['ir_per_req']:,.0f}", ratio]
            lines.append(f"| {rt} | {n:,} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
