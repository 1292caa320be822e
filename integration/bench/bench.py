#!/usr/bin/env python3
"""Ringside's benchmark harness: every scenario against every target, side by side, in one run.

    python3 integration/bench/bench.py            # full run (make bench)
    python3 integration/bench/bench.py --quick    # smoke run, under 90 s (make bench-quick)

Each proxy gets CPU 0 alone with one worker/thread; the load generator, the upstream and this
harness share CPU 1. Every scenario runs `--reps` rounds over all targets (order rotated) and
reports median (min–max); `direct` is the control whose failure makes a table INVALID
(validity.py; the open-loop mix retries lower, mixrun.py). Results: Markdown tables on stdout
and in tables.md, results.json (every round), attempts.json, hist/ (latency histograms) and
machine.json under --out (target/bench), and SVG charts (docs/bench/ for a full run).
"""

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import faults  # noqa: E402
import hist  # noqa: E402
import mixrun  # noqa: E402
import report  # noqa: E402
import routes  # noqa: E402
import scenarios  # noqa: E402
import spread  # noqa: E402
import targets  # noqa: E402
import validity  # noqa: E402

TARGETS = ["direct", "ringside-io-uring", "ringside-epoll", "go-baseline", "nginx", "haproxy"]
# idle first: it measures memory growth, which earlier load would hide in allocator caches.
PASS1 = ["idle", "steady", "h2", "h2h2", "churn", "tcp", "tls", "tlsnew", "plainhop", "mtlshop"]
PASS2 = ["mixcap", "mix", "cost"]
# Scenarios that start their own targets (faults.py: three endpoints, one failing; routes.py: 1 to
# 10,000 routes).
OWN = ["faults", "routes"]


@dataclass
class Env:
    seconds: float
    reps: int
    idle_conns: int
    mix_seconds: float
    cost_seconds: float
    proxy_cpu: int
    load_cpu: int
    mix_rate: int = 0
    p99_bound_ms: float = 50.0


def machine() -> dict:
    def version(argv):
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
            return (out.stdout or out.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return None

    return {
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "cpu": next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                     if l.startswith("model name")), None),
        "ringside": version([str(targets.ROOT / "target/release/ringside"), "--version"]),
        "nginx": version(["nginx", "-v"]),
        "haproxy": version(["haproxy", "-v"]),
        "go": version(["go", "version"]),
        "wrk": version(["wrk", "--version"]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "loadavg": loadavg(),
    }


def start_origin(env: Env, work: Path):
    ready = work / "origin.addr"
    p = subprocess.Popen(targets.pinned(env.load_cpu, [str(targets.ROOT / "target/go/origin"), "-addr",
                                                      "127.0.0.1:0", "-name", "bench", "-h2c", "-ready-file", str(ready)]),
                         stdout=subprocess.DEVNULL, start_new_session=True)
    end = time.time() + 10
    while not ready.exists() and time.time() < end:
        time.sleep(0.02)
    if not ready.exists():
        p.kill()
        sys.exit("the Go origin did not start (run integration/bench/setup.sh)")
    return p, ready.read_text().strip()


def start_all(env: Env, upstream: str, work: Path, names: list[str], skipped: dict) -> dict:
    """Starts every selected target (each on its own ports, all pinned to the proxy core; an
    idle one costs nothing) and warms it up: {name: Target}."""
    started = {}
    for i, tname in enumerate(TARGETS_SELECTED):
        try:
            started[tname] = targets.start(tname, upstream, 31000 + 10 * i, env.proxy_cpu, work / tname)
        except targets.Skipped as e:
            for s in names:
                skipped.setdefault(s, {})[tname] = str(e)
            print(f"  {tname}: skipped ({e})", flush=True)
            continue
        except targets.StartFailed as e:
            # Installed and able to run here, yet it did not start: the run fails.
            for s in names:
                skipped.setdefault(s, {})[tname] = f"failed: {e}"
            print(f"  {tname}: FAILED to start ({e})", flush=True)
            continue
        scenarios.load.wrk(started[tname].http, env.load_cpu, 1, conns=8)  # warm-up: pools, caches
    return started


def run_pass(names: list[str], env: Env, started: dict, results: list, skipped: dict):
    """Closed-loop scenarios: for each, `env.reps` rounds over every target, the target order
    rotated each round so that a disturbance of the shared machine lands on different targets
    (spreads, not medians, then say whether two targets differ). A scenario whose control
    (direct) breaks validity.py's rules is marked INVALID."""
    for s in names:
        per = {}
        reps = 1 if s in ("idle", "cost") else env.reps
        for rep in range(reps):
            order = list(started)[rep % max(1, len(started)):] + list(started)[:rep % max(1, len(started))]
            for tname in order:
                if tname in skipped.get(s, {}):
                    continue
                t = started[tname]
                try:
                    r = scenarios.ALL[s](t, env)
                except scenarios.load_skip as e:
                    skipped.setdefault(s, {})[tname] = str(e)
                    print(f"  {s:<6} {tname:<18} skipped: {e}", flush=True)
                    continue
                except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
                    skipped.setdefault(s, {})[tname] = f"failed: {e}"
                    print(f"  {s:<6} {tname:<18} FAILED: {e}", flush=True)
                    continue
                if r is None:
                    continue
                r.update(rep=rep + 1, reasons=validity.reasons(s, r) if r.get("rps") else [])
                per.setdefault(tname, []).append(r)
                rps = f"{r['rps']:,.0f} req/s" if r.get("rps") else ""
                cpu = f"{r['cpu_us_per_req']:.1f} µs/req" if r.get("cpu_us_per_req") else ""
                kib = f"{r['kib_per_conn']:.2f} KiB/conn" if r.get("kib_per_conn") is not None else ""
                p99 = f"p99 {r['p99_ms']:.2f} ms" if r.get("p99_ms") else ""
                busy = f"proxy core {r['proxy_core_busy']:.0%} load core {r['load_core_busy']:.0%}" \
                    if r.get("load_core_busy") is not None else ""
                why = f" [{'; '.join(r['reasons'])}]" if r["reasons"] else ""
                print(f"  {s:<6} r{rep + 1} {tname:<18} {rps} {p99} {cpu} {kib} {busy}{why}".rstrip(), flush=True)
        control = [x for r in per.get("direct", []) for x in r["reasons"]]
        for tname, reps_ in per.items():
            row = spread.aggregate(reps_)
            row.update(scenario=s, target=tname)
            row["reasons"] = sorted({x for r in reps_ for x in r["reasons"]})
            if control:
                row["invalid"] = "; ".join(sorted(set(control)))
            results.append(row)


def save_hist(out: Path):
    """A saver for mixrun: writes a measurement's latency distribution under out/hist."""
    def save(r: dict, name: str) -> str:
        path = out / "hist" / f"{name}.hgrm"
        hist.write(path, sorted(r.get("latencies_ms") or []))
        return str(path.relative_to(out))
    return save


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke run: short, one repetition, no mix/mixcap/cost/faults/charts")
    ap.add_argument("--targets", default=",".join(TARGETS))
    ap.add_argument("--scenarios", default=",".join(PASS1 + PASS2 + OWN))
    ap.add_argument("--out", default=str(targets.ROOT / "target/bench"))
    ap.add_argument("--mix-rate", type=int, default=0, help="open-loop rate for mix (default: calibrated)")
    ap.add_argument("--mix-rate-factor", type=float, default=1.0,
                    help="multiply the mix's rate (e.g. 3: an injected overload, which must be reported INVALID)")
    ap.add_argument("--p99-bound-ms", type=float, default=50.0,
                    help="the mix is invalid when direct's p99 exceeds this (ms)")
    ap.add_argument("--reps", type=int, default=0, help="repetitions (default 3, 1 with --quick)")
    args = ap.parse_args()
    global TARGETS_SELECTED
    TARGETS_SELECTED = [t for t in args.targets.split(",") if t]
    chosen = set(args.scenarios.split(","))
    cores = os.cpu_count() or 1
    env = Env(seconds=2 if args.quick else 10, reps=args.reps or (1 if args.quick else 3),
              idle_conns=1000 if args.quick else 15000, mix_seconds=10, cost_seconds=10,
              proxy_cpu=0, load_cpu=1 if cores > 1 else 0, p99_bound_ms=args.p99_bound_ms)
    scenarios.CPUS = (env.proxy_cpu, env.load_cpu)
    # The harness itself (slow clients, parsing) stays off the proxy core.
    os.sched_setaffinity(0, {env.load_cpu})
    if args.quick:
        chosen -= {"mix", "mixcap", "cost", "faults"}
    if not shutil.which("wrk"):
        sys.exit("wrk is required (apt-get install wrk, or run integration/bench/setup.sh)")

    info = machine()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    (out / "machine.json").write_text(json.dumps(info, indent=2) + "\n")
    print("== machine: " + ", ".join(f"{k}={v}" for k, v in info.items() if v), flush=True)

    results, skipped, route_rows, attempts = [], {}, [], []
    run_id = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()) + f", load average {loadavg()}"
    with tempfile.TemporaryDirectory(prefix="ringside-bench-") as d:
        work = Path(d)
        targets.CERTS = targets.make_certs(work / "certs")
        origin, upstream = start_origin(env, work)
        p1 = [s for s in PASS1 + ["mixcap"] if s in chosen]
        p3 = [s for s in ("mix", "cost") if s in chosen]
        started = start_all(env, upstream, work, p1 + p3, skipped) if p1 or p3 else {}
        try:
            if p1:
                print(f"== closed loop: {', '.join(p1)} ({env.reps}× {env.seconds:g}s, targets rotated)", flush=True)
                run_pass(p1, env, started, results, skipped)
            if "mix" in chosen:
                env.mix_rate = args.mix_rate or mixrun.calibrate(env, upstream)
                if args.mix_rate_factor != 1:
                    env.mix_rate = int(env.mix_rate * args.mix_rate_factor)
                    print(f"  --mix-rate-factor {args.mix_rate_factor:g}: starting at {env.mix_rate:,} req/s", flush=True)
                mixrun.run(env, started, save_hist(out), results, attempts)
            if "cost" in chosen:
                print("== cost: 1,000 req/s open loop", flush=True)
                run_pass(["cost"], env, started, results, skipped)
        finally:
            for t in started.values():
                t.stop()
        try:
            if "faults" in chosen:
                if not env.mix_rate:
                    env.mix_rate = args.mix_rate or int(mixrun.calibrate(env, upstream) * args.mix_rate_factor)
                print(f"== faults: the mix at {env.mix_rate:,} req/s over three endpoints, one failing half its "
                      "requests", flush=True)
                faults.run(env, upstream, work, TARGETS_SELECTED, save_hist(out), results, attempts,
                           skipped.setdefault("faults", {}))
            if "routes" in chosen:
                print("== routes: 1 to 10,000 routes, one per host (local 404, proxied, start, reload)", flush=True)
                route_rows, skipped["routes"] = routes.run(env, upstream, work, args.quick, TARGETS_SELECTED)
        finally:
            origin.terminate()
    run_id += f" → {loadavg()}"
    info["run"] = run_id
    (out / "machine.json").write_text(json.dumps(info, indent=2) + "\n")

    print()
    report.check_distinct(results)
    tables = []
    for s in report.SCENARIO_ORDER:
        rows = [r for r in results if r["scenario"] == s]
        if rows or s in skipped:
            tables.append(report.table(s, rows, skipped.get(s, {}), run_id))
    print("\n".join(tables))
    (out / "tables.md").write_text("\n".join(tables))
    if "routes" in chosen:
        print(routes.table(route_rows, skipped["routes"]))
        (out / "routes.json").write_text(json.dumps(route_rows, indent=2) + "\n")
    report.write_json(out / "results.json", results)
    report.write_json(out / "attempts.json", attempts)
    print(f"results: {out / 'results.json'} (every repetition), open-loop attempts: {out / 'attempts.json'}, "
          f"tables: {out / 'tables.md'}, histograms: {out / 'hist'}, machine: {out / 'machine.json'}")
    # Charts of a complete run go to docs/bench; a subset's stay under --out.
    complete = args.targets == ",".join(TARGETS) and args.scenarios == ",".join(PASS1 + PASS2 + OWN)
    if not args.quick:
        # One venv for every --out: matplotlib is installed once.
        report.charts(results, targets.ROOT / "docs/bench" if complete else out / "charts",
                      targets.ROOT / "target/bench/venv", out / "hist")
    failed = [f"{s}/{t}" for s, ts in skipped.items() for t, why in ts.items() if why.startswith("failed")]
    if failed or not any(r["target"].startswith("ringside") for r in results + route_rows):
        sys.exit(f"benchmark runs failed: {', '.join(failed) or 'no Ringside results'}")


TARGETS_SELECTED: list[str] = []

if __name__ == "__main__":
    main()
