"""Scale benchmark: what each command costs on a large store whose analysis is kept in it.

    . .venv/bin/activate
    python benchmarks/scale.py --spans 10000000              # build (cached), analyze, measure
    python benchmarks/scale.py --spans 100000000 --runs 3 --json

A demo run (60 s at 40 flows/s, every fault scenario's shapes) is copied with fresh ids
(benchmarks/stores.py) until the store holds --spans spans, one copy every --every (20 min by
default: the same density of traffic whatever the size, so a larger store is more days of
it), each copy in batches of its own as if ingested in turn. Then, each timed as a separate
process with its peak RSS (from wait4):
- `tracekit analyze` from scratch (once per store; its rate and peak memory), and the bytes
  per span the analysis tables add to the file;
- `tracekit report --since 30m`, `flows --status failed`, `flow ID`, `causes --since 10m`
  (--runs each; the newest data, as during an incident);
- the documented analysis queries (docs/guides/flows.md), in one process, each --runs times.
Medians of the runs with [min-max].
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import tracekit

from stores import demo_store, replicate

TRACEKIT = [sys.executable, "-m", "tracekit"]
TIME = shutil.which("time", path="/usr/bin:/bin") or "/usr/bin/time"   # Debian package `time`

# The analysis queries docs/guides/flows.md documents (each ≤ 1 s on 10M spans is the target).
QUERIES = {
    "critical path of choreographed flows (README)": """
        SELECT c.service_name, c.name, c.segment,
               round(sum(c.duration_ms) / count(DISTINCT c.flow_id), 1) AS ms_per_flow
        FROM critical_path c JOIN flows f USING (flow_id)
        WHERE f.style = 'choreographed' GROUP BY ALL ORDER BY ms_per_flow DESC LIMIT 5""",
    "broker waits into each consumer (README)": """
        SELECT dst_service, dst_name, destination, count(*) AS messages,
               quantile_cont(wait_ms, 0.95) AS p95_wait_ms
        FROM flow_edges WHERE kind <> 'call' AND wait_ms IS NOT NULL GROUP BY ALL
        ORDER BY p95_wait_ms DESC""",
    "flow types (README)": """
        SELECT name, style, flows, round(error_rate, 3) AS error_rate, round(p95_ms) AS p95_ms
        FROM flow_types ORDER BY flows DESC""",
    "failed flows, newest": "SELECT flow_id, type_name, duration_ms FROM flows WHERE status = 'failed' "
                            "ORDER BY start_time DESC LIMIT 20",
    "service graph": "SELECT * FROM service_edges ORDER BY calls DESC",
    "one flow's spans": "SELECT * FROM flow_spans WHERE flow_id = $flow AND start_time >= $start",
}


def timed(args: list[str]) -> tuple[float, float, str]:
    """(seconds, peak RSS MiB, stdout) of a tracekit command in a child process. The peak is
    GNU time's (`/usr/bin/time -f %M`): the RSS of a child forked from this process would count
    this process's pages until its exec."""
    started = time.perf_counter()
    result = subprocess.run([TIME, "-f", "%M", *TRACEKIT, *args], capture_output=True)
    elapsed = time.perf_counter() - started
    err = result.stderr.decode()
    if result.returncode != 0:
        raise RuntimeError(f"tracekit {' '.join(args)} failed: {err[-2000:]}")
    return elapsed, int(err.strip().splitlines()[-1]) / 1024, result.stdout.decode()


def spread(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def build(cache: Path, spans: int, every_s: float) -> Path:
    target = cache / f"scale-{spans}-{int(every_s)}s.duckdb"
    if not target.exists():
        base = demo_store(cache)
        replicate(base, target, spans, every_s=every_s, own_batches=True)
    return target


def analyze(source: Path, db: Path) -> dict:
    """`tracekit analyze` of a copy of `source` (unanalyzed) into `db`, timed."""
    shutil.copy(source, db)
    with tracekit.open(db) as store:
        spans = store.scalar("SELECT count(*) FROM span_rows")
    bytes_before = db.stat().st_size
    seconds, rss, text = timed(["analyze", "--db", str(db), "--rebuild", "--json"])
    summary = json.loads(text)
    if summary["new_spans"] != spans:     # a rate over spans it skipped would be no rate
        raise RuntimeError(f"analyze read {summary['new_spans']:,} of the {spans:,} spans")
    out = {"seconds": seconds, "peak_rss_mib": rss, "spans_per_s": spans / seconds,
           "flows": summary["flows_written"], "chunks": summary["chunks"],
           "bytes_per_span": (db.stat().st_size - bytes_before) / spans}
    print(f"  analyze: {seconds:.1f} s, {spans / seconds:,.0f} spans/s, {rss:,.0f} MiB", file=sys.stderr)
    return out


def measure(db: Path, runs: int) -> dict:
    out: dict = {}
    with tracekit.open(db) as store:
        out["spans"] = store.scalar("SELECT count(*) FROM span_rows")
    with tracekit.open(db) as store:
        out["flows"] = store.scalar("SELECT count(*) FROM flow_rows")
        # The newest flow of each kind: one without a failing span reads only the tables; a
        # failed one has its spans analyzed again for its failure origin.
        newest = {failed: store.arrow(
            "SELECT flow_id, spans FROM flow_rows WHERE (errors > 0) = $failed "
            "ORDER BY start_time DESC, spans DESC LIMIT 1", {"failed": failed}).to_pylist()[0]
            for failed in (False, True)}
    commands = {
        "report --since 30m": ["report", "--db", str(db), "--since", "30m", "--format", "json",
                               "-o", os.devnull],
        "flows --status failed": ["flows", "--db", str(db), "--status", "failed", "--json"],
        **{f"flow ID ({'failed' if failed else 'healthy'}, {flow['spans']} spans)":
           ["flow", "--db", str(db), flow["flow_id"], "--json"] for failed, flow in newest.items()},
        "causes --since 10m": ["causes", "--db", str(db), "--since", "10m", "--json"],
    }
    out["commands"] = {}
    for name, command in commands.items():
        samples = [timed(command)[:2] for _ in range(runs)]
        out["commands"][name] = {"seconds": spread([s for s, _ in samples]),
                                 "peak_rss_mib": spread([r for _, r in samples])}
        print(f"  {name}: {out['commands'][name]['seconds']['median']:.2f} s", file=sys.stderr)
    out["queries"] = {}
    with tracekit.open(db) as store:
        flow = store.arrow("SELECT flow_id, start_time FROM flow_rows ORDER BY start_time DESC LIMIT 1").to_pylist()[0]
        for name, query in QUERIES.items():
            params = {"flow": flow["flow_id"], "start": flow["start_time"]} if "$flow" in query else None
            samples = []
            for _ in range(runs):
                started = time.perf_counter()
                store.arrow(query, params)
                samples.append(time.perf_counter() - started)
            out["queries"][name] = spread(samples)
    return out


def fmt(figure: dict, digits: int = 2) -> str:
    return f"{figure['median']:,.{digits}f} [{figure['min']:,.{digits}f}-{figure['max']:,.{digits}f}]"


def print_table(report: dict) -> None:
    print(f"tracekit scale: {report['spans']:,} spans, {report['flows']:,} flows, "
          f"one demo copy every {report['every_s']:g} s; {report['runs']} runs, median [min-max]")
    a = report.get("analyze")
    if a:
        print(f"\nanalyze --rebuild      {a['seconds']:,.1f} s, {a['spans_per_s']:,.0f} spans/s, "
              f"peak RSS {a['peak_rss_mib']:,.0f} MiB, {a['chunks']} chunks; the analysis tables "
              f"add {a['bytes_per_span']:.0f} B/span to the file")
    print(f"\n{'command':<32}{'seconds':>24}{'peak RSS MiB':>26}")
    for name, c in report["commands"].items():
        print(f"{name:<32}{fmt(c['seconds']):>24}{fmt(c['peak_rss_mib'], 0):>26}")
    print(f"\n{'query':<44}{'seconds':>24}")
    for name, q in report["queries"].items():
        print(f"{name:<44}{fmt(q, 3):>24}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=10_000_000)
    parser.add_argument("--every", type=float, default=1200.0, metavar="SECONDS",
                        help="one copy of the demo run every this many seconds (default 1200)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "tracekit-bench")
    parser.add_argument("--measure-only", action="store_true",
                        help="reuse the store analyzed by an earlier run (no analyze timing)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    source = build(args.cache, args.spans, args.every)
    db = source.with_name(source.stem + "-analyzed.duckdb")
    report = {"spans_asked": args.spans, "every_s": args.every, "runs": args.runs}
    if not (args.measure_only and db.exists()):
        report["analyze"] = analyze(source, db)
    report.update(measure(db, args.runs))
    if args.json:
        print(json.dumps(report, indent=2, default=float))
    else:
        print_table(report)


if __name__ == "__main__":
    main()
