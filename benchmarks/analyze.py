"""Analyzer benchmark: stitch, classify and compute critical paths for ~1M spans.

    . .venv/bin/activate
    python benchmarks/analyze.py                         # makes a demo store, 1M spans, 3 runs
    python benchmarks/analyze.py --store shop.duckdb --spans 1000000 --runs 3 --json
    python benchmarks/analyze.py --from-store          # read from a 1M-span store each run

The spans come from a real demo run (`tracekit demo --headless`, all fault scenarios, made
once if --store is not given), read from the store by the analyzer's own query, then
replicated with fresh trace, span, message and order ids until there are --spans of them: the
same shapes, as many independent flows as needed. Timed per run: `analyze_spans` (stitching,
skew, self times, styles, shapes, types, incomplete flows) and `critical_paths` for every
flow, with the process's peak RSS. Reading the demo store is timed once.

With --from-store the copies are made in DuckDB instead (benchmarks/stores.py, cached in
--cache), and each run also reads them back with the analyzer's query, as `tracekit flows`
does: read + analyze + critical paths is what a user waits for.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

import tracekit
from tracekit import procfs
from tracekit.analysis.critical_paths import critical_paths
from tracekit.analysis.run import analyze_spans
from tracekit.analysis.spans import load

from stores import demo_store
from stores import replicate as replicate_store


def replicate(base: pd.DataFrame, total: int) -> pd.DataFrame:
    """Copies of `base` with fresh trace, span, message and order ids (as a real store has:
    every span id distinct), until there are `total` spans."""
    copies = -(-total // len(base))
    parts = []
    for n in range(copies):
        tag = f"{n:06x}"
        part = base.copy()
        for column in ("trace_id", "span_id", "parent_span_id"):
            part[column] = (tag + part[column].str.slice(6)).where(part[column].notna(), None)
        for column in ("message_id", "business_key"):
            part[column] = np.where(part[column].notna(), tag + "-" + part[column].astype(str), None)
        part["links"] = [[_retag(link, tag) for link in links] for links in part["links"]]
        parts.append(part)
    return pd.concat(parts, ignore_index=True).head(total)


def _retag(link: str, tag: str) -> str:
    trace, _, span = link.partition(":")
    return f"{tag}{trace[6:]}:{tag}{span[6:]}"


def reset_peak() -> None:
    """Start measuring peak RSS afresh (Linux: clear VmHWM), so that the figure is the analysis's
    peak with its input resident, not the peak of building the input."""
    gc.collect()
    procfs.reset_peak()


def peak_mib() -> float:
    try:
        return procfs.status_kib("self", "VmHWM") / 1024
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mib() -> float:
    try:
        return procfs.status_kib("self", "VmRSS") / 1024
    except OSError:
        return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", type=Path, help="a demo store (default: make one, ~1 min)")
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--from-store", action="store_true",
                        help="copy the spans in DuckDB and time reading them back in each run")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "tkbench",
                        help="where --from-store keeps its store between runs")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.from_store:
        return from_store(args)
    with tempfile.TemporaryDirectory() as folder:
        db = args.store or demo_store(Path(folder))
        with tracekit.open(db) as store:
            started = time.perf_counter()
            base = load(store)
            load_s = time.perf_counter() - started
        demo_spans = len(base)
        spans = replicate(base, args.spans)
        del base
        input_mib = spans.memory_usage(deep=True).sum() / 2**20
        runs = []
        for _ in range(args.runs):
            reset_peak()
            before = rss_mib()
            started = time.perf_counter()
            analysis = analyze_spans(spans)   # works on its own copy of the columns it changes
            analyzed = time.perf_counter()
            paths = critical_paths(analysis)
            done = time.perf_counter()
            runs.append({"analyze_s": analyzed - started, "critical_paths_s": done - analyzed,
                         "total_s": done - started, "flows": len(analysis.flows),
                         "sections": len(paths), "rss_before_mib": before,
                         "peak_rss_mib": peak_mib()})
            del analysis, paths
    result = {"spans": len(spans), "demo_spans": demo_spans, "demo_load_s": load_s,
              "median_total_s": statistics.median(r["total_s"] for r in runs),
              "median_analyze_s": statistics.median(r["analyze_s"] for r in runs),
              "median_critical_paths_s": statistics.median(r["critical_paths_s"] for r in runs),
              "input_mib": input_mib,
              "median_peak_rss_mib": statistics.median(r["peak_rss_mib"] for r in runs),
              "runs": runs}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"read {demo_spans:,} spans from the demo store in {load_s:.2f} s")
        print(f"{result['spans']:,} spans, {runs[0]['flows']:,} flows: analyze "
              f"{result['median_analyze_s']:.1f} s + critical paths "
              f"{result['median_critical_paths_s']:.1f} s = {result['median_total_s']:.1f} s "
              f"(median of {len(runs)}); peak RSS {result['median_peak_rss_mib']:,.0f} MiB "
              f"(the process, with its {input_mib:,.0f} MiB input DataFrame resident)")


def from_store(args: argparse.Namespace) -> None:
    args.cache.mkdir(parents=True, exist_ok=True)
    db = args.cache / f"analyze-{args.spans}.duckdb"
    if not db.exists():
        replicate_store(args.store or demo_store(args.cache), db, args.spans, logs=False)
    runs = []
    for _ in range(args.runs):
        reset_peak()
        started = time.perf_counter()
        with tracekit.open(db) as store:
            spans = load(store)
        read = time.perf_counter()
        analysis = analyze_spans(spans)
        analyzed = time.perf_counter()
        paths = critical_paths(analysis)
        done = time.perf_counter()
        runs.append({"spans": len(spans), "flows": len(analysis.flows), "read_s": read - started,
                     "analyze_s": analyzed - read, "critical_paths_s": done - analyzed,
                     "total_s": done - started, "peak_rss_mib": peak_mib()})
        del spans, analysis, paths
    median = {k: statistics.median(r[k] for r in runs)
              for k in ("read_s", "analyze_s", "critical_paths_s", "total_s", "peak_rss_mib")}
    if args.json:
        print(json.dumps({"store": str(db), **{f"median_{k}": v for k, v in median.items()},
                          "runs": runs}, indent=2))
        return
    print(f"{runs[0]['spans']:,} spans, {runs[0]['flows']:,} flows from {db}: read "
          f"{median['read_s']:.1f} s + analyze {median['analyze_s']:.1f} s + critical paths "
          f"{median['critical_paths_s']:.1f} s = {median['total_s']:.1f} s (median of "
          f"{len(runs)}); peak RSS {median['peak_rss_mib']:,.0f} MiB")


if __name__ == "__main__":
    main()
