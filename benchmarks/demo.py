"""Demo shop benchmark: how many flows per second the in-process shop sustains, and how its
latencies hold up, at several requested rates.

    . .venv/bin/activate
    python benchmarks/demo.py                        # rates 20, 50, 100, 200; 3 runs of 20 s
    python benchmarks/demo.py --rates 50 --runs 5 --seconds 30 --json

Each run is `tracekit demo --headless --scenario healthy` on a fresh store (its own collector
process, the in-process broker). Figures per rate, medians over the runs: flows started per
second, the share that succeeded, spans stored per second, and the p50/p95 end-to-end latency
of the synchronous workflows (the load generator's root span), from the store. A shop that
keeps up shows the requested rate and flat latencies; one that does not shows latencies that
grow with the rate (the process is out of CPU).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import tracekit

LATENCY = """
SELECT quantile_cont(duration_ns / 1e6, 0.5) AS p50_ms, quantile_cont(duration_ns / 1e6, 0.95) AS p95_ms
FROM spans WHERE service_name = 'load-generator' AND name = 'shopper order'
"""


def one_run(rate: float, seconds: float) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "demo.duckdb"
        result = subprocess.run(
            [sys.executable, "-m", "tracekit", "demo", "--headless", "--json", "--scenario",
             "healthy", "--duration", f"{seconds}s", "--rate", str(rate), "--db", str(db)],
            capture_output=True, text=True, check=True)
        summary = json.loads(result.stdout)
        with tracekit.open(db) as store:
            latency = store.arrow(LATENCY).to_pylist()[0]
            spans = store.scalar("SELECT count(*) FROM span_rows")
    started = sum(summary["stats"]["started"].values())
    ok = sum(summary["stats"]["succeeded"].values())
    return {"flows_per_s": started / seconds, "ok_share": ok / started if started else 0,
            "spans_per_s": spans / seconds, **latency}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rates", default="20,50,100,200")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = {}
    for rate in (float(r) for r in args.rates.split(",")):
        runs = [one_run(rate, args.seconds) for _ in range(args.runs)]
        results[rate] = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        results[rate]["runs"] = runs
        if not args.json:
            r = results[rate]
            print(f"rate {rate:5.0f}/s: started {r['flows_per_s']:6.1f} flows/s, ok "
                  f"{r['ok_share']:.1%}, {r['spans_per_s']:7.0f} spans/s, order p50 "
                  f"{r['p50_ms']:6.0f} ms, p95 {r['p95_ms']:6.0f} ms", flush=True)
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
