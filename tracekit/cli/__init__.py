"""The `tracekit` command line.

Exit codes: 0 success, 1 a tracekit error (the message says what to do), 2 a usage error,
3 nothing to report: `tracekit report` or `tracekit check` over a window with no data.
`tracekit check` exits 1 when a check fails and 2 for a check file it cannot read.
Data goes to stdout; diagnostics and progress go to stderr.

A module per group of commands: `collect`, `data` (sql, import, stats), `flows` (analyze,
flows, flow, compare, services, causes, metrics), `report` (report, check), `ui` (tui, demo);
`common` holds what they share.
"""

from __future__ import annotations

import argparse
import logging
import sys

from tracekit.cli import collect, data, flows, report, ui
from tracekit.errors import TracekitError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tracekit",
        description="Collect OpenTelemetry traces and logs into DuckDB and follow workflows across them.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more to stderr")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    collect.add_parser(commands)
    data.add_parsers(commands)
    ui.add_tui_parser(commands)
    flows.add_parsers(commands)
    report.add_report_parser(commands)
    report.add_check_parser(commands)
    ui.add_demo_parser(commands)
    return parser


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
