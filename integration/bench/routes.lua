-- The routes scenario's requests: every one names the host the harness chose.
wrk.headers["Host"] = os.getenv("RINGSIDE_BENCH_HOST") or "bench"
