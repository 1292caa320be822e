"""Latency histograms on disk, in HdrHistogram's percentile-distribution text format (what
`vegeta report -type=hdrplot` and HdrHistogram's `outputPercentileDistribution` print, and
what the HdrHistogram plotter reads), computed exactly from the sorted samples."""

from pathlib import Path

# Percentiles listed: halving the distance to 100% each step (50, 75, 87.5, ...), five
# points per halving, as HdrHistogram does, up to the last sample.


def levels(count: int) -> list[float]:
    ps, step = [], 0
    while True:
        for i in range(5):
            p = 1 - 0.5 ** (step + i / 5)
            if p * count >= count - 1:
                return ps + [1.0]
            ps.append(p)
        step += 1


def write(path: Path, sorted_ms: list[float]):
    """Writes the distribution of `sorted_ms` (latencies in ms, ascending) to `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    n = len(sorted_ms)
    lines = [f"{'Value(ms)':>12} {'Percentile':>14} {'TotalCount':>10} {'1/(1-Percentile)':>18}", ""]
    for p in levels(n) if n else []:
        k = min(n - 1, max(0, round(p * n) - 1))
        inv = "inf" if p >= 1 else f"{1 / (1 - p):.2f}"
        lines.append(f"{sorted_ms[k]:12.3f} {p:14.12f} {k + 1:10d} {inv:>18}")
    total = sum(sorted_ms)
    lines.append(f"#[Mean    = {total / n if n else 0:12.3f}, Samples = {n}]")
    lines.append(f"#[Max     = {sorted_ms[-1] if n else 0:12.3f}]")
    path.write_text("\n".join(lines) + "\n")


def read(path: Path) -> list[tuple[float, float]]:
    """(percentile 0..1, latency ms) points of a file written by `write`."""
    out = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 4 and not line.startswith("#") and parts[0] != "Value(ms)":
            out.append((float(parts[1]), float(parts[0])))
    return out
