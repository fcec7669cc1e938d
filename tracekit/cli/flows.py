"""Flows and their analysis: `tracekit analyze`, `flows`, `flow`, `compare`, `services`,
`causes` and `metrics`."""

from __future__ import annotations

import argparse
import json
import sys

from tracekit import output
from tracekit.cli.common import db_option, duration, flow_id_of, open_analyzed, progress_bar, timestamp_ns
from tracekit.errors import TracekitError, UsageError
from tracekit.plurals import counted


def add_parsers(commands) -> None:
    analyze = commands.add_parser(
        "analyze", help="bring the store's analysis tables (flows, critical paths, ...) up to date",
        description="Analyze the spans the store's analysis tables do not hold yet (flows, "
        "flow_spans, flow_edges, flow_types, critical_path, service_edges), re-analyzing only the "
        "stored flows they join, in bounded chunks. A running collector does this as it commits; "
        "this is for stores written without one or by an older tracekit. Readers run it by "
        "themselves when they find the tables behind and the file free.")
    db_option(analyze)
    analyze.add_argument("--rebuild", action="store_true",
                         help="forget every analysis result and analyze the whole store again")
    analyze.add_argument("--verify", action="store_true",
                         help="then check the tables against a batch analysis of the whole store "
                              "in memory (about 1.5 GiB per million spans); exit 1 if they differ")
    analyze.add_argument("--json", action="store_true", help="print the summary as JSON")
    analyze.add_argument("--lake", metavar="URI",
                         help="analyze the lake's spans instead of --db, writing the analysis "
                              "tables back to the lake (with --engine spark; docs/guides/lake.md)")
    analyze.add_argument("--engine", choices=("duckdb", "spark"), default="duckdb",
                         help="duckdb (default): in this process, on a store; spark: on Spark, "
                              "on a lake")
    analyze.add_argument("--spark-master", metavar="URL", default="local[*]",
                         help="where the Spark job runs (default local[*]: this machine's cores; "
                              "spark://HOST:7077 for a cluster that reads the lake's warehouse)")
    analyze.add_argument("--spark-task-spans", metavar="N", type=int, default=200_000,
                         help="about how many spans each Spark analysis task holds (default "
                              "200000, ~1 GiB in its Python worker)")
    analyze.set_defaults(run=cmd_analyze)

    flows = commands.add_parser(
        "flows", help="list flows: workflows followed across traces, newest first",
        description="List flows (one run of a workflow, stitched across traces through span "
        "links, message ids and business keys), newest first, with their style "
        "(orchestrated, choreographed, hybrid), status (complete, degraded, failed, "
        "incomplete, running) and type. The same data is the SQL table `flows`.")
    db_option(flows, lake=True)
    flows.add_argument("--type", metavar="T", help="a flow type id or (part of) its name")
    flows.add_argument("--failed", action="store_true", help="only flows that failed")
    flows.add_argument("--status", choices=["complete", "degraded", "failed", "incomplete", "running"])
    flows.add_argument("--limit", type=int, default=40, help="at most this many (default 40)")
    flows.add_argument("--json", action="store_true")
    flows.set_defaults(run=cmd_flows)

    flow = commands.add_parser(
        "flow", help="one flow: its steps, messages, critical path and failure origin",
        description="Show one flow: every step across its traces, the messages between them "
        "with their broker waits, the critical path and, when it failed, the span where the "
        "failure started and its likely cause.")
    db_option(flow, lake=True)
    flow.add_argument("id", help="a flow id (or its first characters), a trace id in the flow, "
                                 "or a business key such as an order id")
    flow.add_argument("--json", action="store_true")
    flow.set_defaults(run=cmd_flow)

    compare = commands.add_parser(
        "compare", help="compare two flows: what A did differently from B (else a typical good flow)",
        description="Compare flow A with flow B, their steps aligned by service and operation "
        "(a loop's or a retry's n-th repeat with the other's n-th): the errors that differ, the "
        "steps only in one, the time of each aligned step (self time first), the critical "
        "paths, and the attributes that differ (ids and times left out). Without B, A is "
        "compared with a typical good flow: complete, of its type (else of its workflow), "
        "started within an hour of it when one was, of about the median duration; the output "
        "says which. Exit codes: 0 compared, 1 no good flow to compare with (name B), 2 an id "
        "that names no flow (or several).")
    db_option(compare, lake=True)
    compare.add_argument("a", metavar="A", help="the flow asked about: a flow id (or its first "
                         "characters), a trace id in it, or a business key")
    compare.add_argument("b", metavar="B", nargs="?", help="the flow to compare it with "
                         "(default: a typical good flow of A's type)")
    compare.add_argument("--json", action="store_true", help="every difference, as JSON")
    compare.add_argument("--format", choices=["text", "markdown"], default="text")
    compare.set_defaults(run=cmd_compare)

    services = commands.add_parser(
        "services", help="the service graph: calls and broker hops with counts, errors, latency",
        description="The service graph: synchronous calls between services and asynchronous "
        "hops through broker nodes (broker:<destination>), with call counts, error rates and "
        "latency percentiles (broker waits on the hops out of a broker). SQL: service_edges.")
    db_option(services, lake=True)
    services.add_argument("--json", action="store_true")
    services.set_defaults(run=cmd_services)

    causes = commands.add_parser(
        "causes", help="rank the likely root causes of a window's failures and slowdowns",
        description="Rank the services and operations that best explain the failures and "
        "slowdowns of the flows started in a window, against a baseline window (by default the "
        "same length just before it).")
    db_option(causes, lake=True)
    causes.add_argument("--since", metavar="TIME", default="5m",
                        help="the window: the last TIME of data, e.g. 90s, 30m, 12h, 1d (default 5m)")
    causes.add_argument("--from", dest="start", metavar="TIMESTAMP", help="window start (UTC)")
    causes.add_argument("--to", dest="end", metavar="TIMESTAMP", help="window end (UTC)")
    causes.add_argument("--baseline-from", metavar="TIMESTAMP")
    causes.add_argument("--baseline-to", metavar="TIMESTAMP")
    causes.add_argument("--json", action="store_true")
    causes.set_defaults(run=cmd_causes)

    metrics = commands.add_parser(
        "metrics", help="Prometheus metrics of the store: span RED, flows, broker waits, service graph",
        description="The metrics a collector serves on GET /metrics (docs/guides/metrics.md), "
        "computed from the store's tables: counts over the window, in the Prometheus text format "
        "or OpenMetrics (with trace ids as exemplars).")
    db_option(metrics, lake=True)
    metrics.add_argument("--since", metavar="DURATION",
                         help="only the last DURATION of data, e.g. 15m, 1h (default: all of it)")
    metrics.add_argument("--naming", choices=("tempo", "otel"), default="tempo",
                         help="span metric names: Tempo's metrics-generator (default) or the "
                              "OpenTelemetry span-metrics connector")
    metrics.add_argument("--openmetrics", action="store_true",
                         help="OpenMetrics text with exemplars instead of the Prometheus text format")
    metrics.set_defaults(run=cmd_metrics)


def cmd_analyze(args: argparse.Namespace) -> int:
    import time

    if args.lake is not None or args.engine == "spark":
        return _analyze_lake(args)

    from tracekit.analysis.ready import bring_up_to_date

    started = time.perf_counter()
    with progress_bar("analyzing") as bar:
        task = bar.add_task("analyzing", total=None)
        result = bring_up_to_date(args.db, rebuild=args.rebuild,
                                  on_progress=lambda done, total: bar.update(
                                      task, completed=done, total=total))
    summary = {"store": str(args.db), "rebuild": args.rebuild, **result.as_dict(),
               "seconds": round(time.perf_counter() - started, 3)}
    if args.verify:
        import tracekit
        from tracekit.analysis.verify import verify

        with tracekit.open(args.db) as store:
            summary["differences"] = verify(store, time.time_ns())
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    elif result.new_spans:
        print(f"analyzed {counted(result.new_spans, 'new span')} ({result.reanalyzed_spans:,} with "
              f"the flows they joined) into {counted(result.flows_written, 'flow')} in "
              f"{summary['seconds']:.1f} s")
    else:
        print(f"{args.db}: the analysis is up to date")
    if args.verify and summary["differences"]:
        raise TracekitError("the analysis tables differ from a batch analysis of the same spans "
                            f"in {', '.join(summary['differences'])}: run `tracekit analyze --rebuild "
                            f"--db {args.db}`, and report it")
    if args.verify and not args.json:
        print("verified: the tables equal a batch analysis of the same spans")
    return 0


def _analyze_lake(args: argparse.Namespace) -> int:
    if args.lake is None or args.engine != "spark":
        raise UsageError("the Spark engine analyzes a lake: tracekit analyze --lake URI --engine spark")
    if args.verify or args.rebuild:
        raise UsageError("--verify and --rebuild are for a store; a lake's analysis is always rebuilt whole")
    from tracekit.lake.location import LakeLocation
    from tracekit.lake.spark_analysis import analyze_lake, spark_session

    location = LakeLocation.parse(args.lake)
    spark = spark_session(args.spark_master)
    try:
        spark.sparkContext.setLogLevel("ERROR")
        result = analyze_lake(spark, location, spans_per_task=args.spark_task_spans)
    finally:
        spark.stop()
    summary = {"lake": location.display(), "engine": "spark", "master": args.spark_master,
               **result.as_dict()}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"analyzed {counted(result.spans, 'span')} of the lake into "
              f"{counted(result.flows, 'flow')} of {counted(result.types, 'type')} in "
              f"{sum(result.seconds.values()):.1f} s on Spark ({args.spark_master})")
    return 0


def cmd_flows(args: argparse.Namespace) -> int:
    from tracekit.analysis.flow_list import newest_flows

    with open_analyzed(args.db, lake=args.lake) as store:
        rows = newest_flows(store, {"type": args.type, "failed": args.failed,
                                    "status": args.status}, args.limit)
    # On a narrow terminal, the columns its filters use stay (--status, --type, a key).
    output.write(rows, "json" if args.json else "table", max_rows=args.limit,
                 priority=("flow_id", "status", "type", "key", "start", "errors", "duration_ms"))
    return 0


def cmd_flow(args: argparse.Namespace) -> int:
    from tracekit.analysis import stored_flow
    from tracekit.analysis.present import dumps, print_flow

    with open_analyzed(args.db, lake=args.lake) as store:
        flow_id = flow_id_of(store, args.id)
        detail = stored_flow.read(store, flow_id)
        if stored_flow.failing(detail):     # its origin needs its spans analyzed (pandas)
            from tracekit.analysis.present import failure_origin
            from tracekit.analysis.windowed import window_analysis

            detail["failure_origin"] = failure_origin(window_analysis(store, 0, 0, (flow_id,)),
                                                      flow_id)
    if args.json:
        print(dumps(detail))
    else:
        print_flow(detail)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from tracekit.analysis.compare_text import as_dict, markdown, text
    from tracekit.analysis.flow_sides import compare_flows
    from tracekit.analysis.present import dumps

    with open_analyzed(args.db, lake=args.lake) as store:
        a = flow_id_of(store, args.a)
        b = flow_id_of(store, args.b) if args.b is not None else None
        if a == b:
            raise UsageError(f"{args.a!r} and {args.b!r} are the same flow {a}: name two")
        comparison, picked = compare_flows(store, a, b)
    if args.json:
        print(dumps(as_dict(comparison, picked)))
    else:
        print((markdown if args.format == "markdown" else text)(comparison, picked), end="")
    return 0


def cmd_services(args: argparse.Namespace) -> int:
    from tracekit import queries

    with open_analyzed(args.db, lake=args.lake) as store:
        edges = store.arrow(queries.load("analysis/services"), {"digits": None if args.json else 1})
    output.write(edges, "json" if args.json else "table", max_rows=edges.num_rows)
    return 0


def cmd_metrics(args: argparse.Namespace) -> int:
    from tracekit import queries
    from tracekit.metrics import window
    from tracekit.metrics.exposition import render
    from tracekit.metrics.naming import NAMINGS, families

    with open_analyzed(args.db, lake=args.lake) as store:
        start, end = window.EARLIEST_NS, window.LATEST_NS
        if args.since:
            last = store.scalar(queries.load("metrics/last_span"))
            if last is not None:
                end = int(last) + 1
                start = end - int(duration(args.since) * 1e9)
        histograms = window.of_store(store, start, end)
    sys.stdout.write(render(families(histograms.snapshot(), histograms.bounds, NAMINGS[args.naming]),
                            args.openmetrics))
    return 0


def cmd_causes(args: argparse.Namespace) -> int:
    from tracekit.analysis.causes import rank
    from tracekit.analysis.present import causes_json, dumps
    from dataclasses import asdict

    from tracekit.analysis.critical_paths import critical_paths
    from tracekit.report.different import line, of_window
    from tracekit.report.limits import window_limits
    from tracekit.analysis.windowed import (NO_BASELINE_LOGS, baseline_without_logs,
                                           data_range, window_analysis)

    with open_analyzed(args.db, lake=args.lake) as store:
        bounds = data_range(store)
        if args.start:
            start = timestamp_ns(args.start)
            end = timestamp_ns(args.end) if args.end else bounds[1] + 1
        else:
            end = bounds[1] + 1
            start = end - int(duration(args.since) * 1e9)
        if args.baseline_from:
            baseline = (timestamp_ns(args.baseline_from),
                        timestamp_ns(args.baseline_to) if args.baseline_to else start)
        else:
            baseline = (start - (end - start), start)
        analysis = window_analysis(store, min(start, baseline[0]), max(end, baseline[1]))
        unlogged = baseline_without_logs(store, (start, end), baseline)
        different = of_window(store, (start, end), baseline)
        missing = window_limits(store, start, end)
    causes = rank(analysis, critical_paths(analysis), (start, end), baseline,
                  baseline_logged=not unlogged)
    limits = ([NO_BASELINE_LOGS] if unlogged else []) + missing
    if args.json:
        print(dumps({"window": _span_of_time(start, end), "baseline": _span_of_time(*baseline),
                     "causes": causes_json(causes), "different": [asdict(d) for d in different],
                     "limits": limits}))
        return 0
    for limit in limits:
        print(f"note: {limit}", file=sys.stderr)
    if not causes:
        print("no clear cause: failures and latencies in the window look like the baseline")
    for i, c in enumerate(causes, 1):
        print(f"{i}. {c.service} {c.operation}  score {c.score:.2f}")
        if c.failure_share:
            print(f"   failures start here in {c.failed_flows} flows ({c.failure_share:+.1%} of "
                  f"the window's flows vs the baseline; baseline had {c.baseline_failed_flows})")
        if c.slowdown_share:
            print(f"   critical-path time {c.baseline_ms:,.1f} → {c.window_ms:,.1f} ms per flow "
                  f"({c.slowdown_share:.0%} of a flow's duration)")
        if c.own_time:
            print(f"   {c.own_time}")
        if c.exception_types:
            print("   exceptions: " + ", ".join(f"{k} ×{v}" for k, v in c.exception_types.items()))
        if c.error_log_flows:
            pattern, count = next(iter(c.error_logs.items()))
            print(f"   error logs where the failure starts: {c.error_log_flows} flows, e.g. "
                  f"×{count} \"{pattern}\"")
        if c.path_share:
            print(f"   the flows' path changed here in {c.path_share:.0%} of them: "
                  + "; ".join(c.path_changes[:3]))
        if c.exemplars:
            print("   e.g. tracekit flow " + c.exemplars[0])
    if different:
        print("\nwhat is different in the failing and slow flows (--json has them all):")
        for d in different[:5]:
            print(f"   {line(d)}")
    return 0


def _span_of_time(start_ns: int, end_ns: int) -> dict:
    """A window in JSON as the report and `flows --json` give times: UTC text, and the
    nanoseconds for scripts that compare them."""
    import pandas as pd

    return {"start": str(pd.Timestamp(int(start_ns))), "end": str(pd.Timestamp(int(end_ns))),
            "start_ns": int(start_ns), "end_ns": int(end_ns)}
