"""Load generators, pinned to the load CPU, with their output parsed into one dict."""

import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from targets import ROOT, pinned

HERE = Path(__file__).resolve().parent


def percentile(sorted_values: list[float], p: float) -> float | None:
    if not sorted_values:
        return None
    k = min(len(sorted_values) - 1, max(0, round(p / 100 * len(sorted_values)) - 1))
    return sorted_values[k]


def wrk(addr: str, cpu: int, seconds: float, conns: int, path: str = "/", churn: bool = False,
        script: str | None = None, scheme: str = "http") -> dict:
    """Closed-loop HTTP/1.1 load. `churn`: `Connection: close` on every request. `script`: a
    request script in this directory (e.g. `mix.lua`, the mix's weighted paths). The report
    function (wrk_report.lua) is appended to whichever script runs."""
    parts = [HERE / "churn.lua"] if churn else []
    parts += [HERE / script] if script else []
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write("\n".join(p.read_text() for p in [*parts, HERE / "wrk_report.lua"]))
        lua = f.name
    argv = pinned(cpu, ["wrk", "-t1", f"-c{conns}", f"-d{max(1, round(seconds))}s", "-s", lua,
                        f"{scheme}://{addr}{path}"])
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30)
    finally:
        Path(lua).unlink(missing_ok=True)
    line = next((l for l in out.stdout.splitlines() if l.startswith("{")), None)
    if line is None:
        raise RuntimeError(f"wrk failed: {out.stdout[-500:]}{out.stderr[-500:]}")
    r = json.loads(line)
    secs = r["duration_us"] / 1e6
    return {
        "requests": r["requests"],
        "rps": r["requests"] / secs,
        "p50_ms": r["p50_us"] / 1e3,
        "p99_ms": r["p99_us"] / 1e3,
        "p999_ms": r["p999_us"] / 1e3,
        "errors": r["errors"],
        "seconds": secs,
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


def _vegeta(urls: list[str], attack_flags: list[str], seconds: float, cpu: int) -> list[list[str]]:
    """Runs one vegeta attack over `urls` (round robin) and returns its results as CSV rows:
    timestamp, code, latency_ns, bytes_out, bytes_in, error, ..."""
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
            subprocess.run(attack, stdout=f, stderr=subprocess.DEVNULL, timeout=seconds + 30, check=False)
        enc = subprocess.run([vb, "encode", "--to", "csv", str(res)], capture_output=True, text=True, timeout=60)
    return [line.split(",") for line in enc.stdout.splitlines()]


def vegeta(targets: list[str], rate: int, seconds: float, cpu: int, keepalive: bool = True) -> list[tuple[float, int]]:
    """Open-loop load at a fixed rate: latency is measured from when each request was due, so
    a stall shows up in the percentiles (no coordinated omission). Returns (latency_ms, code)."""
    flags = [f"-rate={rate}", f"-keepalive={'true' if keepalive else 'false'}", "-timeout=10s", "-workers=16"]
    return [(int(c[2]) / 1e6, int(c[1])) for c in _vegeta(targets, flags, seconds, cpu)]


def vegeta_capacity(addr: str, paths: list[str], cpu: int, seconds: float = 5) -> float:
    """How many of these requests per second vegeta itself can drive (as fast as it can, 32
    workers, straight at `addr`): an open-loop rate above this measures the load generator."""
    rows = _vegeta([addr + p for p in paths], ["-rate=0", "-max-workers=32"], seconds, cpu)
    return len(rows) / seconds


def summarize(samples: list[tuple[float, int]], ok_codes: set[int], seconds: float) -> dict:
    lat = sorted(l for l, _ in samples)
    errors = sum(1 for _, c in samples if c not in ok_codes)
    return {
        "requests": len(samples),
        "rps": len(samples) / seconds,
        "p50_ms": percentile(lat, 50),
        "p99_ms": percentile(lat, 99),
        "p999_ms": percentile(lat, 99.9),
        "errors": errors,
        "seconds": seconds,
    }


def wait(seconds: float):
    time.sleep(seconds)
