#!/usr/bin/env python3
"""Both runtimes on the production mix at once (`make bench-split`, issue 15).

Starts Ringside with `--runtime split --workers 2` (one io_uring and one epoll worker on the
same SO_REUSEPORT listeners, both pinned to the proxy core), drives the bench's open-loop
production mix (scenarios.mix: sizes from 100 B to 1 MB, 20% of requests on a new connection,
slow clients) through it for `--minutes`, one minute per round, and then prints
`ringside compare --admin ...`: the proxy's own per-runtime figures (its sliding window and
since start, with the verdict). Each round's client-side figures (vegeta) are printed as it
ends, so the two views can be checked against each other.

The rate defaults to mixrun's calibration (35% of what the load core can drive at the origin
directly), so the load side is not the bottleneck.
"""

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench  # noqa: E402
import mixrun  # noqa: E402
import scenarios  # noqa: E402
import targets  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=3.0, help="how long the mix runs (default 3)")
    ap.add_argument("--rate", type=int, default=0, help="open-loop req/s (default: calibrated)")
    args = ap.parse_args()
    env = bench.Env(seconds=10, reps=1, idle_conns=0, mix_seconds=60, cost_seconds=0,
                    proxy_cpu=0, load_cpu=1 if (os.cpu_count() or 1) > 1 else 0)
    scenarios.CPUS = (env.proxy_cpu, env.load_cpu)
    with tempfile.TemporaryDirectory(prefix="ringside-split-") as tmp:
        work = Path(tmp)
        targets.CERTS = targets.make_certs(work / "certs")  # the shared config has TLS listeners
        origin, upstream = bench.start_origin(env, work)
        try:
            try:
                t = targets.start("ringside-split", upstream, 31000, env.proxy_cpu, work / "ringside-split")
            except (targets.Skipped, targets.StartFailed) as e:
                sys.exit(f"ringside-split cannot run here: {e}")
            try:
                run(t, env, upstream, args)
            finally:
                t.stop()
        finally:
            # Whatever failed above, the origin must not outlive the run.
            origin.kill()


def run(t, env, upstream: str, args):
    """The mix for args.minutes, one round a minute, then `ringside compare`."""
    env.mix_rate = args.rate or mixrun.calibrate(env, upstream)
    rounds = max(1, round(args.minutes))
    env.mix_seconds = args.minutes * 60 / rounds
    print(f"== the production mix through ringside --runtime split at {env.mix_rate:,} req/s, "
          f"{rounds} × {env.mix_seconds:.0f} s", flush=True)
    for i in range(1, rounds + 1):
        r = scenarios.mix(t, env)
        print(f"  round {i}: {r['rps']:,.0f}/{r['offered_rps']:,.0f} req/s, p99 {r['p99_ms']:.2f} ms, "
              f"proxy CPU {r.get('cpu_us_per_req', 0):.1f} µs/req (both workers), "
              f"errors {r.get('errors', 0)}", flush=True)
    binary = targets.ROOT / "target/release/ringside"
    out = subprocess.run([str(binary), "compare", "--admin", t.admin], capture_output=True, text=True, timeout=30)
    print(f"== ringside compare --admin {t.admin}")
    print(out.stdout + out.stderr, flush=True)

if __name__ == "__main__":
    main()
