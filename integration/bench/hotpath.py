#!/usr/bin/env python3
"""Where the time goes: syscalls per request (strace -c), io_uring operations per request
(Ringside's /runtime), heap allocations per request (a build with the `alloc-count` feature)
and CPU flame graphs (the built-in /debug/pprof/profile), for Ringside on both runtimes next
to nginx, on the `steady` (HTTP/1.1 keep-alive) and `h2` (h2c to an HTTP/1.1 upstream) loads.

    python3 integration/bench/hotpath.py                     # make bench runs it after bench.py
    python3 integration/bench/hotpath.py --scenarios steady --requests 20000 --no-flame
    python3 integration/bench/hotpath.py --targets ringside-io-uring --no-flame --path /bytes/65536

Counting runs send a fixed number of requests with h2load (`--h1` for HTTP/1.1: 32
connections; h2: 4 connections × 16 streams), after a warm-up of the same shape, and divide
by the requests that succeeded. strace slows the traced process a lot, so its run is
separate from the allocation and ring counts; what it counts per request does not depend on
the speed. Same machine layout as bench.py: the proxy alone on CPU 0, the load and the
origin on CPU 1.

Output: a Markdown table on stdout and in OUT/hotpath.md, OUT/hotpath.json, the CPU profiles
(OUT/pprof-*.pb.gz), and one flame
graph per runtime and scenario (`flame-<scenario>-<runtime>.svg`, from the pprof profile via
`go tool pprof -traces` and inferno's `inferno-flamegraph`) in --flame-dir (docs/bench).
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import load  # noqa: E402
import targets  # noqa: E402

TARGETS = ["ringside-io-uring", "ringside-epoll", "nginx"]
SCENARIOS = ["steady", "h2"]
ALLOC_BIN = targets.ROOT / "target/bench/ringside-alloc-count"
INFERNO = targets.ROOT / "target/tools/bin/inferno-flamegraph"


# The path every request asks for (`--path`): `/` is the origin's small answer; `/bytes/N` and
# `/chunked/N` give a body of N bytes (read in several reads past the head's).
PATH = "/"


def h2load_n(t: targets.Target, scenario: str, n: int, cpu: int) -> int:
    """Sends `n` requests of the scenario's shape; the number that succeeded."""
    if scenario == "steady":
        shape, addr = ["--h1", "-c", "32", "-m", "1"], t.http
    else:
        shape, addr = ["-c", "4", "-m", "16"], t.h2c
    argv = targets.pinned(cpu, ["h2load", *shape, "-n", str(n), f"http://{addr}{PATH}"])
    out = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    m = re.search(r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded", out.stdout)
    if not m or int(m.group(1)) == 0:
        raise RuntimeError(f"h2load failed: {out.stdout[-400:]}{out.stderr[-300:]}")
    return int(m.group(1))


def get(url: str, timeout: float = 10) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def allocations(t: targets.Target) -> int:
    text = get(f"http://{t.admin}/metrics")
    m = re.search(r"^ringside_allocations_total (\d+)", text, re.M)
    if not m:
        raise RuntimeError("no ringside_allocations_total: not an alloc-count build")
    return int(m.group(1))


def ring_ops(t: targets.Target) -> int | None:
    """Ring operations the workers submitted so far (io_uring only)."""
    rt = json.loads(get(f"http://{t.admin}/runtime"))
    ops = [w.get("runtime", {}).get("ops_submitted") for w in rt.get("per_worker", [])]
    return sum(ops) if ops and None not in ops else None


def traced_pids(t: targets.Target) -> list[int]:
    """The process(es) doing the proxying: nginx's worker, Ringside itself."""
    tree = t.tree()
    return tree[1:] if t.name == "nginx" and len(tree) > 1 else tree[:1]


def strace_counts(t: targets.Target, run) -> dict[str, int]:
    """Syscall counts (by name) of the target's process and all its threads while `run()`
    runs, from `strace -c -f`."""
    with tempfile.NamedTemporaryFile("r", suffix=".strace") as out:
        argv = ["strace", "-c", "-f", "-o", out.name]
        for pid in traced_pids(t):
            argv += ["-p", str(pid)]
        p = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
        # strace says "Process N attached" for each thread; the load starts once it has.
        attached = threading.Event()

        def watch():
            for line in p.stderr:
                if "attached" in line:
                    attached.set()
        threading.Thread(target=watch, daemon=True).start()
        if not attached.wait(10):
            p.kill()
            raise RuntimeError("strace did not attach (ptrace not permitted here?)")
        time.sleep(0.5)
        try:
            run()
        finally:
            p.send_signal(signal.SIGINT)
            p.wait(timeout=30)
        return parse_strace(Path(out.name).read_text())


def parse_strace(text: str) -> dict[str, int]:
    """`strace -c`'s table: {syscall: calls}."""
    counts = {}
    for line in text.splitlines():
        f = line.split()
        if len(f) < 5 or not re.match(r"^[\d.]+$", f[0]) or f[-1] == "total":
            continue
        counts[f[-1]] = int(f[3])
    return counts


def flame(t: targets.Target, scenario: str, env, out_svg: Path, out: Path) -> str | None:
    """A CPU profile under the scenario's closed-loop load, as a flame graph (the profile
    itself is kept as OUT/pprof-TARGET-SCENARIO.pb.gz, for `go tool pprof`). None, or why not."""
    if not shutil.which("go") or not INFERNO.exists():
        return "needs go (go tool pprof) and inferno-flamegraph (integration/bench/setup.sh)"
    secs = env.seconds
    prof = out / f"pprof-{t.name}-{scenario}.pb.gz"
    result = {}

    def take():
        try:
            prof.write_bytes(urllib.request.urlopen(
                f"http://{t.admin}/debug/pprof/profile?seconds={secs}", timeout=secs + 30).read())
        except OSError as e:
            result["error"] = str(e)

    th = threading.Thread(target=take)
    th.start()
    if scenario == "steady":
        load.wrk(t.http, env.load_cpu, secs + 1, conns=32)
    else:
        load.h2load(t.h2c, env.load_cpu, secs + 1)
    th.join()
    if "error" in result:
        return f"profile failed: {result['error']}"
    traces = subprocess.run(["go", "tool", "pprof", "-traces", str(prof)], capture_output=True, text=True,
                            timeout=120)
    folded = fold_traces(traces.stdout)
    if not folded:
        return f"no samples in the profile ({traces.stderr.strip()[-200:]})"
    sampled_ms = sum(int(line.rsplit(" ", 1)[1]) for line in folded.splitlines()) / 1e3
    # The sampled CPU time says how much the graph rests on: a loaded machine starves the proxy.
    title = f"{t.name}, {scenario}: {sampled_ms:,.0f} ms of CPU sampled in {secs:g} s (99 Hz)"
    svg = subprocess.run([str(INFERNO), "--title", title,
                          "--countname", "µs"], input=folded, capture_output=True, text=True,
                         timeout=120)
    if svg.returncode != 0:
        return f"inferno-flamegraph failed: {svg.stderr[-200:]}"
    out_svg.parent.mkdir(parents=True, exist_ok=True)
    out_svg.write_text(svg.stdout)
    return None


UNITS_US = {"ns": 1e-3, "us": 1, "µs": 1, "ms": 1e3, "s": 1e6}


def fold_traces(text: str) -> str:
    """`go tool pprof -traces` as folded stacks (`root;...;leaf weight` per line), what inferno
    reads. Each block (between dashed lines) is optional label lines (`thread:  ringside-w0`),
    then `TIME leaf`, then one caller per line; the thread becomes the root frame and the
    weight is the sampled CPU time in µs."""
    stacks: dict[str, int] = {}
    frames, weight, root = [], 0, None

    def flush():
        if frames and weight:
            key = ";".join(([root] if root else []) + list(reversed(frames)))
            stacks[key] = stacks.get(key, 0) + weight
    for line in text.splitlines():
        if line.startswith("-----------+"):
            flush()
            frames, weight, root = [], 0, None
            continue
        if not frames:
            m = re.match(r"^\s+thread:\s+(\S+)", line)
            if m:
                root = m.group(1)
                continue
            m = re.match(r"^\s+([\d.]+)(ns|us|µs|ms|s)\s+(\S.*)$", line)
            if m:
                weight = round(float(m.group(1)) * UNITS_US[m.group(2)])
                frames.append(m.group(3).strip())
        elif line.strip():
            frames.append(line.strip())
    flush()
    return "".join(f"{k.replace(' ', '_')} {v}\n" for k, v in stacks.items())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--targets", default=",".join(TARGETS))
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--requests", type=int, default=20000, help="requests per counting run")
    ap.add_argument("--seconds", type=int, default=20, help="length of each CPU profile (whole seconds)")
    ap.add_argument("--no-flame", action="store_true", help="skip the CPU profiles")
    ap.add_argument("--alloc-bin", default=str(ALLOC_BIN),
                    help="the alloc-count build to count allocations with (e.g. one from before a change)")
    ap.add_argument("--alloc-only", action="store_true", help="count allocations only (Ringside targets)")
    ap.add_argument("--out", default=str(targets.ROOT / "target/bench"))
    ap.add_argument("--flame-dir", default=str(targets.ROOT / "docs/bench"))
    ap.add_argument("--path", default="/", help="what each request asks for (e.g. /bytes/65536 for a body)")
    args = ap.parse_args()
    global PATH
    PATH = args.path
    names = [t for t in args.targets.split(",") if t]
    scen = [s for s in args.scenarios.split(",") if s]
    cores = os.cpu_count() or 1

    class Env:
        seconds = args.seconds
        load_cpu = 1 if cores > 1 else 0
        proxy_cpu = 0
    os.sched_setaffinity(0, {Env.load_cpu})
    for tool in ("h2load", "strace"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is required (integration/bench/setup.sh installs it)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    load_avg = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    import bench  # the origin, as bench.py starts it
    with tempfile.TemporaryDirectory(prefix="ringside-profile-") as d:
        work = Path(d)
        targets.CERTS = targets.make_certs(work / "certs")  # the peers' configs name them
        origin, upstream = bench.start_origin(Env, work)
        try:
            for i, name in enumerate(names):
                for kind, binary in (("plain", None), ("alloc", Path(args.alloc_bin))):
                    if (kind == "alloc" and not name.startswith("ringside-")) or (kind == "plain" and args.alloc_only):
                        continue
                    try:
                        t = targets.start(name, upstream, 32000 + 20 * i + (10 if kind == "alloc" else 0),
                                          Env.proxy_cpu, work / f"{name}-{kind}", binary=binary)
                    except (targets.Skipped, targets.StartFailed) as e:
                        print(f"  {name} ({kind}): skipped: {e}", flush=True)
                        continue
                    try:
                        for s in scen:
                            if s == "h2" and not t.h2c:
                                continue
                            row = next((r for r in rows if r["target"] == name and r["scenario"] == s), None)
                            if row is None:
                                row = {"target": name, "scenario": s}
                                rows.append(row)
                            h2load_n(t, s, 2000, Env.load_cpu)  # warm-up: pools, caches, metric series
                            if kind == "alloc":
                                a0 = allocations(t)
                                done = h2load_n(t, s, args.requests, Env.load_cpu)
                                time.sleep(0.3)  # the counters are published every 100 ms
                                row["allocs_per_req"] = (allocations(t) - a0) / done
                                print(f"  {s:<6} {name:<18} {row['allocs_per_req']:.2f} allocations/req", flush=True)
                                continue
                            if t.admin:
                                o0 = ring_ops(t)
                                done = h2load_n(t, s, args.requests, Env.load_cpu)
                                o1 = ring_ops(t)
                                if o0 is not None and o1 is not None:
                                    row["ring_ops_per_req"] = (o1 - o0) / done
                            box = {}
                            calls = strace_counts(t, lambda: box.update(done=h2load_n(t, s, args.requests, Env.load_cpu)))
                            row["syscalls_per_req"] = {k: v / box["done"] for k, v in calls.items()}
                            row["syscalls_total_per_req"] = sum(calls.values()) / box["done"]
                            print(f"  {s:<6} {name:<18} {row['syscalls_total_per_req']:.2f} syscalls/req "
                                  + ", ".join(f"{k} {v:.2f}" for k, v in sorted(row["syscalls_per_req"].items(),
                                                                                key=lambda kv: -kv[1])[:6]),
                                  flush=True)
                            if not args.no_flame and name.startswith("ringside-"):
                                svg = Path(args.flame_dir) / f"flame-{s}-{name.removeprefix('ringside-')}.svg"
                                why = flame(t, s, Env, svg, out)
                                row["flame"] = str(svg) if why is None else f"skipped: {why}"
                                print(f"  {s:<6} {name:<18} flame graph: {row['flame']}", flush=True)
                    finally:
                        t.stop()
        finally:
            origin.terminate()
    load_avg += f" → {' '.join(Path('/proc/loadavg').read_text().split()[:3])}"
    md = table(rows, args.requests, load_avg)
    print(md)
    (out / "hotpath.md").write_text(md)
    (out / "hotpath.json").write_text(json.dumps(rows, indent=2) + "\n")


def table(rows: list[dict], n: int, load_avg: str) -> str:
    """One table per scenario: syscalls per request by syscall (the busiest first), ring
    operations and allocations per request, a column per target."""
    parts = []
    for s in dict.fromkeys(r["scenario"] for r in rows):
        rs = [r for r in rows if r["scenario"] == s]
        names = sorted({k for r in rs for k in r.get("syscalls_per_req", {})},
                       key=lambda k: -max(r.get("syscalls_per_req", {}).get(k, 0) for r in rs))
        head = f"#### `{s}`: per request ({n:,} requests per count; load average {load_avg})\n\n"
        head += "| | " + " | ".join(r["target"] for r in rs) + " |\n|---|" + "---:|" * len(rs) + "\n"

        def fmt(v):
            return "–" if v is None else f"{v:.2f}"
        lines = [f"| **syscalls** | " + " | ".join(fmt(r.get("syscalls_total_per_req")) for r in rs) + " |"]
        for k in names:
            vals = [r.get("syscalls_per_req", {}).get(k) for r in rs]
            if max(v or 0 for v in vals) < 0.01:
                continue
            lines.append(f"| `{k}` | " + " | ".join(fmt(v) for v in vals) + " |")
        lines.append("| **io_uring operations** | " + " | ".join(fmt(r.get("ring_ops_per_req")) for r in rs) + " |")
        lines.append("| **heap allocations** | " + " | ".join(fmt(r.get("allocs_per_req")) for r in rs) + " |")
        parts.append(head + "\n".join(lines) + "\n")
    return "\n".join(parts)


if __name__ == "__main__":
    main()
