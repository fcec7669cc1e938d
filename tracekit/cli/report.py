"""Incident reports and trace checks: `tracekit report` and `tracekit check`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tracekit.cli.common import NO_DATA, db_option, duration, open_analyzed, timestamp_ns, write_text
from tracekit.errors import TracekitError, UsageError
from tracekit.plurals import counted


def add_report_parser(commands) -> None:
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
    db_option(report, lake=True)
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
    window = (timestamp_ns(args.start), timestamp_ns(args.end) if args.end else None) if args.start else None
    baseline = None
    if args.baseline_from:
        baseline = (timestamp_ns(args.baseline_from), timestamp_ns(args.baseline_to) if args.baseline_to else None)

    def progress(step: str) -> None:
        print(f"tracekit report: {step}…", file=sys.stderr, flush=True)

    with open_analyzed(args.db, lake=args.lake) as store:
        report = build(store, window=window, baseline=baseline, flow_type=args.flow_type,
                       flow_id=args.flow, search_ns=int(duration(args.since) * 1e9),
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


def add_check_parser(commands) -> None:
    check = commands.add_parser(
        "check", help="check flows, spans and broker waits against a YAML file of assertions (CI)",
        description="Run the checks of a YAML file on the flows started in a window (default: "
        "every flow in the store): flow statuses, duration percentiles, span errors and "
        "attributes, a workflow's service edges against a baseline, broker waits. A line per "
        "check, or --json; --junit writes JUnit XML for CI. Format: docs/guides/checks.md. "
        "Exit codes: 0 every check passed, 1 a check failed (or an error), 2 a check file or "
        "baseline that cannot be read (the message names the line and key), 3 no flow started "
        "in the window.")
    db_option(check, lake=True)
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
    with open_analyzed(args.db, lake=args.lake) as store:
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
        write_text(args.junit, junit.document(results, str(args.file), time.perf_counter() - started))
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
        start = timestamp_ns(args.start)
        end = timestamp_ns(args.end) if args.end else (last + 1 if last is not None else start + 1)
        if end <= start:
            raise UsageError("the window ends before it starts: give --from earlier than --to")
        return start, end
    if first is None:
        return None
    if args.since:
        return last + 1 - int(duration(args.since) * 1e9), last + 1
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
        write_text(args.junit, junit.no_data(checks.checks, str(args.file), message))
    if args.json:
        print(json.dumps({"check_file": str(args.file), "store": str(args.db),
                          "window_ns": list(window) if window else None, "no_data": True,
                          "passed": False, "message": message, "checks": []}, indent=2,
                         ensure_ascii=False))
    print(f"tracekit check: {message}", file=sys.stderr)
    return NO_DATA
