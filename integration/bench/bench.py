#!/usr/bin/env python3
"""Ringside's benchmark harness: every scenario against every target, side by side, in one run.

    python3 integration/bench/bench.py            # full run (make bench)
    python3 integration/bench/bench.py --quick    # smoke run, under 90 s (make bench-quick)

Each proxy gets CPU 0 alone with one worker/thread; the load generator and the upstream share
CPU 1. Results: Markdown tables on stdout, target/bench/results.json, target/bench/machine.json,
and (full runs) SVG charts in docs/bench/.
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import report  # noqa: E402
import routes  # noqa: E402
import scenarios  # noqa: E402
import targets  # noqa: E402

TARGETS = ["direct", "ringside-io-uring", "ringside-epoll", "go-baseline", "nginx", "haproxy"]
# idle first: it measures memory growth, which earlier load would hide in allocator caches.
PASS1 = ["idle", "steady", "h2", "h2h2", "churn", "tcp", "tls", "tlsnew", "plainhop", "mtlshop"]
PASS2 = ["mixcap", "mix", "cost"]
# Scenarios that start their own targets per configuration (routes.py: 1 to 10,000 routes).
OWN = ["routes"]


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


def median_row(runs: list[dict]) -> dict:
    row = dict(runs[0])
    for k, v in runs[0].items():
        vals = [r.get(k) for r in runs if isinstance(r.get(k), (int, float))]
        if isinstance(v, (int, float)) and len(vals) == len(runs):
            row[k] = statistics.median(vals)
    return row


def run_pass(names: list[str], env: Env, upstream: str, work: Path, results: list, skipped: dict):
    for i, tname in enumerate(TARGETS_SELECTED):
        try:
            t = targets.start(tname, upstream, 31000 + 10 * i, env.proxy_cpu, work / tname)
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
        try:
            scenarios.load.wrk(t.http, env.load_cpu, 1, conns=8)  # warm-up: pools, caches, JIT-free but fair
            for s in names:
                runs = []
                try:
                    for _ in range(1 if s in ("idle", "mix", "cost") else env.reps):
                        r = scenarios.ALL[s](t, env)
                        if r is None:
                            break
                        runs.append(r)
                except scenarios.load_skip as e:
                    skipped.setdefault(s, {})[tname] = str(e)
                    print(f"  {s:<6} {tname:<18} skipped: {e}", flush=True)
                    continue
                except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
                    skipped.setdefault(s, {})[tname] = f"failed: {e}"
                    print(f"  {s:<6} {tname:<18} FAILED: {e}", flush=True)
                    continue
                if not runs:
                    continue
                row = median_row(runs)
                row.update(scenario=s, target=tname)
                results.append(row)
                rps = f"{row['rps']:,.0f} req/s" if row.get("rps") else ""
                cpu = f"{row['cpu_us_per_req']:.1f} µs/req" if row.get("cpu_us_per_req") else ""
                kib = f"{row['kib_per_conn']:.2f} KiB/conn" if row.get("kib_per_conn") is not None else ""
                print(f"  {s:<6} {tname:<18} {rps} {cpu} {kib}".rstrip(), flush=True)
        finally:
            t.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke run: short, one repetition, no mix/cost/charts")
    ap.add_argument("--targets", default=",".join(TARGETS))
    ap.add_argument("--scenarios", default=",".join(PASS1 + PASS2 + OWN))
    ap.add_argument("--out", default=str(targets.ROOT / "target/bench"))
    ap.add_argument("--mix-rate", type=int, default=0, help="open-loop rate for mix (default: measured)")
    args = ap.parse_args()
    global TARGETS_SELECTED
    TARGETS_SELECTED = [t for t in args.targets.split(",") if t]
    chosen = set(args.scenarios.split(","))
    cores = os.cpu_count() or 1
    env = Env(seconds=2 if args.quick else 10, reps=1 if args.quick else 3,
              idle_conns=1000 if args.quick else 15000, mix_seconds=15, cost_seconds=10,
              proxy_cpu=0, load_cpu=1 if cores > 1 else 0)
    if args.quick:
        chosen -= {"mix", "cost"}
    if not shutil.which("wrk"):
        sys.exit("wrk is required (apt-get install wrk, or run integration/bench/setup.sh)")

    info = machine()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "machine.json").write_text(json.dumps(info, indent=2) + "\n")
    print("== machine: " + ", ".join(f"{k}={v}" for k, v in info.items() if v), flush=True)

    results, skipped, route_rows = [], {}, []
    with tempfile.TemporaryDirectory(prefix="ringside-bench-") as d:
        work = Path(d)
        targets.CERTS = targets.make_certs(work / "certs")
        origin, upstream = start_origin(env, work)
        try:
            p1 = [s for s in PASS1 if s in chosen]
            if p1:
                print(f"== pass 1: {', '.join(p1)} ({env.reps}× {env.seconds:g}s, medians)", flush=True)
                run_pass(p1, env, upstream, work, results, skipped)
            if "mix" in chosen and args.mix_rate:
                env.mix_rate = args.mix_rate
            elif "mix" in chosen:
                print("== pass 2: mix capacity (closed loop, the mix's requests)", flush=True)
                run_pass(["mixcap"], env, upstream, work, results, skipped)
                capacity = [r["rps"] for r in results if r["scenario"] == "mixcap" and r["target"] != "direct"]
                # The open-loop generator must keep up too, or the latencies measure it.
                gen = scenarios.load.vegeta_capacity(upstream, scenarios.MIX, env.load_cpu)
                print(f"  vegeta drives at most {gen:,.0f} req/s of the mix on its core", flush=True)
                env.mix_rate = int(0.7 * min(capacity + [gen])) if capacity else int(0.7 * gen)
            p3 = [s for s in ("mix", "cost") if s in chosen]
            if p3:
                print(f"== pass 3: {', '.join(p3)} (mix open loop at {env.mix_rate} req/s = 70% of the lowest "
                      "mix capacity)", flush=True)
                run_pass(p3, env, upstream, work, results, skipped)
            if "routes" in chosen:
                print("== routes: 1 to 10,000 routes, one per host (local 404, proxied, start, reload)", flush=True)
                route_rows, skipped["routes"] = routes.run(env, upstream, work, args.quick, TARGETS_SELECTED)
        finally:
            origin.terminate()

    print()
    for s in PASS1 + PASS2:
        rows = [r for r in results if r["scenario"] == s]
        if rows or s in skipped:
            print(report.table(s, rows, skipped.get(s, {})))
    if "routes" in chosen:
        print(routes.table(route_rows, skipped["routes"]))
        (out / "routes.json").write_text(json.dumps(route_rows, indent=2) + "\n")
    report.write_json(out / "results.json", results)
    print(f"results: {out / 'results.json'}, machine: {out / 'machine.json'}")
    # Charts describe a complete run only: a subset would overwrite them with partial data.
    complete = args.targets == ",".join(TARGETS) and args.scenarios == ",".join(PASS1 + PASS2 + OWN)
    if not args.quick and complete:
        report.charts(results, targets.ROOT / "docs/bench", out / "venv")
    failed = [f"{s}/{t}" for s, ts in skipped.items() for t, why in ts.items() if why.startswith("failed")]
    if failed or not any(r["target"].startswith("ringside") for r in results + route_rows):
        sys.exit(f"benchmark runs failed: {', '.join(failed) or 'no Ringside results'}")


TARGETS_SELECTED: list[str] = []

if __name__ == "__main__":
    main()
