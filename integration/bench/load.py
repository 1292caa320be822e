"""Load generators, pinned to the load CPU, with their output parsed into one dict."""

import csv
import json
import os
import random
import re
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from targets import ROOT, pinned

HERE = Path(__file__).resolve().parent


def percentile(sorted_values: list[float], p: float) -> float | None:
    if not sorted_values:
        return None
    k = min(len(sorted_values) - 1, max(0, round(p / 100 * len(sorted_values)) - 1))
    return sorted_values[k]


def child_cpu(argv: list[str], timeout: float, stdout=None) -> tuple[str, str, float]:
    """Runs a load generator and returns (stdout, stderr, its own CPU seconds): user + system
    time from wait4's rusage for that one child, so the load side's cost is measured too.
    `stdout`: an open file to write to instead of capturing. Kills it after `timeout` s."""
    with tempfile.TemporaryFile("w+") as o, tempfile.TemporaryFile("w+") as e:
        p = subprocess.Popen(argv, stdout=stdout or o, stderr=e)
        timer = threading.Timer(timeout, p.kill)
        timer.start()
        try:
            _, status, ru = os.wait4(p.pid, 0)
        finally:
            timer.cancel()
        p.returncode = os.waitstatus_to_exitcode(status)
        o.seek(0)
        e.seek(0)
        return o.read(), e.read(), ru.ru_utime + ru.ru_stime


def wrk(addr: str, cpu: int, seconds: float, conns: int, path: str = "/", churn: bool = False,
        script: str | None = None, scheme: str = "http") -> dict:
    """Closed-loop HTTP/1.1 load. `churn`: `Connection: close` on every request. `script`: a
    request script in this directory (e.g. `mix.lua`, the mix's weighted paths). The report
    function (wrk_report.lua) is appended to whichever script runs. `load_cpu_s` is wrk's own
    CPU time over the run."""
    parts = [HERE / "churn.lua"] if churn else []
    parts += [HERE / script] if script else []
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write("\n".join(p.read_text() for p in [*parts, HERE / "wrk_report.lua"]))
        lua = f.name
    argv = pinned(cpu, ["wrk", "-t1", f"-c{conns}", f"-d{max(1, round(seconds))}s", "-s", lua,
                        f"{scheme}://{addr}{path}"])
    try:
        out, err, load_cpu = child_cpu(argv, seconds + 30)
    finally:
        Path(lua).unlink(missing_ok=True)
    line = next((l for l in out.splitlines() if l.startswith("{")), None)
    if line is None:
        raise RuntimeError(f"wrk failed: {out[-500:]}{err[-500:]}")
    r = json.loads(line)
    secs = r["duration_us"] / 1e6
    return {
        "requests": r["requests"],
        "rps": r["requests"] / secs,
        "p50_ms": r["p50_us"] / 1e3,
        "p99_ms": r["p99_us"] / 1e3,
        "p999_ms": r["p999_us"] / 1e3,
        "max_ms": r["max_us"] / 1e3,
        "errors": r["errors"] + r["non2xx"],  # transport errors and non-2xx answers
        "transport_errors": r["errors"],
        "undesigned": r["errors"],
        "non2xx": r["non2xx"],
        "seconds": secs,
        "load_cpu_us_per_req": load_cpu * 1e6 / r["requests"] if r["requests"] else None,
    }


def h2load(addr: str, cpu: int, seconds: float, conns: int = 4, streams: int = 16) -> dict:
    argv = pinned(cpu, ["h2load", "-c", str(conns), "-m", str(streams), "-D", str(max(1, round(seconds))),
                        f"http://{addr}/"])
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30)
    rps, done, errored = None, 0, 0
    for line in out.stdout.splitlines():
        if line.startswith("finished in"):
            rps = float(line.split(",")[1].split()[0])
        if line.startswith("requests:"):
            parts = line.replace(",", "").split()
            done = int(parts[parts.index("succeeded") - 1]) if "succeeded" in parts else 0
            errored = int(parts[parts.index("failed") - 1]) if "failed" in parts else 0
    if rps is None or done == 0:
        raise RuntimeError(f"h2load failed: {out.stdout[-400:]}{out.stderr[-300:]}")
    return {"requests": done, "rps": rps, "p50_ms": None, "p99_ms": None, "p999_ms": None,
            "errors": errored, "seconds": seconds}


def vegeta_bin() -> str | None:
    local = ROOT / "target/tools/vegeta"
    return str(local) if local.exists() else shutil.which("vegeta")


def _vegeta(urls: list[str], attack_flags: list[str], seconds: float, cpu: int) -> tuple[list[list[str]], float]:
    """Runs one vegeta attack over `urls` (round robin) and returns its results as CSV rows
    (timestamp_ns, code, latency_ns, bytes_out, bytes_in, error, body, attack, seq, method,
    url, headers) and vegeta's own CPU seconds."""
    vb = vegeta_bin()
    if vb is None:
        raise RuntimeError("vegeta not installed")
    with tempfile.TemporaryDirectory() as d:
        tfile = Path(d) / "targets"
        tfile.write_text("\n".join(f"GET http://{u}" for u in urls) + "\n")
        res = Path(d) / "results.bin"
        attack = pinned(cpu, [vb, "attack", f"-duration={seconds}s", f"-targets={tfile}", "-max-body=0",
                              *attack_flags])
        with open(res, "wb") as f:
            _, _, cpu_s = child_cpu(attack, seconds + 30, stdout=f)
        enc = subprocess.run([vb, "encode", "--to", "csv", str(res)], capture_output=True, text=True, timeout=120)
    return list(csv.reader(enc.stdout.splitlines())), cpu_s


@dataclass
class Attack:
    """One open-loop vegeta attack's outcome. `samples`: (latency_ms, status) per request sent,
    latency counted from the request's intended send time (status 0: a transport error);
    `due`: requests the schedule called for; `cpu_s`: vegeta's own CPU time."""
    samples: list[tuple[float, int]]
    due: int
    cpu_s: float
    plain: int = 0  # requests not designed to fail (paths other than /status/...)
    plain_ok: int = 0  # of those, answered 2xx
    error_kinds: dict = None  # transport error message (addresses and ports blanked) -> count


def intended_latencies(rows: list[tuple[int, int, int]], rate: float) -> list[float]:
    """Latency from each request's intended send time, in ms, for rows of (timestamp_ns,
    latency_ns, seq) from one constant-rate vegeta attack.

    vegeta's constant pacer schedules request `seq` at start + seq/rate, but stamps a result
    with the time a worker actually sent it, so when the sender falls behind (a stalled
    target holding every worker, or a busy load core) its own latency hides the wait:
    coordinated omission. The start is recovered as the earliest ts - seq/rate (no request is
    sent before it is due) and each latency becomes completion − intended time."""
    if not rows:
        return []
    step = 1e9 / rate
    start = min(ts - seq * step for ts, _, seq in rows)
    return [(ts + lat - (start + seq * step)) / 1e6 for ts, lat, seq in rows]


def vegeta(targets: list[str], rate: int, seconds: float, cpu: int, keepalive: bool = True) -> Attack:
    """Open-loop load at a fixed rate, latency measured from when each request was due (no
    coordinated omission; see intended_latencies)."""
    flags = [f"-rate={rate}", f"-keepalive={'true' if keepalive else 'false'}", "-timeout=10s", "-workers=16"]
    rows, cpu_s = _vegeta(targets, flags, seconds, cpu)
    parsed = [(int(c[0]), int(c[2]), int(c[8]), int(c[1])) for c in rows if len(c) > 8]
    lat = intended_latencies([(ts, l, seq) for ts, l, seq, _ in parsed], rate)
    plain = [c for c in rows if len(c) > 10 and "/status/" not in c[10]]
    kinds = {}
    for c in rows:
        if len(c) > 5 and c[1] == "0":
            k = re.sub(r"\d+\.\d+\.\d+\.\d+:\d+", "ADDR", c[5])[:120]
            kinds[k] = kinds.get(k, 0) + 1
    return Attack(samples=list(zip(lat, (code for *_, code in parsed))), due=int(rate * seconds), cpu_s=cpu_s,
                  plain=len(plain), plain_ok=sum(1 for c in plain if c[1].startswith("2")), error_kinds=kinds)


def vegeta_capacity(addr: str, paths: list[str], cpu: int, seconds: float = 5) -> float:
    """How many of these requests per second vegeta drives at `addr` as fast as it can (32
    workers, keep-alive) on the load core: with `addr` the origin itself, this is direct's
    capacity for the mix, what the load side and the origin can sustain with no proxy."""
    rows, _ = _vegeta([addr + p for p in paths], ["-rate=0", "-max-workers=32"], seconds, cpu)
    return len(rows) / seconds


def shuffled(paths: list[str], seed: int = 17) -> list[str]:
    """The mix's paths in a fixed pseudo-random order: vegeta walks its targets round robin,
    and the weighted list in order would send the 1 MiB requests back to back."""
    out = list(paths)
    random.Random(seed).shuffle(out)
    return out


def summarize(attacks: list[Attack], ok_codes: set[int], seconds: float) -> dict:
    """One result row from open-loop attacks run side by side: rates, exact percentiles of
    the intended-time latencies, and the counts the validity rules need. `errors`: answers
    outside `ok_codes` or transport failures; `non2xx`: every answer that is not 2xx
    (designed 5xx included); `unsent`: requests due that the generator never sent."""
    samples = [s for a in attacks for s in a.samples]
    lat = sorted(l for l, _ in samples)
    due = sum(a.due for a in attacks)
    return {
        "requests": len(samples),
        "offered_rps": due / seconds,
        "rps": len(samples) / seconds,
        "p50_ms": percentile(lat, 50),
        "p99_ms": percentile(lat, 99),
        "p999_ms": percentile(lat, 99.9),
        "max_ms": lat[-1] if lat else None,
        "errors": sum(1 for _, c in samples if c not in ok_codes),
        "undesigned": sum(1 for _, c in samples if c not in ok_codes),
        "transport_errors": sum(1 for _, c in samples if c == 0),
        "non2xx": sum(1 for _, c in samples if not 200 <= c < 300),
        "unsent": max(0, due - len(samples)),
        # Client success: the share of requests not designed to fail that got a 2xx answer.
        "success": sum(a.plain_ok for a in attacks) / max(1, sum(a.plain for a in attacks)),
        # The most frequent transport errors, to tell a refused connect from a timeout.
        "error_kinds": dict(sorted(((k, v) for a in attacks for k, v in (a.error_kinds or {}).items()),
                                   key=lambda kv: -kv[1])[:3]),
        "seconds": seconds,
        "load_cpu_us_per_req": sum(a.cpu_s for a in attacks) * 1e6 / len(samples) if samples else None,
        "latencies_ms": lat,
    }


def wait(seconds: float):
    time.sleep(seconds)
