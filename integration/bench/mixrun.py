"""The open-loop production mix, run so that its rows can be trusted.

1. Calibrate: direct's capacity for the mix (vegeta as fast as it goes at the origin, on the
   load core) is what the load side can sustain with no proxy; the rate starts at
   RATE_SHARE of it, so every target is compared at a load the load side carries.
2. Every repetition measures direct before and after the proxies (their order rotates
   between repetitions). If either direct measurement breaks a rule of validity.py, the
   attempt is INVALID: reported with the reason, never as a result; the rate is lowered
   below what direct completed and all repetitions start again, up to MAX_ATTEMPTS.
"""

import load
import scenarios
import spread
import validity

RATE_SHARE = 0.35
MAX_ATTEMPTS = 4
LOWER = 0.7


def calibrate(env, upstream: str) -> int:
    """The starting open-loop rate: RATE_SHARE of direct's closed-loop capacity for the mix."""
    cap = load.vegeta_capacity(upstream, load.shuffled(scenarios.MIX), env.load_cpu)
    rate = int(RATE_SHARE * cap)
    print(f"  direct's capacity for the mix (vegeta flat out at the origin): {cap:,.0f} req/s; "
          f"start at {RATE_SHARE:.0%}: {rate:,} req/s", flush=True)
    return rate


def one(s: str, t, env, attempt: int, rep: int, slot: str, save) -> dict:
    r = scenarios.ALL[s](t, env)
    r.update(target=t.name, scenario=s, attempt=attempt, rep=rep, slot=slot, rate=env.mix_rate)
    r["reasons"] = validity.reasons(s, r, env.p99_bound_ms)
    r["histogram"] = save(r, f"reps/{s}-{t.name}-a{attempt}-r{rep}{slot}")
    print(f"  {s} a{attempt} r{rep} {t.name + slot:<24} {r['rps']:,.0f}/{r['offered_rps']:,.0f} req/s "
          f"p99 {r['p99_ms']:,.2f} ms max {r['max_ms']:,.1f} ms"
          + (f" cpu {r['cpu_us_per_req']:.1f} µs/req" if r.get("cpu_us_per_req") else "")
          + f" load core {r['load_core_busy']:.0%}"
          + (f"  [{'; '.join(r['reasons'])}]" if r["reasons"] else "")
          + (f" errors: {r['error_kinds']}" if r.get("error_kinds") else ""), flush=True)
    return r


def run(env, started: dict, save, results: list, attempts_log: list, s: str = "mix"):
    """Runs scenario `s` (mix) over the started targets at env.mix_rate, retrying lower
    while direct is invalid; appends one aggregated row per target to `results` (flagged
    `invalid` if no attempt was valid) and every attempt's measurements to `attempts_log`."""
    proxies = [n for n in started if n != "direct"]
    direct = started.get("direct")
    if direct is None:
        print("  mix needs the direct control: add direct to --targets", flush=True)
    per = {}
    for attempt in range(1, MAX_ATTEMPTS + 1):
        print(f"== {s} attempt {attempt}: {env.mix_rate:,} req/s offered, {env.reps}× {env.mix_seconds:g}s",
              flush=True)
        per, bad = {n: [] for n in started}, None
        for rep in range(1, env.reps + 1):
            k = (rep - 1) % max(1, len(proxies))
            order = proxies[k:] + proxies[:k]
            slots = ([("direct", "-open")] if direct else []) + [(n, "") for n in order] + \
                    ([("direct", "-close")] if direct else [])
            for name, slot in slots:
                r = one(s, started[name], env, attempt, rep, slot, save)
                attempts_log.append(r)
                per[name].append(r)
                if name == "direct" and r["reasons"]:
                    bad = r
                    break
            if bad:
                break
        if not bad:
            print(f"  {s}: chosen rate {env.mix_rate:,} req/s (attempt {attempt}, direct valid in every repetition)",
                  flush=True)
            break
        why = "; ".join(bad["reasons"])
        print(f"  {s} attempt {attempt} at {env.mix_rate:,} req/s: INVALID ({why})", flush=True)
        if attempt < MAX_ATTEMPTS:
            env.mix_rate = max(1, int(LOWER * min(env.mix_rate, bad["rps"])))
            print(f"  lowering the rate to {env.mix_rate:,} req/s and starting again", flush=True)
    for name, reps in per.items():
        if not reps:
            continue
        row = spread.aggregate(reps)
        row.update(scenario=s, target=name, rate=env.mix_rate)
        # Every repetition's latencies merged: the distribution charted per target.
        row["histogram"] = save({"latencies_ms": sorted(x for r in reps for x in r["latencies_ms"])}, f"{s}-{name}")
        row["reasons"] = sorted({x for r in reps for x in r["reasons"]})
        if bad:
            row["invalid"] = f"attempt {bad['attempt']} at {bad['rate']:,} req/s: {'; '.join(bad['reasons'])}"
        results.append(row)
    return not bad
