"""When a measurement may be reported as a result: the rules every scenario's control
(`direct`, no proxy) must pass in the same run, and the same rules read as "did not hold the
rate" for a proxy.

A scenario's rows are a result only when direct, measured in the same run, kept the offered
load with the scenario's designed errors and no more: otherwise the load side (generator,
origin, or the machine) was the bottleneck and every row measures it, not the proxies."""

# Share of answers that are designed to be non-2xx (the mix asks for /status/500 and /status/503
# in 2 of every 100 requests).
DESIGNED_NON2XX = {"mix": 0.02, "mixcap": 0.02, "faults": 0.02}
# Slack over the designed share: random picks (mixcap) and a 10 s window vary by about 0.2 pp.
NON2XX_SLACK = 0.01
# Transport errors or undesigned statuses allowed: none in principle; 0.1% absorbs a reset
# at the very end of a window.
UNDESIGNED_MAX = 0.001
# An open-loop generator that sent less than this share of its schedule fell behind.
SENT_MIN = 0.97


def reasons(scenario: str, row: dict, p99_bound_ms: float | None = None) -> list[str]:
    """Why `row` (one measurement) does not show the offered load carried, as sentences;
    empty when it does. `p99_bound_ms`: the bound on p99 (open-loop scenarios)."""
    n = row.get("requests") or 0
    if n == 0:
        return ["no request completed"]
    out = []
    designed = DESIGNED_NON2XX.get(scenario, 0.0)
    if scenario in DESIGNED_NON2XX:
        # `undesigned`: transport errors, plus (vegeta, which sees each status) statuses outside
        # the designed ones; wrk counts every non-2xx alike, checked by the share below.
        undesigned = row.get("undesigned", row.get("transport_errors", 0))
    else:
        undesigned = max(row.get("transport_errors", 0), row.get("errors", 0))
    if undesigned / n > UNDESIGNED_MAX:
        out.append(f"{undesigned / n:.2%} errors outside the designed ones (allowed {UNDESIGNED_MAX:.1%})")
    non2xx = row.get("non2xx")
    if non2xx is not None and non2xx / n > designed + NON2XX_SLACK:
        out.append(f"{non2xx / n:.2%} non-2xx answers (designed {designed:.0%} + {NON2XX_SLACK:.0%} slack)")
    due = row.get("offered_rps")
    if due:
        sent = (row["requests"] + 0.0) / (due * row["seconds"])
        if sent < SENT_MIN:
            out.append(f"only {sent:.1%} of the scheduled requests completed (needs {SENT_MIN:.0%}): "
                       f"{row['rps']:,.0f} of {due:,.0f} req/s")
    if p99_bound_ms is not None and row.get("p99_ms") is not None and row["p99_ms"] > p99_bound_ms:
        out.append(f"p99 {row['p99_ms']:,.1f} ms above the {p99_bound_ms:g} ms bound")
    return out
