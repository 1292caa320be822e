"""Tables on stdout, results.json, and (full runs) SVG charts."""

import json
import subprocess
import sys
from pathlib import Path

COLUMNS = ["scenario", "target", "rps", "p50_ms", "p99_ms", "p999_ms", "cpu_us_per_req", "rss_kib", "kib_per_conn",
           "errors"]


def fmt(v, digits=1):
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return str(v)


def ratio(v, base):
    return f"{v / base:.2f}×" if v and base else "–"


def table(scenario: str, rows: list[dict], skipped: dict) -> str:
    if scenario == "mixcap":
        scenario = "mixcap (closed-loop capacity for the mix's requests)"
    by = {r["target"]: r for r in rows}
    direct, nginx = by.get("direct", {}), by.get("nginx", {})
    lines = [f"### {scenario}", ""]
    if scenario == "idle":
        lines += ["| target | KiB per idle connection | RSS (KiB) | ×nginx |", "|---|---:|---:|---:|"]
        for r in rows:
            lines.append(f"| {r['target']} | {fmt(r.get('kib_per_conn'), 2)} | {fmt(r.get('rss_kib'))} | "
                         f"{ratio(r.get('kib_per_conn'), nginx.get('kib_per_conn'))} |")
    else:
        lines += ["| target | req/s | p50 ms | p99 ms | p99.9 ms | proxy CPU µs/req | RSS KiB | errors | "
                  "rps ×direct | CPU ×nginx |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in rows:
            extra = f" ({fmt(r['vcpu_per_1k_rps'], 3)} vCPU per 1k req/s)" if r.get("vcpu_per_1k_rps") else ""
            lines.append(
                f"| {r['target']} | {fmt(r.get('rps'), 0)} | {fmt(r.get('p50_ms'), 3)} | {fmt(r.get('p99_ms'), 3)} | "
                f"{fmt(r.get('p999_ms'), 3)} | {fmt(r.get('cpu_us_per_req'))}{extra} | {fmt(r.get('rss_kib'), 0)} | "
                f"{fmt(r.get('errors'))} | {ratio(r.get('rps'), direct.get('rps'))} | "
                f"{ratio(r.get('cpu_us_per_req'), nginx.get('cpu_us_per_req'))} |")
    for target, why in skipped.items():
        lines.append(f"| {target} | skipped: {why} |")
    return "\n".join(lines) + "\n"


def write_json(path: Path, rows: list[dict]):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([{k: r.get(k) for k in COLUMNS} for r in rows], indent=2) + "\n")


def charts(rows: list[dict], out: Path, venv: Path):
    """Renders SVGs with matplotlib from a venv (PyPI); skipped with a message if unavailable."""
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
    write_json(data, rows)
    r = subprocess.run([str(py), str(Path(__file__).with_name("charts.py")), str(data), str(out)],
                       capture_output=True, text=True)
    print(r.stdout + r.stderr if r.returncode else f"charts written to {out}")
