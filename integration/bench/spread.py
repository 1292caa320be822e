"""Repetitions into one row: the median of each figure with its min and max, and comparisons
that name a winner only when the ranges do not overlap."""

import statistics

# The figures a row aggregates over its repetitions.
FIGURES = ["rps", "offered_rps", "p50_ms", "p99_ms", "p999_ms", "max_ms", "cpu_us_per_req", "load_cpu_us_per_req",
           "rss_kib", "kib_per_conn", "vcpu_per_1k_rps", "proxy_core_busy", "load_core_busy", "success"]
COUNTS = ["requests", "errors", "transport_errors", "undesigned", "non2xx", "unsent", "ejections"]


def aggregate(reps: list[dict]) -> dict:
    """One row from repetitions of one scenario on one target: for each figure the median as
    `key`, and `key_min` / `key_max`; counts summed; `reps` keeps every repetition."""
    row = {k: v for k, v in reps[0].items() if k not in FIGURES and k not in COUNTS}
    for k in FIGURES:
        vals = [r[k] for r in reps if isinstance(r.get(k), (int, float))]
        if len(vals) == len(reps) and vals:
            row[k] = statistics.median(vals)
            row[k + "_min"], row[k + "_max"] = min(vals), max(vals)
    for k in COUNTS:
        vals = [r[k] for r in reps if isinstance(r.get(k), int)]
        if vals:
            row[k] = sum(vals)
    row["reps"] = [{k: v for k, v in r.items() if k != "latencies_ms"} for r in reps]
    return row


def span(row: dict, key: str) -> tuple[float, float] | None:
    lo, hi = row.get(key + "_min", row.get(key)), row.get(key + "_max", row.get(key))
    return None if lo is None or hi is None else (lo, hi)


def overlap(a: dict, b: dict, key: str) -> bool | None:
    """Whether a's and b's ranges of `key` over their repetitions overlap (None: unknown)."""
    x, y = span(a, key), span(b, key)
    if x is None or y is None:
        return None
    return x[0] <= y[1] and y[0] <= x[1]


def compare(a: dict, b: dict, key: str, unit: str, lower_is_better: bool = True) -> str:
    """A sentence comparing `key` of rows a and b: a winner only if the ranges are disjoint."""
    x, y = span(a, key), span(b, key)
    if x is None or y is None:
        return f"{a['target']} vs {b['target']}: not measured"
    def f(r):  # a share (unit "%") in percent, anything else to 3 significant digits
        return f"{r[0]:.2%}–{r[1]:.2%}" if unit == "%" else f"{r[0]:,.3g}–{r[1]:,.3g} {unit}"

    ranges = f"{a['target']} {f(x)} vs {b['target']} {f(y)}"
    if overlap(a, b, key):
        return f"{ranges}: ranges overlap, no winner"
    a_lower = x[1] < y[0]
    win = a if a_lower == lower_is_better else b
    return f"{ranges}: {win['target']} {'lower' if lower_is_better else 'higher'} " \
           f"(medians {a['target']} ÷ {b['target']} = {a[key] / b[key]:.2f}×)"
