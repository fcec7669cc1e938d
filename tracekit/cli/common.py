"""What the commands share: the --db option, reading an analyzed store with a progress bar,
flow ids, times and durations as typed, the exit code for no data."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tracekit.errors import TracekitError, UsageError
from tracekit.plurals import counted
from tracekit.store import DEFAULT_PATH

NO_DATA = 3   # exit code: the window asked for holds no data (documented in `report --help`)


def db_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", type=Path, default=Path(DEFAULT_PATH),
                        help=f"the store file (default: ./{DEFAULT_PATH})")


def progress_bar(description: str):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    return Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                    TimeRemainingColumn(), transient=True, disable=not sys.stderr.isatty())


def open_analyzed(db: Path, timeout_s: float | None = None, *, capped: bool = True):
    """The store, read-only, its analysis tables brought up to date first if they lag;
    `capped`: DuckDB's memory held to what reading a window of the analysis needs."""
    from tracekit.analysis.ready import READER_DUCKDB_MEMORY_MIB, open_analyzed

    bar = None      # shown only when there is something to analyze (rich loads in ~0.1 s)

    def started(spans: int) -> None:
        nonlocal bar
        print(f"tracekit: analyzing {counted(spans, 'span')} not analyzed yet (once; `tracekit "
              "analyze` does it ahead)", file=sys.stderr)
        bar = progress_bar("analyzing new spans")
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


def flow_id_of(store, ident: str) -> str:
    """The flow `ident` names; naming none (or several) is a usage error."""
    from tracekit.analysis.stored_flow import find

    try:
        return find(store, ident)
    except TracekitError as exc:
        raise UsageError(str(exc)) from exc


def timestamp_ns(text: str) -> int:
    import pandas as pd

    try:
        return int(pd.Timestamp(text).value)
    except ValueError as exc:
        raise UsageError(f"bad timestamp {text!r}: use e.g. 2026-11-28T20:15:00") from exc


def duration(text: str | None) -> float | None:
    from tracekit.units import parse_duration

    if text is None:
        return None
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc


def write_text(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise TracekitError(f"cannot write {path}: {exc}") from None


def at_least_one(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)
