"""SVG charts from results.json (runs in the bench venv, which has matplotlib)."""

import json
import sys
from pathlib import Path

import hist

import matplotlib

matplotlib.use("svg")
import matplotlib.pyplot as plt  # noqa: E402

rows = json.loads(Path(sys.argv[1]).read_text())
out = Path(sys.argv[2])
hists = Path(sys.argv[3]) if len(sys.argv) > 3 else None


def bars(scenario, key, title, ylabel, name):
    rs = [r for r in rows if r["scenario"] == scenario and r.get(key) is not None]
    if not rs:
        return
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.bar([r["target"] for r in rs], [r[key] for r in rs], color="#4C72B0")
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.tick_params(axis="x", labelrotation=20)
    fig.tight_layout()
    fig.savefig(out / name)
    plt.close(fig)


bars("steady", "rps", "HTTP/1.1 keep-alive throughput (one proxy core)", "requests/s", "steady_rps.svg")
bars("steady", "cpu_us_per_req", "Proxy CPU per request, HTTP/1.1 keep-alive", "µs per request", "steady_cpu.svg")
bars("churn", "cpu_us_per_req", "Proxy CPU per request, Connection: close", "µs per request", "churn_cpu.svg")
bars("tcp", "cpu_us_per_req", "Proxy CPU per request, opaque TCP", "µs per request", "tcp_cpu.svg")
bars("idle", "kib_per_conn", "User-space memory per idle keep-alive connection", "KiB", "idle_kib.svg")

mix = [r for r in rows if r["scenario"] == "mix" and r.get("p99_ms") is not None]
if mix:
    fig, ax = plt.subplots(figsize=(7, 3.2))
    width = 0.25
    xs = range(len(mix))
    for i, (k, label) in enumerate([("p50_ms", "p50"), ("p99_ms", "p99"), ("p999_ms", "p99.9")]):
        ax.bar([x + (i - 1) * width for x in xs], [r[k] for r in mix], width, label=label)
    ax.set_xticks(list(xs), [r["target"] for r in mix], rotation=20)
    ax.set_ylabel("ms")
    ax.set_yscale("log")
    ax.set_title("Production mix latency (open loop, fixed rate)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "mix_latency.svg")
    plt.close(fig)


def percentile_curves(scenario, title, name):
    """The latency percentile distribution per target (HdrHistogram's plot: x is how rare the
    request is, 1/(1-p), on a log scale), from the merged histogram of the valid repetitions."""
    files = sorted(hists.glob(f"{scenario}-*.hgrm")) if hists and hists.exists() else []
    if not files:
        return
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for f in files:
        pts = [(1 / (1 - p), ms) for p, ms in hist.read(f) if p < 1]
        if pts:
            ax.plot([x for x, _ in pts], [y for _, y in pts], label=f.stem.removeprefix(scenario + "-"))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ticks = [2, 10, 100, 1000, 10000]
    ax.set_xticks(ticks, ["p50", "p90", "p99", "p99.9", "p99.99"])
    ax.set_ylabel("ms from intended send time")
    ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / name)
    plt.close(fig)


percentile_curves("mix", "Production mix latency percentiles (open loop, all valid repetitions)",
                  "mix_percentiles.svg")
percentile_curves("faults", "Production mix, one of three endpoints failing half its requests",
                  "faults_percentiles.svg")
