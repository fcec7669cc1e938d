"""The store's data as it is: `tracekit sql`, `import` and `stats`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tracekit import output
from tracekit.cli.common import db_option, open_analyzed, progress_bar
from tracekit.errors import TracekitError, UsageError
from tracekit.formats.detect import FORMATS
from tracekit.plurals import counted
from tracekit.store import DEFAULT_TIMEOUT_S


def add_parsers(commands) -> None:
    sql = commands.add_parser("sql", help="run read-only DuckDB SQL on the store",
                              description="Run read-only DuckDB SQL on the store, also while a "
                              "collector holds it. Views spans and logs (over span_rows, "
                              "log_rows and resources), otel_traces and otel_logs; table "
                              "ingest_batches; the analyzer's flows, flow_spans, flow_edges, "
                              "flow_types, critical_path and service_edges (computed when a "
                              "query names them).")
    db_option(sql)
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
                          "and resources as of now, and the analysis tables (flows, flow_spans, "
                          "...) as its last Spark analysis left them (docs/guides/lake.md)")
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
    db_option(imp)
    imp.add_argument("--format", choices=FORMATS, dest="file_format",
                     help="the files' format, when telling it by their content is not wanted "
                          "(logs: JSON-lines log records)")
    imp.add_argument("--keep-proxy-spans", action="store_true",
                     help="Zipkin: show Istio/Envoy sidecar spans as services of their own")
    imp.add_argument("--json", action="store_true", help="print the summary as JSON")
    imp.add_argument("files", metavar="FILE", nargs="+", type=Path)
    imp.set_defaults(run=cmd_import)

    stats = commands.add_parser("stats", help="spans, logs, traces, services, time range and size of the store")
    db_option(stats)
    stats.add_argument("--json", action="store_true", help="print as JSON")
    stats.set_defaults(run=cmd_stats)


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
    if args.lake is not None:   # its analysis tables are as its last Spark analysis left them
        opened = tracekit.open(lake=args.lake, timeout_s=args.timeout)
    else:
        opened = (open_analyzed(args.db, args.timeout, capped=False) if referenced(args.query)
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

            with progress_bar("analyzing") as bar:
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
