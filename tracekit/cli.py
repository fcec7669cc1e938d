"""The `tracekit` command line.

Exit codes: 0 success, 1 a tracekit error (the message says what to do), 2 a usage error,
3 nothing to report: `tracekit report` or `tracekit check` over a window with no data.
`tracekit check` exits 1 when a check fails and 2 for a check file it cannot read.
Data goes to stdout; diagnostics and progress go to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from tracekit import output
from tracekit.errors import TracekitError, UsageError
from tracekit.plurals import counted
from tracekit.redaction import DEFAULT_PATTERNS
from tracekit.formats.detect import FORMATS
from tracekit.store import DEFAULT_PATH, DEFAULT_TIMEOUT_S

NO_DATA = 3   # exit code: the window asked for holds no data (documented in `report --help`)


def _db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", type=Path, default=Path(DEFAULT_PATH),
                        help=f"the store file (default: ./{DEFAULT_PATH})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tracekit",
        description="Collect OpenTelemetry traces and logs into DuckDB and follow workflows across them.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more to stderr")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    collect = commands.add_parser("collect", help="receive OTLP (gRPC and HTTP) into the store until stopped",
                                  description="Receive OTLP traces and logs over gRPC and HTTP and "
                                  "commit them to the store. Runs until SIGINT or SIGTERM.")
    _db(collect)
    collect.add_argument("--grpc", default="127.0.0.1:4317", metavar="HOST:PORT",
                         help="OTLP/gRPC address (default 127.0.0.1:4317; port 0 picks one)")
    collect.add_argument("--http", default="127.0.0.1:4318", metavar="HOST:PORT",
                         help="OTLP/HTTP address (default 127.0.0.1:4318; port 0 picks one)")
    collect.add_argument("--zipkin", metavar="HOST:PORT",
                         help="also receive Zipkin v2 spans (POST /api/v2/spans, JSON or "
                              "protobuf) here; usually 127.0.0.1:9411 (default: off). See "
                              "docs/guides/zipkin-and-jaeger.md")
    collect.add_argument("--keep-proxy-spans", action="store_true",
                         help="show Istio/Envoy sidecar spans as services of their own, not as "
                              "part of the service each sidecar sits beside")
    collect.add_argument("--redact", action="append", default=[], metavar="REGEX",
                         help="also mask attributes whose key contains this word (regular "
                              "expression; repeatable). Always masked: "
                              + ", ".join(DEFAULT_PATTERNS))
    collect.add_argument("--auth-token-file", type=Path, metavar="FILE",
                         help="require 'Authorization: Bearer <token>' on both receivers, the "
                              "token read from FILE (not given on the command line, where "
                              "other users could see it)")
    collect.add_argument("--tls-cert", type=Path, metavar="FILE",
                         help="serve both receivers over TLS with this certificate (PEM; the "
                              "chain after it); needs --tls-key")
    collect.add_argument("--tls-key", type=Path, metavar="FILE",
                         help="the certificate's private key (PEM, unencrypted)")
    collect.add_argument("--tls-client-ca", type=Path, metavar="FILE",
                         help="mTLS: refuse clients without a certificate signed by this CA (PEM)")
    collect.add_argument("--retention", metavar="DURATION",
                         help="delete spans and logs received longer ago than this (e.g. 7d, "
                              "12h), in the background")
    collect.add_argument("--max-size", metavar="SIZE",
                         help="delete the oldest spans and logs while the store uses more than "
                              "this (e.g. 10GB, 500MiB)")
    collect.add_argument("--retention-check", metavar="DURATION", default="60s",
                         help="how often retention runs (default 60s)")
    collect.add_argument("--memory-limit", type=int, default=1536, metavar="MIB",
                         help="resident memory of the collector and its decode and analysis "
                              "workers; from 85%% of it exports are refused with a retryable "
                              "answer, and the analysis works in smaller chunks (or waits) to "
                              "stay under 70%% (default 1536; with --no-analysis 512 is enough; "
                              "0: no limit)")
    collect.add_argument("--decode-workers", type=_at_least_one, metavar="N",
                         help="processes that decode requests (default: 1 on 2 cores, else 2); "
                              "protobuf traces decode in C, OTLP/JSON and logs in Python, so a "
                              "collector taking mostly JSON gains from 2, at ~75 MiB each")
    collect.add_argument("--no-analysis", action="store_true",
                         help="do not keep the analysis tables (flows, critical paths) current "
                              "while collecting: all the CPU goes to ingest, and `tracekit "
                              "analyze` brings them up to date once the collector has stopped")
    collect.add_argument("--metrics-naming", choices=("tempo", "otel"), default="tempo",
                         help="GET /metrics on the HTTP port names span metrics as Tempo's "
                              "metrics-generator (traces_spanmetrics_*, the default) or as the "
                              "OpenTelemetry span-metrics connector (traces_span_metrics_*)")
    collect.add_argument("--flow-metrics-delay", metavar="DURATION", default="30s",
                         help="count a flow in /metrics once it has ended this long ago: late "
                              "spans may still join it until then (default 30s)")
    collect.add_argument("--lake", metavar="URI",
                         help="also ship what is committed to this lake (Iceberg tables, catalog "
                              "in PostgreSQL), e.g. postgresql://postgres@127.0.0.1:5432/lake"
                              "?warehouse=/data/lake; see docs/guides/lake.md")
    collect.add_argument("--lake-every", metavar="DURATION", default="10s",
                         help="how often to ship to the lake (default 10s)")
    collect.set_defaults(run=cmd_collect)

    sql = commands.add_parser("sql", help="run read-only DuckDB SQL on the store",
                              description="Run read-only DuckDB SQL on the store, also while a "
                              "collector holds it. Views spans and logs (over span_rows, "
                              "log_rows and resources), otel_traces and otel_logs; table "
                              "ingest_batches; the analyzer's flows, flow_spans, flow_edges, "
                              "flow_types, critical_path and service_edges (computed when a "
                              "query names them).")
    _db(sql)
    sql.add_argument("--format", choices=output.FORMATS,
                     help="table for people (the default); csv, json or parquet for scripts; "
                          "with -o, taken from the file's extension when not given")
    sql.add_argument("-o", "--output", type=Path, metavar="FILE",
                     help="write csv, json or parquet here, not to stdout (parquet is binary: "
                          "it is not written to a terminal)")
    sql.add_argument("--max-rows", type=int, default=40, help="rows shown by --format table")
    sql.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S,
                     help=f"stop the query after this many seconds (default {DEFAULT_TIMEOUT_S:g})")
    sql.add_argument("--lake", metavar="URI",
                     help="query the lake instead of --db: its spans, logs, span_rows, log_rows "
                          "and resources as of now (docs/guides/lake.md)")
    sql.add_argument("query", metavar="QUERY", help="SQL, e.g. \"SELECT count(*) FROM spans\"")
    sql.set_defaults(run=cmd_sql)

    imp = commands.add_parser("import", help="import trace and log files (OTLP/JSON, Zipkin, Jaeger, "
                              "JSON-lines logs; plain or .gz) into the store",
                              description="Import files: OTLP/JSON (one export request per file, "
                              "or one per line as the OpenTelemetry Collector's file exporter "
                              "writes them), Zipkin v2 JSON, Jaeger JSON (a Jaeger UI download or an "
                              "/api/traces answer) and JSON-lines logs (ELK, Fluent Bit); plain or "
                              "gzip. The format is told by each file's content. Exits 1 when a "
                              "file could not be imported at all, naming it and why.")
    _db(imp)
    imp.add_argument("--format", choices=FORMATS, dest="file_format",
                     help="the files' format, when telling it by their content is not wanted "
                          "(logs: JSON-lines log records)")
    imp.add_argument("--keep-proxy-spans", action="store_true",
                     help="Zipkin: show Istio/Envoy sidecar spans as services of their own")
    imp.add_argument("--json", action="store_true", help="print the summary as JSON")
    imp.add_argument("files", metavar="FILE", nargs="+", type=Path)
    imp.set_defaults(run=cmd_import)

    stats = commands.add_parser("stats", help="spans, logs, traces, services, time range and size of the store")
    _db(stats)
    stats.add_argument("--json", action="store_true", help="print as JSON")
    stats.set_defaults(run=cmd_stats)

    tui = commands.add_parser("tui", help="the terminal UI: flow types, flows, waterfalls, failures, SQL",
                              description="Browse the store in a terminal UI: flow types, flows, one "
                              "flow's waterfall across traces with its critical path and failure "
                              "origin, span detail with logs, the service map, failures with their "
                              "root causes, and a SQL console. Also while a collector writes the "
                              "store: new flows appear as they arrive. Press ? for the keys.")
    _db(tui)
    tui.add_argument("--window", metavar="WINDOW",
                     help="the time window to open on, counted back from the newest data: all, "
                     "1m, 5m, 15m, 1h, 6h or 1d (default: all of a store holding an hour or less, "
                     "else the last hour; `w` cycles them)")
    tui.set_defaults(run=cmd_tui)

    _analysis_parsers(commands)
    _report_parser(commands)
    _check_parser(commands)
    _demo_parser(commands)
    return parser


def _analysis_parsers(commands) -> None:
    analyze = commands.add_parser(
        "analyze", help="bring the store's analysis tables (flows, critical paths, ...) up to date",
        description="Analyze the spans the store's analysis tables do not hold yet (flows, "
        "flow_spans, flow_edges, flow_types, critical_path, service_edges), re-analyzing only the "
        "stored flows they join, in bounded chunks. A running collector does this as it commits; "
        "this is for stores written without one or by an older tracekit. Readers run it by "
        "themselves when they find the tables behind and the file free.")
    _db(analyze)
    analyze.add_argument("--rebuild", action="store_true",
                         help="forget every analysis result and analyze the whole store again")
    analyze.add_argument("--verify", action="store_true",
                         help="then check the tables against a batch analysis of the whole store "
                              "in memory (about 1.5 GiB per million spans); exit 1 if they differ")
    analyze.add_argument("--json", action="store_true", help="print the summary as JSON")
    analyze.set_defaults(run=cmd_analyze)

    flows = commands.add_parser(
        "flows", help="list flows: workflows followed across traces, newest first",
        description="List flows (one run of a workflow, stitched across traces through span "
        "links, message ids and business keys), newest first, with their style "
        "(orchestrated, choreographed, hybrid), status (complete, degraded, failed, "
        "incomplete, running) and type. The same data is the SQL table `flows`.")
    _db(flows)
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
    _db(flow)
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
    _db(compare)
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
    _db(services)
    services.add_argument("--json", action="store_true")
    services.set_defaults(run=cmd_services)

    causes = commands.add_parser(
        "causes", help="rank the likely root causes of a window's failures and slowdowns",
        description="Rank the services and operations that best explain the failures and "
        "slowdowns of the flows started in a window, against a baseline window (by default the "
        "same length just before it).")
    _db(causes)
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
    _db(metrics)
    metrics.add_argument("--since", metavar="DURATION",
                         help="only the last DURATION of data, e.g. 15m, 1h (default: all of it)")
    metrics.add_argument("--naming", choices=("tempo", "otel"), default="tempo",
                         help="span metric names: Tempo's metrics-generator (default) or the "
                              "OpenTelemetry span-metrics connector")
    metrics.add_argument("--openmetrics", action="store_true",
                         help="OpenMetrics text with exemplars instead of the Prometheus text format")
    metrics.set_defaults(run=cmd_metrics)


def _progress_bar(description: str):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    return Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                    TimeRemainingColumn(), transient=True, disable=not sys.stderr.isatty())


def _open_analyzed(db: Path, timeout_s: float | None = None, *, capped: bool = True):
    """The store, read-only, its analysis tables brought up to date first if they lag;
    `capped`: DuckDB's memory held to what reading a window of the analysis needs."""
    from tracekit.analysis.ready import READER_DUCKDB_MEMORY_MIB, open_analyzed

    bar = None      # shown only when there is something to analyze (rich loads in ~0.1 s)

    def started(spans: int) -> None:
        nonlocal bar
        print(f"tracekit: analyzing {counted(spans, 'span')} not analyzed yet (once; `tracekit "
              "analyze` does it ahead)", file=sys.stderr)
        bar = _progress_bar("analyzing new spans")
        bar.start()
        bar.add_task("analyzing new spans", total=spans)

    try:
        return open_analyzed(db, timeout_s=timeout_s, on_start=started,
                             memory_limit_mib=READER_DUCKDB_MEMORY_MIB if capped else None,
                             on_progress=lambda done, total: bar.update(bar.task_ids[0], completed=done,
                                                                         total=total))
    finally:
        if bar is not None:
            bar.stop()


def cmd_analyze(args: argparse.Namespace) -> int:
    import time

    from tracekit.analysis.ready import bring_up_to_date

    started = time.perf_counter()
    with _progress_bar("analyzing") as bar:
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


def cmd_flows(args: argparse.Namespace) -> int:
    from tracekit.analysis.flow_list import newest_flows

    with _open_analyzed(args.db) as store:
        rows = newest_flows(store, {"type": args.type, "failed": args.failed,
                                    "status": args.status}, args.limit)
    # On a narrow terminal, the columns its filters use stay (--status, --type, a key).
    output.write(rows, "json" if args.json else "table", max_rows=args.limit,
                 priority=("flow_id", "status", "type", "key", "start", "errors", "duration_ms"))
    return 0


def cmd_flow(args: argparse.Namespace) -> int:
    from tracekit.analysis.present import dumps, flow_detail, print_flow
    from tracekit.analysis.windowed import window_analysis

    with _open_analyzed(args.db) as store:
        flow_id = _flow_id(store, args.id)
        detail = flow_detail(window_analysis(store, 0, 0, (flow_id,)), flow_id)
    if args.json:
        print(dumps(detail))
    else:
        print_flow(detail)
    return 0


def _flow_id(store, ident: str) -> str:
    """The flow `ident` names; naming none (or several) is a usage error."""
    from tracekit.analysis.windowed import find_flow

    try:
        return find_flow(store, ident)
    except TracekitError as exc:
        raise UsageError(str(exc)) from exc


def cmd_compare(args: argparse.Namespace) -> int:
    from tracekit.analysis.compare_text import as_dict, markdown, text
    from tracekit.analysis.flow_sides import compare_flows
    from tracekit.analysis.present import dumps

    with _open_analyzed(args.db) as store:
        a = _flow_id(store, args.a)
        b = _flow_id(store, args.b) if args.b is not None else None
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

    with _open_analyzed(args.db) as store:
        edges = store.arrow(queries.load("analysis/services"), {"digits": None if args.json else 1})
    output.write(edges, "json" if args.json else "table", max_rows=edges.num_rows)
    return 0


def _ns(text: str) -> int:
    import pandas as pd

    try:
        return int(pd.Timestamp(text).value)
    except ValueError as exc:
        raise UsageError(f"bad timestamp {text!r}: use e.g. 2026-11-28T20:15:00") from exc


def cmd_metrics(args: argparse.Namespace) -> int:
    from tracekit import queries
    from tracekit.metrics import window
    from tracekit.metrics.exposition import render
    from tracekit.metrics.naming import NAMINGS, families

    with _open_analyzed(args.db) as store:
        start, end = window.EARLIEST_NS, window.LATEST_NS
        if args.since:
            last = store.scalar(queries.load("metrics/last_span"))
            if last is not None:
                end = int(last) + 1
                start = end - int(_duration(args.since) * 1e9)
        histograms = window.of_store(store, start, end)
    sys.stdout.write(render(families(histograms.snapshot(), histograms.bounds, NAMINGS[args.naming]),
                            args.openmetrics))
    return 0


def cmd_causes(args: argparse.Namespace) -> int:
    from tracekit.analysis.causes import rank
    from tracekit.analysis.present import causes_json, dumps
    from dataclasses import asdict

    from tracekit.analysis.run import critical_paths
    from tracekit.report.different import line, of_window
    from tracekit.analysis.windowed import (NO_BASELINE_LOGS, baseline_without_logs,
                                           data_range, window_analysis)

    with _open_analyzed(args.db) as store:
        bounds = data_range(store)
        if args.start:
            start = _ns(args.start)
            end = _ns(args.end) if args.end else bounds[1] + 1
        else:
            end = bounds[1] + 1
            start = end - int(_duration(args.since) * 1e9)
        if args.baseline_from:
            baseline = (_ns(args.baseline_from),
                        _ns(args.baseline_to) if args.baseline_to else start)
        else:
            baseline = (start - (end - start), start)
        analysis = window_analysis(store, min(start, baseline[0]), max(end, baseline[1]))
        unlogged = baseline_without_logs(store, (start, end), baseline)
        different = of_window(store, (start, end), baseline)
    causes = rank(analysis, critical_paths(analysis), (start, end), baseline,
                  baseline_logged=not unlogged)
    limits = [NO_BASELINE_LOGS] if unlogged else []
    if args.json:
        print(dumps({"window": [start, end], "baseline": list(baseline),
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


def _report_parser(commands) -> None:
    report = commands.add_parser(
        "report", help="an incident report: what broke, since when, impact, root cause, evidence",
        description="Write an incident report for a window: a summary, the impact (flow types, "
        "failed and slow flows, services and endpoints), a timeline, the root-cause ranking with "
        "its evidence, the critical path of an exemplar flow against a healthy one, a Mermaid "
        "sequence diagram, correlated logs, the limits of the data, and the SQL behind every "
        "figure. Without --from/--to the incident window is found from shifts in the flows' "
        "error rates and latency over the last --since of data. Exit codes: 0 a report was "
        "written (incident or not), 3 no flow started in the window (the report says there is "
        "no data there), 1 an error, 2 a usage error.")
    _db(report)
    when = report.add_mutually_exclusive_group()
    when.add_argument("--since", metavar="TIME", default="30m",
                      help="look for the incident in the last TIME of data, e.g. 30m, 12h, 1d "
                           "(default 30m)")
    when.add_argument("--from", dest="start", metavar="TIMESTAMP",
                      help="the incident window's start (UTC); no detection")
    report.add_argument("--to", dest="end", metavar="TIMESTAMP",
                        help="the window's end (UTC; default: the end of the data)")
    report.add_argument("--baseline-from", metavar="TIMESTAMP",
                        help="baseline start (default: the same length just before the window)")
    report.add_argument("--baseline-to", metavar="TIMESTAMP")
    which = report.add_mutually_exclusive_group()
    which.add_argument("--flow-type", metavar="T", help="only flows of these types: a type id or "
                       "name, or part of a name (every type it is in, e.g. a workflow's variants)")
    which.add_argument("--flow", metavar="ID", help="the report of one flow (flow id, trace id "
                       "or business key)")
    report.add_argument("--format", choices=["md", "html", "json"],
                        help="md (default), html (one self-contained file) or json; with -o, "
                             "taken from the file's extension when not given")
    report.add_argument("-o", "--output", type=Path, metavar="FILE", help="write here, not to stdout")
    report.set_defaults(run=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    from tracekit.report import build, render

    fmt = args.format
    if fmt is None and args.output is not None:
        fmt = {".md": "md", ".markdown": "md", ".html": "html", ".htm": "html",
               ".json": "json"}.get(args.output.suffix.lower())
    fmt = fmt or "md"
    if args.end and not args.start:
        raise UsageError("--to needs --from")
    if args.baseline_to and not args.baseline_from:
        raise UsageError("--baseline-to needs --baseline-from")
    window = (_ns(args.start), _ns(args.end) if args.end else None) if args.start else None
    baseline = None
    if args.baseline_from:
        baseline = (_ns(args.baseline_from), _ns(args.baseline_to) if args.baseline_to else None)

    def progress(step: str) -> None:
        print(f"tracekit report: {step}…", file=sys.stderr, flush=True)

    with _open_analyzed(args.db) as store:
        report = build(store, window=window, baseline=baseline, flow_type=args.flow_type,
                       flow_id=args.flow, search_ns=int(_duration(args.since) * 1e9),
                       progress=progress if sys.stderr.isatty() else None)
    text = render(report, fmt)
    if args.output is not None:
        try:
            args.output.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise TracekitError(f"cannot write {args.output}: {exc}") from None
        print(f"tracekit report: wrote {args.output} ({fmt}): {report.title}", file=sys.stderr)
    else:
        sys.stdout.write(text)
        if not report.incident and fmt != "md":
            print(f"tracekit report: {report.title}", file=sys.stderr)
    return NO_DATA if report.no_data else 0


def _check_parser(commands) -> None:
    check = commands.add_parser(
        "check", help="check flows, spans and broker waits against a YAML file of assertions (CI)",
        description="Run the checks of a YAML file on the flows started in a window (default: "
        "every flow in the store): flow statuses, duration percentiles, span errors and "
        "attributes, a workflow's service edges against a baseline, broker waits. A line per "
        "check, or --json; --junit writes JUnit XML for CI. Format: docs/guides/checks.md. "
        "Exit codes: 0 every check passed, 1 a check failed (or an error), 2 a check file or "
        "baseline that cannot be read (the message names the line and key), 3 no flow started "
        "in the window.")
    _db(check)
    check.add_argument("file", metavar="FILE", type=Path, nargs="?",
                       help="the check file (YAML); not with --write-baseline")
    when = check.add_mutually_exclusive_group()
    when.add_argument("--since", metavar="TIME",
                      help="only the flows started in the last TIME of data, e.g. 30m, 2h")
    when.add_argument("--from", dest="start", metavar="TIMESTAMP", help="window start (UTC)")
    check.add_argument("--to", dest="end", metavar="TIMESTAMP",
                       help="window end (UTC; default: the end of the data)")
    check.add_argument("--baseline", type=Path, metavar="FILE",
                       help="the edge baseline for `edges:` checks (default: the file's "
                            "`baseline:`)")
    check.add_argument("--write-baseline", type=Path, metavar="FILE",
                       help="write each workflow's service edges in the window to FILE (JSON), "
                            "the baseline of `edges:` checks; run it on a known-good store")
    check.add_argument("--junit", type=Path, metavar="FILE", help="also write JUnit XML here")
    check.add_argument("--json", action="store_true", help="print the results as JSON")
    check.set_defaults(run=cmd_check)


def cmd_check(args: argparse.Namespace) -> int:
    import time

    from tracekit.checks import baseline as baselines
    from tracekit.checks import evaluate, junit, spec, summary

    started = time.perf_counter()
    if (args.file is None) == (args.write_baseline is None):
        raise UsageError("give a check file to run, or --write-baseline FILE to write an edge "
                         "baseline (not both)")
    if args.end and not args.start:
        raise UsageError("--to needs --from")
    checks = spec.read(args.file) if args.file else None
    baseline = None
    if checks is not None and checks.needs_baseline:
        path = args.baseline or checks.baseline
        if path is None:
            raise spec.CheckFileError(f"{args.file}: `edges:` checks compare with a baseline: set "
                                      "`baseline: FILE` in the file or give --baseline FILE")
        baseline = baselines.read(path)
    with _open_analyzed(args.db) as store:
        window = _check_window(store, args)
        if window is None or evaluate.flows_started(store, window) == 0:
            return _no_data(args, checks, window)
        if args.write_baseline:
            edges = baselines.window_edges(store, window, None)
            baselines.write(args.write_baseline, edges, args.db, window)
            print(f"tracekit check: wrote {args.write_baseline}: "
                  f"{counted(sum(map(len, edges.values())), 'edge')} of "
                  f"{counted(len(edges), 'workflow')}", file=sys.stderr)
            return 0
        results = evaluate.run(store, checks.checks, window, baseline)
    if args.junit:
        _write(args.junit, junit.document(results, str(args.file), time.perf_counter() - started))
    if args.json:
        print(json.dumps(summary.as_json(results, str(args.file), str(args.db), window), indent=2,
                         default=str, ensure_ascii=False))
    else:
        print("\n".join(summary.lines(results)))
    return 0 if all(r.passed for r in results) else 1


def _check_window(store, args: argparse.Namespace) -> tuple[int, int] | None:
    """[start, end) in ns: --from/--to, the last --since of data, else every flow; None when
    the store holds no flow."""
    from tracekit import queries

    first, last = store.arrow(queries.load("analysis/range")).to_pylist()[0].values()
    if args.start:
        start = _ns(args.start)
        end = _ns(args.end) if args.end else (last + 1 if last is not None else start + 1)
        if end <= start:
            raise UsageError("the window ends before it starts: give --from earlier than --to")
        return start, end
    if first is None:
        return None
    if args.since:
        return last + 1 - int(_duration(args.since) * 1e9), last + 1
    return first, last + 1


def _no_data(args: argparse.Namespace, checks, window: tuple[int, int] | None) -> int:
    from datetime import datetime, timezone

    from tracekit.checks import junit

    def when(ns: int) -> str:
        return datetime.fromtimestamp(ns / 1e9, timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]

    where = f"{when(window[0])} – {when(window[1])} UTC" if window else f"{args.db}"
    message = (f"no data in {where}: no flow started in the window, so there is nothing to "
               "check; give --from/--to where the store has flows, or a longer --since")
    if args.junit and checks is not None:
        _write(args.junit, junit.no_data(checks.checks, str(args.file), message))
    if args.json:
        print(json.dumps({"check_file": str(args.file), "store": str(args.db),
                          "window_ns": list(window) if window else None, "no_data": True,
                          "passed": False, "message": message, "checks": []}, indent=2,
                         ensure_ascii=False))
    print(f"tracekit check: {message}", file=sys.stderr)
    return NO_DATA


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise TracekitError(f"cannot write {path}: {exc}") from None


def _demo_parser(commands) -> None:
    from tracekit.demo.faults import SCENARIOS

    demo = commands.add_parser(
        "demo", help="run the demo shop against a local collector, with fault scenarios",
        description="Start a collector on free localhost ports, run the demo shop (an order saga, "
        "a choreographed checkout, returns) with its traffic and a schedule of fault scenarios, "
        "and record the ground truth in the store (views demo_scenarios, demo_faults, "
        "demo_flows). Without --duration it runs until Ctrl-C. Scenarios: "
        + ", ".join(SCENARIOS) + ".")
    demo.add_argument("--db", type=Path, default=Path("tracekit-demo.duckdb"),
                      help="the store (default: ./tracekit-demo.duckdb)")
    demo.add_argument("--duration", metavar="TIME", help="how long to run: 30s, 5m, ...")
    demo.add_argument("--headless", action="store_true",
                      help="no terminal UI: progress lines on stderr, a summary at the end")
    demo.add_argument("--scenario", choices=list(SCENARIOS), metavar="NAME",
                      help="healthy, then this fault, then healthy (thirds of --duration)")
    demo.add_argument("--schedule", metavar="SPEC",
                      help="e.g. healthy:2m,payment-failure:1m,healthy:2m (overrides --scenario)")
    demo.add_argument("--rate", type=float, default=20.0, help="flows started per second (default 20)")
    demo.add_argument("--broker", metavar="URL",
                      help="RabbitMQ, e.g. amqp://guest:guest@localhost:5672/ (default: in-process)")
    demo.add_argument("--redis", metavar="URL",
                      help="keep fraud-detection's counters in Redis, e.g. redis://localhost:6379/0 "
                           "(default: SQLite)")
    demo.add_argument("--namespace", default="shop",
                      help="prefix of the broker's exchanges and queues (default shop)")
    demo.add_argument("--otlp-endpoint", metavar="URL",
                      help="send to this collector instead of starting one (then --db is not read)")
    demo.add_argument("--otlp-protocol", choices=["grpc", "http/protobuf"],
                      help="with --otlp-endpoint (default: $OTEL_EXPORTER_OTLP_PROTOCOL or grpc)")
    demo.add_argument("--ground-truth", type=Path, metavar="FILE",
                      help="also write the ground truth (scenarios, faults, flows) as JSON here")
    demo.add_argument("--json", action="store_true", help="print the summary as JSON")
    demo.set_defaults(run=cmd_demo)
    parts = demo.add_subparsers(dest="demo_command", metavar="PART")

    service = parts.add_parser("service", help="run one shop service (as docker-compose does)",
                               description="Run one service of the shop until SIGTERM. Peers are "
                               "found through SHOP_<SERVICE>_URL variables, telemetry goes where "
                               "the OTEL_EXPORTER_OTLP_* variables say.")
    service.add_argument("name", help="frontend, orders, checkout, inventory, payment, shipping, "
                                      "carrier, fraud-detection, accounting or notification")
    service.add_argument("--listen", default="127.0.0.1:8080", metavar="HOST:PORT")
    service.add_argument("--broker", metavar="URL", help="RabbitMQ URL (needed by the services "
                                                         "that publish or consume)")
    service.add_argument("--redis", metavar="URL", help="Redis URL (fraud-detection's counters)")
    service.add_argument("--namespace", default="shop")
    service.add_argument("--data-dir", type=Path, default=Path("shop-data"),
                         help="where the service keeps its SQLite database")
    service.set_defaults(run=cmd_demo_service)

    traffic = parts.add_parser("traffic", help="drive the shop's services (as docker-compose does)",
                               description="Start flows against the frontend and switch scenarios "
                               "in every service named by a SHOP_<SERVICE>_URL variable.")
    traffic.add_argument("--frontend", metavar="URL", help="default: $SHOP_FRONTEND_URL")
    traffic.add_argument("--rate", type=float, default=20.0)
    traffic.add_argument("--duration", metavar="TIME", default="5m")
    traffic.add_argument("--scenario", choices=list(SCENARIOS), metavar="NAME")
    traffic.add_argument("--schedule", metavar="SPEC")
    traffic.set_defaults(run=cmd_demo_traffic)


def _duration(text: str | None) -> float | None:
    from tracekit.units import parse_duration

    if text is None:
        return None
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc


def cmd_tui(args: argparse.Namespace) -> int:
    from tracekit.errors import StoreNotFound
    from tui.app import make_app    # the core never imports the UI
    from tui.data import window_label

    try:
        window = window_label(args.window) if args.window else None
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    if not args.db.exists():
        raise StoreNotFound(f"no store at {args.db}: start `tracekit collect --db {args.db}` or "
                            "`tracekit demo` first, or give --db PATH")
    make_app(args.db, window=window).run()
    return 0


def _demo_with_tui(args: argparse.Namespace) -> int:
    """The demo in a child process (headless), the terminal UI on its store in this one; the
    demo stops (drains, commits) when the UI exits."""
    import signal
    import subprocess
    import time

    from tracekit import discovery

    command = [sys.executable, "-m", "tracekit", "demo", "--headless", "--db", str(args.db),
               "--rate", str(args.rate), "--namespace", args.namespace]
    for option in ("duration", "scenario", "schedule", "broker", "redis", "ground_truth"):
        value = getattr(args, option)
        if value is not None:
            command += [f"--{option.replace('_', '-')}", str(value)]
    log = Path(f"{args.db}.demo.log")
    with log.open("w") as out:
        demo = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while discovery.find(args.db) is None:
            if demo.poll() is not None or time.monotonic() > deadline:
                raise TracekitError(f"the demo did not start; its output is in {log}")
            time.sleep(0.2)
        from tui.app import make_app

        app = make_app(args.db)
        # SIGTERM closes the UI like `q`, so the demo below is stopped, not orphaned.
        signal.signal(signal.SIGTERM, lambda *_: app.call_later(app.exit))
        app.run()
    finally:
        if demo.poll() is None:
            demo.send_signal(signal.SIGINT)
            try:
                demo.wait(timeout=60)
            except subprocess.TimeoutExpired:
                demo.kill()
    print(f"demo stopped; store {args.db}, demo output in {log}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from tracekit.demo.runner import DemoOptions, run_demo

    if not 1 <= args.rate <= 1000:
        raise UsageError("--rate is in flows per second: between 1 and 1000 (try 5-200)")
    if not (args.headless or args.json or args.otlp_endpoint) and sys.stdout.isatty():
        return _demo_with_tui(args)
    try:
        return run_demo(DemoOptions(
            db=args.db, duration_s=_duration(args.duration), headless=args.headless,
            scenario=args.scenario, schedule=args.schedule, rate=args.rate, broker=args.broker,
            namespace=args.namespace, otlp_endpoint=args.otlp_endpoint,
            otlp_protocol=args.otlp_protocol, ground_truth=args.ground_truth, json=args.json,
            redis=args.redis))
    except ValueError as exc:
        raise UsageError(str(exc)) from exc


def cmd_demo_service(args: argparse.Namespace) -> int:
    from tracekit.demo.runner import run_service

    return run_service(args.name, args.listen, args.broker, args.namespace, args.data_dir,
                       args.redis)


def cmd_demo_traffic(args: argparse.Namespace) -> int:
    from tracekit.demo.runner import run_traffic
    from tracekit.demo.traffic import default_schedule, parse_schedule

    try:
        schedule = (parse_schedule(args.schedule) if args.schedule
                    else default_schedule(_duration(args.duration), args.scenario))
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    return run_traffic(args.frontend, args.rate, schedule)


def _at_least_one(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)


def cmd_collect(args: argparse.Namespace) -> int:
    import asyncio

    import re

    from collectors.service import CollectorSettings, serve, split_address

    token = None
    if args.auth_token_file is not None:
        try:
            token = args.auth_token_file.read_text().strip()
        except OSError as exc:
            raise TracekitError(f"cannot read the token file: {exc}") from None
        if not token:
            raise TracekitError(f"{args.auth_token_file} is empty: put the bearer token in it")
    for address in (args.grpc, args.http, *([args.zipkin] if args.zipkin else [])):
        try:
            split_address(address)
        except ValueError as exc:
            raise TracekitError(str(exc)) from None
    for pattern in args.redact:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise TracekitError(f"--redact {pattern!r} is not a regular expression: {exc}") from None
    tls = None
    if args.tls_cert is not None or args.tls_key is not None or args.tls_client_ca is not None:
        if args.tls_cert is None or args.tls_key is None:
            raise TracekitError("TLS needs both --tls-cert FILE and --tls-key FILE "
                                "(--tls-client-ca adds mTLS on top)")
        from collectors import tls as server_tls

        tls = server_tls.load(args.tls_cert, args.tls_key, args.tls_client_ca)
    settings = CollectorSettings(db=args.db, grpc=args.grpc, http=args.http, auth_token=token,
                                 redact_patterns=(*DEFAULT_PATTERNS, *args.redact), tls=tls,
                                 memory_limit_mib=args.memory_limit,
                                 retention=_retention(args), analysis=not args.no_analysis,
                                 zipkin=args.zipkin, keep_proxy_spans=args.keep_proxy_spans,
                                 metrics_naming=args.metrics_naming,
                                 flow_metrics_delay_s=_duration(args.flow_metrics_delay),
                                 **({"decode_workers": args.decode_workers}
                                    if args.decode_workers else {}),
                                 **_lake_settings(args))

    def announce(line: str) -> None:
        print(line, flush=True)

    asyncio.run(serve(settings, announce))
    return 0


def _lake_settings(args: argparse.Namespace) -> dict:
    """The collector's lake settings from --lake and --lake-every (none without --lake)."""
    if args.lake is None:
        return {}
    from tracekit.lake.location import LakeLocation

    every = _duration(args.lake_every)
    if not every or every <= 0:
        raise UsageError("--lake-every is a duration above zero, e.g. 10s")
    return {"lake": LakeLocation.parse(args.lake), "lake_every_s": every}


def _retention(args: argparse.Namespace):
    from collectors.retention import RetentionSettings
    from tracekit.units import parse_duration, parse_size

    try:
        return RetentionSettings(
            max_age_s=parse_duration(args.retention) if args.retention else None,
            max_size_bytes=parse_size(args.max_size) if args.max_size else None,
            check_every_s=parse_duration(args.retention_check))
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def cmd_sql(args: argparse.Namespace) -> int:
    import tracekit
    from tracekit.analysis import referenced

    fmt = args.format
    if fmt is None and args.output is not None:
        fmt = {".csv": "csv", ".json": "json", ".parquet": "parquet"}.get(args.output.suffix.lower())
        if fmt is None:
            raise UsageError(f"cannot tell the format of {args.output}: give --format csv|json|parquet")
    fmt = fmt or "table"
    if args.output is not None and fmt == "table":
        raise UsageError("-o writes csv, json or parquet: give --format csv|json|parquet")
    if fmt == "parquet" and args.output is None and sys.stdout.isatty():
        raise UsageError("parquet is binary and stdout is a terminal: write it to a file with "
                         "-o FILE (or redirect stdout)")
    # A terminal shows --max-rows rows, so only those are fetched; scripts get everything.
    limit = args.max_rows + 1 if fmt == "table" else None
    if args.lake is not None:   # the lake holds spans and logs, not the analysis tables
        opened = tracekit.open(lake=args.lake, timeout_s=args.timeout)
    else:
        opened = (_open_analyzed(args.db, args.timeout, capped=False) if referenced(args.query)
                  else tracekit.open(args.db, timeout_s=args.timeout))
    with opened as store:
        table = store.arrow(args.query, max_rows=limit)
    if limit is not None and table.num_rows == limit:
        output.write(table.slice(0, args.max_rows), "table", max_rows=args.max_rows)
        print("(more rows not shown: raise --max-rows, or use --format csv|json|parquet)",
              file=sys.stderr)
        return 0
    if args.output is None:
        output.write(table, fmt, max_rows=args.max_rows)
        return 0
    try:
        with args.output.open("wb") as out:
            output.write(table, fmt, out)
    except OSError as exc:
        raise TracekitError(f"cannot write {args.output}: {exc}") from None
    print(f"tracekit sql: wrote {args.output} ({fmt}, {counted(table.num_rows, 'row')})", file=sys.stderr)
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    from tracekit import discovery
    from tracekit.errors import StoreLocked
    from tracekit.importer import CollectorSink, StoreSink, import_files, total_bytes
    from tracekit.writable import WritableStore

    store = None
    try:
        store = WritableStore.open(args.db)
        sink = StoreSink(store)
    except StoreLocked:
        endpoint = discovery.find(args.db)
        if endpoint is None:
            raise
        # A collector holds the store: hand it the data over OTLP, like any other client.
        if endpoint.mtls:
            raise TracekitError(
                f"{args.db} is held by a running collector (pid {endpoint.pid}) that requires "
                "client certificates (--tls-client-ca), and import has none: send the files "
                "with an OTLP client that holds one, or stop the collector and import into the "
                "file")
        print(f"tracekit: {args.db} is held by a running collector (pid {endpoint.pid}); "
              f"sending the files to it at {endpoint.http}", file=sys.stderr)
        sink = CollectorSink(endpoint.http, endpoint.ingest_token, endpoint.tls_cert)
    try:
        with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                      TimeRemainingColumn(), transient=True,
                      disable=not sys.stderr.isatty()) as progress:
            task = progress.add_task("importing", total=total_bytes(args.files))
            summary = import_files(args.files, sink,
                                   on_progress=lambda done: progress.update(task, completed=done),
                                   fmt=args.file_format, keep_proxy_spans=args.keep_proxy_spans)
        if store is not None:   # a collector analyzes what it is sent itself
            from tracekit.analysis import persist

            with _progress_bar("analyzing") as bar:
                task = bar.add_task("analyzing", total=None)
                analyzed = persist.update(store.conn, on_progress=lambda done, total: bar.update(
                    task, completed=done, total=total))
            summary.analyzed_flows = analyzed.flows_written
    finally:
        if store is not None:
            store.close()
    if args.json:
        print(json.dumps(summary.as_dict(), indent=2))
    else:
        if summary.sent_to_collector:
            print(f"sent {counted(summary.files, 'file')}, {counted(summary.documents, 'document')} "
                  f"to the running collector: {counted(summary.spans, 'span')}, "
                  f"{counted(summary.logs, 'log')} accepted (it stores a re-sent span or log once)")
        else:
            print(f"imported {counted(summary.files, 'file')}, {counted(summary.documents, 'document')}: "
                  f"{counted(summary.spans, 'span')}, {counted(summary.logs, 'log')} stored; "
                  f"{counted(summary.duplicate_spans, 'duplicate span')} ignored")
        for reason, n in summary.rejected.most_common():
            print(f"  rejected {n} {reason}")
        for reason, n in summary.skipped.most_common():
            print(f"  skipped {n} {reason}")
    for path, why in summary.failed.items():
        print(f"tracekit: could not import {path}: {why}", file=sys.stderr)
    return 1 if summary.failed else 0


def cmd_stats(args: argparse.Namespace) -> int:
    import tracekit
    from tracekit import queries

    with tracekit.open(args.db) as store:
        row = store.arrow(queries.load("stats")).to_pylist()[0]
        row["size_bytes"] = store.size_on_disk()
        row["store"] = str(args.db)
    if args.json:
        print(json.dumps(row, default=str, indent=2))
        return 0
    print(f"store           {row['store']} (schema v{row['schema_version']})")
    print(f"spans           {row['spans']:,}")
    print(f"traces          {row['traces']:,}")
    print(f"logs            {row['logs']:,}")
    print(f"services        {row['services']:,}")
    print(f"spans from      {row['first_span'] or '-'}")
    print(f"spans to        {row['last_span'] or '-'}")
    print(f"size on disk    {row['size_bytes'] / 1048576:,.1f} MiB")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return args.run(args)
    except TracekitError as exc:
        print(f"tracekit: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
