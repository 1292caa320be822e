"""Unit tests of the benchmark harness's own logic (no load, no peers): run by
`make bench-quick` before the smoke run.

    python3 -m unittest discover -s integration/bench -p 'test_*.py'
"""

import io
import re
import sys
import tempfile
import unittest
from contextlib import redirect_stdout
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent))

import hist  # noqa: E402
import hotpath  # noqa: E402
import load  # noqa: E402
import mixrun  # noqa: E402
import report  # noqa: E402
import scenarios  # noqa: E402
import spread  # noqa: E402
import validity  # noqa: E402


def mix_row(rps, p99, offered=1000, non2xx_share=0.02, errors=0, seconds=10):
    n = int(rps * seconds)
    return {"requests": n, "rps": rps, "offered_rps": offered, "seconds": seconds, "p50_ms": 1.0, "p99_ms": p99,
            "p999_ms": p99 * 2, "max_ms": p99 * 3, "errors": errors, "transport_errors": errors,
            "non2xx": int(n * non2xx_share), "load_core_busy": 0.5, "latencies_ms": [1.0, p99]}


class IntendedTime(unittest.TestCase):
    def test_a_stall_counts_for_every_request_due_during_it(self):
        # 100 req/s: request n due at n*10 ms. The target stalls 500 ms on request 10; vegeta's
        # workers were all stuck, so requests 11..59 went out late, right after the stall, each
        # answered in 1 ms of its own (what vegeta's latency column says).
        rows = []
        for seq in range(100):
            due = seq * 10_000_000
            sent = max(due, 600_000_000) if 10 < seq < 60 else due
            lat = 500_000_000 if seq == 10 else 1_000_000
            rows.append((1_000_000_000_000 + sent, lat, seq))
        lat = load.intended_latencies(rows, 100)
        self.assertAlmostEqual(lat[0], 1.0)
        self.assertAlmostEqual(lat[10], 500.0)
        # Request 11 was due at 110 ms, answered at 601 ms: 491 ms, not vegeta's 1 ms.
        self.assertAlmostEqual(lat[11], 491.0)
        self.assertGreater(load.percentile(sorted(lat), 99), 400)

    def test_on_time_requests_keep_their_latency(self):
        rows = [(5_000 + seq * 2_000_000, 300_000, seq) for seq in range(50)]
        self.assertTrue(all(abs(x - 0.3) < 1e-9 for x in load.intended_latencies(rows, 500)))


class Validity(unittest.TestCase):
    def test_designed_errors_are_not_a_failure(self):
        self.assertEqual(validity.reasons("mix", mix_row(1000, 5.0), 50), [])

    def test_closed_loop_mix_counts_designed_statuses_as_designed(self):
        # wrk counts every non-2xx in errors; mixcap's 2% are the designed 5xx.
        wrk_row = {"requests": 10000, "rps": 1000, "errors": 205, "transport_errors": 0, "undesigned": 0,
                   "non2xx": 205, "seconds": 10}
        self.assertEqual(validity.reasons("mixcap", wrk_row), [])
        self.assertTrue(validity.reasons("mixcap", {**wrk_row, "transport_errors": 50, "undesigned": 50}))

    def test_overload_signs(self):
        self.assertTrue(any("non-2xx" in r for r in validity.reasons("mix", mix_row(1000, 5, non2xx_share=0.06), 50)))
        self.assertTrue(any("scheduled" in r for r in validity.reasons("mix", mix_row(800, 5), 50)))
        self.assertTrue(any("bound" in r for r in validity.reasons("mix", mix_row(1000, 80), 50)))
        self.assertTrue(any("errors" in r for r in validity.reasons("mix", mix_row(1000, 5, errors=100), 50)))
        churn = {"requests": 1000, "rps": 100, "errors": 5, "transport_errors": 5, "non2xx": 0, "seconds": 10}
        self.assertTrue(validity.reasons("churn", churn))


class Spread(unittest.TestCase):
    def rows(self, a, b):
        return ({"target": "x", **spread.aggregate([{"cpu_us_per_req": v} for v in a])},
                {"target": "y", **spread.aggregate([{"cpu_us_per_req": v} for v in b])})

    def test_overlapping_ranges_name_no_winner(self):
        x, y = self.rows([10, 12, 14], [13, 15, 16])
        self.assertIn("no winner", spread.compare(x, y, "cpu_us_per_req", "µs"))
        self.assertIn("overlap", report.ratio(x, y, "cpu_us_per_req"))

    def test_disjoint_ranges_name_the_lower(self):
        x, y = self.rows([10, 11, 12], [13, 15, 16])
        self.assertIn("x lower", spread.compare(x, y, "cpu_us_per_req", "µs"))
        self.assertIn("x lower", spread.compare(y, x, "cpu_us_per_req", "µs"))

    def test_every_repetition_is_kept(self):
        row = spread.aggregate([{"p99_ms": 3.0, "requests": 5}, {"p99_ms": 1.0, "requests": 6}, {"p99_ms": 2.0,
                                                                                                  "requests": 7}])
        self.assertEqual((row["p99_ms"], row["p99_ms_min"], row["p99_ms_max"], row["requests"]), (2.0, 1.0, 3.0, 18))
        self.assertEqual([r["p99_ms"] for r in row["reps"]], [3.0, 1.0, 2.0])


class DistinctTables(unittest.TestCase):
    def test_two_scenarios_with_the_same_figures_fail_the_run(self):
        same = {"target": "direct", "rps": 15508.0, "p50_ms": 2.302, "p99_ms": 30.803, "cpu_us_per_req": None}
        with self.assertRaises(AssertionError):
            report.check_distinct([{**same, "scenario": "mixcap"}, {**same, "scenario": "mix"}])
        report.check_distinct([{**same, "scenario": "mixcap"}, {**same, "scenario": "mix", "rps": 5755.0}])

    def test_docs_tables_are_all_different(self):
        # The mix table in docs/benchmarks.md was once the mixcap table pasted twice.
        doc = (Path(__file__).resolve().parents[2] / "docs/benchmarks.md").read_text()
        bodies = {}
        for block in re.split(r"\n\s*\n", doc):
            data = tuple(l for l in block.splitlines() if l.startswith("|") and not l.startswith("|---")
                         and re.search(r"\d", l))
            if len(data) >= 2:
                self.assertNotIn(data, bodies, f"docs/benchmarks.md repeats a table:\n{block}")
                bodies[data] = block

    def test_mix_heading_names_its_rate(self):
        row = {"target": "direct", "offered_rps": 1234.0, "rps": 1234.0, "reps": [{}, {}]}
        self.assertIn("open loop at 1,234 req/s", report.table("mix", [row], {}, "r"))
        self.assertNotIn("open loop", report.table("mixcap", [dict(row)], {}, "r"))


class Faults(unittest.TestCase):
    def test_success_counts_only_requests_not_designed_to_fail(self):
        ok = load.Attack(samples=[(1.0, 200)] * 97 + [(1.0, 503)] * 3, due=100, cpu_s=0.01, plain=98, plain_ok=97)
        row = load.summarize([ok], {200, 500, 503}, 1.0)
        self.assertAlmostEqual(row["success"], 97 / 98)

    def test_table_names_a_more_successful_policy_only_without_overlap(self):
        def row(target, success):
            return {"target": target, **spread.aggregate([{"success": v, "p99_ms": 5.0, "rps": 1.0}
                                                          for v in success])}
        text = report.table("faults", [row("ringside-epoll", [0.83, 0.84]), row("ringside-epoll-retry",
                                                                                [0.999, 1.0])], {}, "r")
        self.assertIn("client success", text)
        self.assertIn("ringside-epoll-retry higher", text)


class Histograms(unittest.TestCase):
    def test_round_trip(self):
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "h.hgrm"
            hist.write(path, [float(i) for i in range(1, 1001)])
            pts = hist.read(path)
        self.assertEqual(pts[0], (0.0, 1.0))
        self.assertEqual(pts[-1], (1.0, 1000.0))
        self.assertTrue(any(abs(p - 0.99) < 0.01 and 985 <= v <= 995 for p, v in pts))


class Overload(unittest.TestCase):
    """mixrun with a fake mix: direct cannot hold 3,000 req/s (it completes 1,000), so that
    attempt is INVALID and the rate drops below what direct completed."""

    def test_invalid_then_lowered(self):
        def fake_mix(t, env):
            done = min(env.mix_rate, 1000)
            return mix_row(done, 5.0 if env.mix_rate <= 1000 else 900.0, offered=env.mix_rate)

        saved = scenarios.ALL["mix"]
        scenarios.ALL["mix"] = fake_mix
        try:
            env = SimpleNamespace(mix_rate=3000, reps=2, mix_seconds=10, p99_bound_ms=50.0)
            started = {n: SimpleNamespace(name=n) for n in ("direct", "ringside-epoll", "nginx")}
            results, attempts, out = [], [], io.StringIO()
            with redirect_stdout(out):
                ok = mixrun.run(env, started, lambda r, name: name, results, attempts)
        finally:
            scenarios.ALL["mix"] = saved
        self.assertTrue(ok)
        self.assertIn("attempt 1 at 3,000 req/s: INVALID", out.getvalue())
        self.assertEqual(env.mix_rate, 700)
        self.assertIn("chosen rate 700 req/s", out.getvalue())
        self.assertTrue(all(not r.get("invalid") for r in results))
        self.assertEqual(attempts[0]["rate"], 3000)
        self.assertTrue(attempts[0]["reasons"])
        # Each of the 2 repetitions: direct, two proxies, direct.
        self.assertEqual(len([a for a in attempts if a["attempt"] == 2]), 8)

    def test_never_valid_is_reported_invalid(self):
        saved = scenarios.ALL["mix"]
        scenarios.ALL["mix"] = lambda t, env: mix_row(env.mix_rate, 900.0, offered=env.mix_rate)
        try:
            env = SimpleNamespace(mix_rate=3000, reps=1, mix_seconds=10, p99_bound_ms=50.0)
            results, attempts = [], []
            with redirect_stdout(io.StringIO()):
                ok = mixrun.run(env, {"direct": SimpleNamespace(name="direct")}, lambda r, n: n, results, attempts)
        finally:
            scenarios.ALL["mix"] = saved
        self.assertFalse(ok)
        self.assertEqual(len(attempts), mixrun.MAX_ATTEMPTS)
        self.assertIn("INVALID", report.table("mix", results, {}, "r"))


class HotPath(unittest.TestCase):
    def test_strace_table_parses_calls_by_syscall(self):
        text = """% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 80.82    1.467423        1827       803           epoll_wait
  9.02    0.163712           8     18385      3369 recvfrom
------ ----------- ----------- --------- --------- ----------------
100.00    1.815597          61     19188      3369 total
"""
        self.assertEqual(hotpath.parse_strace(text), {"epoll_wait": 803, "recvfrom": 18385})

    def test_pprof_traces_fold_root_first_with_thread_and_time(self):
        text = """Type: cpu
-----------+-------------------------------------------------------
    thread:  ringside-w0
   10.10ms   leaf
             caller
             main
-----------+-------------------------------------------------------
    thread:  ringside-w0
   20.20ms   leaf
             caller
             main
-----------+-------------------------------------------------------
      500us   other
-----------+-------------------------------------------------------
"""
        self.assertEqual(hotpath.fold_traces(text), "ringside-w0;main;caller;leaf 30300\nother 500\n")


if __name__ == "__main__":
    unittest.main()
