"""Query benchmark: ten typical SQL queries on stores of 1M and 10M spans.

    . .venv/bin/activate
    python benchmarks/queries.py                        # 1M and 10M spans, 5 runs per query
    python benchmarks/queries.py --spans 1000000 --runs 5 --json
    python benchmarks/queries.py --store shop.duckdb --cache /tmp/tracekit-bench

The stores are made once (cached in --cache) from a demo store (`tracekit demo --headless`,
made if --store is not given): its span and log rows copied with fresh trace, span, message
and order ids, each copy shifted in time after the previous one, so a 10M-span store holds
weeks of the demo's traffic with the demo's shapes, errors and logs. Written through
tracekit's writable store (the real schema), checkpointed, then read with `tracekit.open`,
the way `tracekit sql` reads. Each query runs --runs times; the first run and the median are
printed. The analyzer's tables (flows, critical_path, ...) are not queried here: they are
computed in memory (see benchmarks/analyze.py); these are the queries people write on spans
and logs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import tracekit  # noqa: E402
from stores import demo_store, replicate  # noqa: E402

QUERIES = {
    "trace by id": """
        SELECT start_time, service_name, name, duration_ns / 1e6 AS ms, status_code
        FROM spans WHERE trace_id = $trace ORDER BY start_time""",
    "slowest runs of a workflow": """
        SELECT trace_id, start_time, duration_ns / 1e6 AS ms, status_code
        FROM spans WHERE parent_span_id IS NULL AND name = $root
        ORDER BY duration_ns DESC LIMIT 20""",
    "error rate per service per minute": """
        SELECT service_name, time_bucket(INTERVAL 1 MINUTE, start_time) AS minute,
               count(*) AS spans, avg((status_code = 'ERROR')::INT) AS error_rate
        FROM spans GROUP BY ALL ORDER BY minute DESC, error_rate DESC LIMIT 100""",
    "p95 per operation": """
        SELECT service_name, name, count(*) AS calls,
               quantile_cont(duration_ns, 0.95) / 1e6 AS p95_ms
        FROM spans GROUP BY ALL ORDER BY p95_ms DESC LIMIT 20""",
    # Written as one join of `spans` with itself: the same join between two subqueries (or
    # CTEs) over the view made DuckDB 2.0 read every consumer's whole attribute map instead of
    # the one field (4.5 s instead of 0.15 s at 1M spans).
    "broker wait percentiles": """
        SELECT c.attributes['messaging.destination.name']::VARCHAR AS destination,
               count(*) AS messages,
               quantile_cont(greatest(epoch_ns(c.start_time) - epoch_ns(p.end_time), 0) / 1e6,
                             [0.5, 0.95, 0.99]) AS wait_ms
        FROM spans c JOIN spans p
          ON p.attributes['messaging.message.id']::VARCHAR = c.attributes['messaging.message.id']::VARCHAR
        WHERE p.kind = 'PRODUCER' AND c.kind = 'CONSUMER' GROUP BY ALL ORDER BY messages DESC""",
    "error logs with their spans": """
        SELECT l."timestamp", l.service_name, l.body::VARCHAR AS message, s.name AS span
        FROM logs l JOIN spans s USING (trace_id, span_id)
        WHERE l.severity_number >= 17 ORDER BY l."timestamp" DESC LIMIT 50""",
    "HTTP 5xx by route": """
        SELECT attributes['http.route']::VARCHAR AS route, count(*) AS n
        FROM spans WHERE attributes['http.response.status_code'] >= 500
        GROUP BY 1 ORDER BY n DESC""",
    "exceptions by type": """
        SELECT e.attributes['exception.type']::VARCHAR AS type, count(*) AS n
        FROM (SELECT unnest(events) AS e FROM spans WHERE len(events) > 0)
        WHERE e.name = 'exception' GROUP BY 1 ORDER BY n DESC""",
    # A call between services is a CLIENT span with a SERVER child in another service;
    # saying so lets DuckDB join a quarter of the spans with a quarter (3.0 s → 0.75 s at 10M).
    "calls between services": """
        SELECT p.service_name AS caller, c.service_name AS callee, count(*) AS calls,
               avg((c.status_code = 'ERROR')::INT) AS error_rate
        FROM spans c JOIN spans p ON p.trace_id = c.trace_id AND p.span_id = c.parent_span_id
        WHERE c.kind = 'SERVER' AND p.kind = 'CLIENT' AND p.service_name <> c.service_name
        GROUP BY ALL ORDER BY calls DESC""",
    "spans of one order": """
        SELECT trace_id, service_name, name, start_time
        FROM spans WHERE attributes['order.id']::VARCHAR = $order ORDER BY start_time""",
}

def cached_store(source: Path, cache: Path, spans: int) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / f"queries-{spans}.duckdb"
    if not target.exists():
        replicate(source, target, spans)
    return target


def parameters(store) -> dict:
    """A trace, a workflow's root operation and an order id to look up (from the last copy)."""
    row = store.arrow("""
        SELECT (SELECT trace_id FROM span_rows WHERE parent_span_id IS NULL
                ORDER BY start_time DESC LIMIT 1) AS trace,
               (SELECT name FROM span_rows WHERE parent_span_id IS NULL
                GROUP BY name ORDER BY count(*) DESC LIMIT 1) AS root,
               (SELECT attributes['order.id']::VARCHAR FROM span_rows
                WHERE attributes['order.id'] IS NOT NULL ORDER BY start_time DESC LIMIT 1) AS "order"
    """).to_pylist()[0]
    return dict(row)


def measure(db: Path, runs: int) -> dict:
    results = {}
    with tracekit.open(db) as store:
        counts = store.arrow("SELECT (SELECT count(*) FROM span_rows) AS spans, "
                             "(SELECT count(*) FROM log_rows) AS logs").to_pylist()[0]
        spans, logs = counts["spans"], counts["logs"]
        params = parameters(store)
        for name, sql in QUERIES.items():
            wanted = {k: v for k, v in params.items() if f"${k}" in sql}
            times, rows = [], 0
            for _ in range(runs):
                started = time.perf_counter()
                rows = store.arrow(sql, wanted).num_rows
                times.append(time.perf_counter() - started)
            results[name] = {"first_s": times[0], "median_s": statistics.median(times),
                             "rows": rows}
    size = db.stat().st_size
    return {"spans": spans, "logs": logs, "file_bytes": size, "bytes_per_span": size / spans,
            "queries": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", type=Path, help="a demo store (default: make one, ~1 min)")
    parser.add_argument("--spans", default="1000000,10000000",
                        help="comma-separated store sizes (default 1000000,10000000)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/tracekit-bench"),
                        help="where the stores are kept between runs")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    source = args.store or demo_store(args.cache)
    report = {}
    for spans in (int(s) for s in args.spans.split(",")):
        report[spans] = measure(cached_store(source, args.cache, spans), args.runs)
    if args.json:
        print(json.dumps(report, indent=2))
        return
    sizes = list(report)
    print(f"{'query':<36}" + "".join(f"{f'{n:,} spans':>26}" for n in sizes))
    print(f"{'':<36}" + "".join(f"{'median (first) s':>26}" for _ in sizes))
    for name in QUERIES:
        cells = "".join(f"{r['queries'][name]['median_s']:>17.3f} ({r['queries'][name]['first_s']:.3f})"
                        for r in report.values())
        print(f"{name:<36}{cells}")
    print(f"{'store: bytes per span on disk':<36}"
          + "".join(f"{r['bytes_per_span']:>26.0f}" for r in report.values()))


if __name__ == "__main__":
    main()
