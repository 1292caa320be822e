"""Tables on stdout and in tables.md, results.json, and SVG charts."""

import json
import subprocess
import sys
from pathlib import Path

import spread
import validity


def fmt(v, digits=1):
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return str(v)


def cell(r: dict, key: str, digits=1) -> str:
    """The median with its min–max over the repetitions when there were several."""
    v = r.get(key)
    if v is None:
        return "–"
    lo, hi = r.get(key + "_min"), r.get(key + "_max")
    if lo is None or len(r.get("reps", [])) < 2:
        return fmt(v, digits)
    return f"{fmt(v, digits)} ({fmt(lo, digits)}–{fmt(hi, digits)})"


def ratio(r: dict, base: dict, key: str) -> str:
    """r's median over base's, or "≈" with the ratio when their ranges overlap."""
    v, b = r.get(key), base.get(key)
    if not v or not b:
        return "–"
    if r is not base and spread.overlap(r, base, key) and len(r.get("reps", [])) > 1:
        return f"≈ {v / b:.2f}× (overlap)"
    return f"{v / b:.2f}×"


def heading(scenario: str, rows: list[dict], run_id: str) -> list[str]:
    """The table's title names the scenario, its load and the run: two scenarios' tables can
    never be taken for one another (the mix table once repeated the mixcap one)."""
    proxies = [r for r in rows if r["target"] != "direct"] or rows
    reps = max((len(r.get("reps", [])) for r in proxies), default=0)
    title = f"### {scenario}"
    if scenario == "mix" and rows:
        title += f" (open loop at {rows[0].get('offered_rps', 0):,.0f} req/s offered)"
    elif scenario == "faults" and rows:
        title += (f" (the mix open loop at {rows[0].get('offered_rps', 0):,.0f} req/s, one of three endpoints "
                  "answering 50% 502)")
    elif scenario == "mixcap":
        title += " (closed-loop capacity for the mix's requests)"
    lines = [title, "", f"run {run_id}, {reps} repetition(s); figures are median (min–max)"
             + (", direct measured before and after the proxies in each" if scenario == "mix" else ""), ""]
    direct = next((r for r in rows if r["target"] == "direct"), None)
    if direct and direct.get("proxy_core_busy") is not None:
        # No proxy runs in direct's windows: whatever keeps the proxy core busy then is other
        # work on the machine, there in the proxies' windows too.
        lines[-1:-1] = ["", f"proxy core busy during direct's windows (other work on the machine): "
                            f"{pct(direct, 'proxy_core_busy')}; load core: {pct(direct, 'load_core_busy')}"]
    invalid = next((r["invalid"] for r in rows if r.get("invalid")), None)
    if invalid:
        lines += [f"**INVALID, not a result**: the control (direct) did not hold the load: {invalid}", ""]
    return lines


def table(scenario: str, rows: list[dict], skipped: dict, run_id: str = "") -> str:
    by = {r["target"]: r for r in rows}
    direct, nginx = by.get("direct", {}), by.get("nginx", {})
    lines = heading(scenario, rows, run_id)
    if scenario == "idle":
        lines += ["| target | KiB per idle connection | RSS (KiB) | ×nginx |", "|---|---:|---:|---:|"]
        for r in rows:
            lines.append(f"| {r['target']} | {fmt(r.get('kib_per_conn'), 2)} | {fmt(r.get('rss_kib'))} | "
                         f"{ratio(r, nginx, 'kib_per_conn')} |")
    elif scenario == "mix":
        lines += ["| target | req/s done | p50 ms | p99 ms | p99.9 ms | max ms | proxy CPU µs/req | "
                  "load CPU µs/req | non-2xx | other errors | p99 ×direct | within the rules every round? |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
        for r in rows:
            held = "yes" if not r.get("reasons") else "no: " + "; ".join(r["reasons"])
            lines.append(
                f"| {r['target']} | {cell(r, 'rps', 0)} | {cell(r, 'p50_ms', 2)} | {cell(r, 'p99_ms', 2)} | "
                f"{cell(r, 'p999_ms', 2)} | {cell(r, 'max_ms', 1)} | {cell(r, 'cpu_us_per_req')} | "
                f"{cell(r, 'load_cpu_us_per_req')} | {share(r, 'non2xx')} | {share(r, 'errors')} | "
                f"{ratio(r, direct, 'p99_ms')} | {held} |")
    elif scenario == "faults":
        lines += ["| target | client success | p50 ms | p99 ms | p99.9 ms | max ms | proxy CPU µs/req | non-2xx | "
                  "other errors | p99 ×direct | ejections per round |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
        for r in rows:
            ej = [x.get("ejections") for x in r.get("reps", [])]
            lines.append(
                f"| {r['target']} | {pct(r, 'success', 2)} | {cell(r, 'p50_ms', 2)} | {cell(r, 'p99_ms', 2)} | "
                f"{cell(r, 'p999_ms', 2)} | {cell(r, 'max_ms', 1)} | {cell(r, 'cpu_us_per_req')} | "
                f"{share(r, 'non2xx')} | {share(r, 'errors')} | {ratio(r, direct, 'p99_ms')} | "
                f"{', '.join(str(x) for x in ej) if any(x is not None for x in ej) else '–'} |")
    else:
        lines += ["| target | req/s | p50 ms | p99 ms | p99.9 ms | proxy CPU µs/req | load CPU µs/req | RSS KiB | "
                  "errors | rps ×direct | CPU ×nginx |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in rows:
            extra = f" ({fmt(r['vcpu_per_1k_rps'], 3)} vCPU per 1k req/s)" if r.get("vcpu_per_1k_rps") else ""
            lines.append(
                f"| {r['target']} | {cell(r, 'rps', 0)} | {cell(r, 'p50_ms', 3)} | {cell(r, 'p99_ms', 3)} | "
                f"{cell(r, 'p999_ms', 3)} | {cell(r, 'cpu_us_per_req')}{extra} | {cell(r, 'load_cpu_us_per_req')} | "
                f"{fmt(r.get('rss_kib'), 0)} | {fmt(r.get('errors'))} | {ratio(r, direct, 'rps')} | "
                f"{ratio(r, nginx, 'cpu_us_per_req')} |")
    for target, why in skipped.items():
        lines.append(f"| {target} | skipped: {why} |")
    lines += verdicts(scenario, by)
    return "\n".join(lines) + "\n"


def pct(r: dict, key: str, digits: int = 0) -> str:
    """A 0..1 figure as a percentage, with its min–max."""
    v, lo, hi = r.get(key), r.get(key + "_min"), r.get(key + "_max")
    if v is None:
        return "–"
    f = f".{digits}%"
    return f"{v:{f}}" + (f" ({lo:{f}}–{hi:{f}})" if lo is not None and len(r.get("reps", [])) > 1 else "")


def share(r: dict, key: str) -> str:
    n = r.get("requests")
    return f"{r.get(key, 0) / n:.2%}" if n else "–"


def verdicts(scenario: str, by: dict) -> list[str]:
    """The comparisons the seed's question turns on, winners named only without overlap."""
    pairs = [("ringside-io-uring", "ringside-epoll"), ("ringside-io-uring", "go-baseline"),
             ("ringside-epoll", "go-baseline"), ("ringside-io-uring", "nginx"), ("ringside-epoll", "nginx")]
    keys = [("p99_ms", "ms", True)] if scenario in ("mix", "faults") else []
    if scenario == "faults":
        pairs = [(f"ringside-{rt}", f"ringside-{rt}-retry") for rt in ("io-uring", "epoll")] + \
                [(f"ringside-{rt}{p}", peer) for rt in ("io-uring", "epoll") for p in ("", "-retry")
                 for peer in ("nginx", "haproxy")]
        keys.insert(0, ("success", "%", False))
    if scenario not in ("idle",):
        keys.append(("cpu_us_per_req", "µs/req", True))
    out = []
    for a, b in pairs:
        if a in by and b in by and len(by[a].get("reps", [])) > 1:
            for key, unit, lower in keys:
                out.append(f"- {key}: {spread.compare(by[a], by[b], key, unit, lower)}")
    return ["", *out] if out else []


def check_distinct(results: list[dict]):
    """Fails if two scenarios produced the same figures for a target: two measurements never
    agree to every digit, so that would mean one table is not what was measured."""
    seen = {}
    for r in results:
        key = (r["target"], r.get("rps"), r.get("p50_ms"), r.get("p99_ms"), r.get("cpu_us_per_req"))
        if r.get("rps") is None:
            continue
        if key in seen and seen[key] != r["scenario"]:
            raise AssertionError(f"{seen[key]} and {r['scenario']} report identical figures for {r['target']}")
        seen[key] = r["scenario"]


def write_json(path: Path, rows: list[dict]):
    """Every row with every repetition (`reps`), without the raw latency samples."""
    path.parent.mkdir(parents=True, exist_ok=True)
    clean = [{k: v for k, v in r.items() if k != "latencies_ms"} for r in rows]
    path.write_text(json.dumps(clean, indent=2) + "\n")


def charts(rows: list[dict], out: Path, venv: Path, hists: Path):
    """Renders SVGs with matplotlib from a venv (PyPI); skipped with a message if unavailable."""
    out, venv, hists = out.resolve(), venv.resolve(), hists.resolve()  # charts.py runs elsewhere
    py = venv / "bin/python"
    if not py.exists():
        r = subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True)
        if r.returncode == 0:
            subprocess.run([str(py), "-m", "pip", "install", "-q", "matplotlib"], capture_output=True)
    if not py.exists():
        print("charts skipped: no venv with matplotlib")
        return
    out.mkdir(parents=True, exist_ok=True)
    data = out / "results.json"
    write_json(data, [{k: v for k, v in r.items() if k != "reps"} for r in rows])
    here = Path(__file__).parent
    r = subprocess.run([str(py), str(here / "charts.py"), str(data), str(out), str(hists)],
                       capture_output=True, text=True, cwd=here)
    print(r.stdout + r.stderr if r.returncode else f"charts written to {out}")


SCENARIO_ORDER = ["idle", "steady", "h2", "h2h2", "churn", "tcp", "tls", "tlsnew", "plainhop", "mtlshop", "mixcap",
                  "mix", "faults", "cost"]


def revalidate(row: dict) -> dict:
    """A closed-loop row's verdicts recomputed from its repetitions with today's rules (the
    open-loop ones depend on the run's p99 bound and rate changes, and are kept as run)."""
    if row["scenario"] in ("mix", "faults") or not row.get("reps"):
        return row
    for r in row["reps"]:
        r["reasons"] = validity.reasons(row["scenario"], r) if r.get("rps") else []
    row["reasons"] = sorted({x for r in row["reps"] for x in r["reasons"]})
    return row


def render(out: Path) -> str:
    """The tables of a finished run again, from its results.json and machine.json."""
    rows = [revalidate(r) for r in json.loads((out / "results.json").read_text())]
    machine = json.loads((out / "machine.json").read_text())
    run_id = machine.get("run", f"{machine.get('date')}, load average {machine.get('loadavg')}")
    for s in {r["scenario"] for r in rows}:
        control = [x for r in rows if r["scenario"] == s and r["target"] == "direct" for x in r.get("reasons", [])]
        for r in rows:
            if r["scenario"] == s and s not in ("mix", "faults"):
                r.pop("invalid", None)
                if control:
                    r["invalid"] = "; ".join(sorted(set(control)))
    return "\n".join(table(s, [r for r in rows if r["scenario"] == s], {}, run_id)
                     for s in SCENARIO_ORDER if any(r["scenario"] == s for r in rows))


if __name__ == "__main__":
    print(render(Path(sys.argv[1] if len(sys.argv) > 1 else "target/bench")))
