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


def db_option(parser: argparse.ArgumentParser, lake: bool = False) -> None:
    parser.add_argument("--db", type=Path, default=Path(DEFAULT_PATH),
                        help=f"the store file (default: ./{DEFAULT_PATH})")
    if lake:
        parser.add_argument("--lake", metavar="URI",
                            help="read the lake instead of --db: its spans and logs, and the "
                                 "analysis `tracekit analyze --lake URI --engine spark` last "
                                 "committed (docs/guides/lake.md)")


def progress_bar(description: str):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    return Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                    TimeRemainingColumn(), transient=True, disable=not sys.stderr.isatty())


def open_analyzed(db: Path, timeout_s: float | None = None, *, capped: bool = True,
                  lake: str | None = None):
    """The store, read-only, its analysis tables brought up to date first if they lag;
    `capped`: DuckDB's memory held to what reading a window of the analysis needs. With
    `lake`, the lake instead, with the analysis its last Spark run committed."""
    from tracekit.analysis.ready import READER_DUCKDB_MEMORY_MIB, open_analyzed

    if lake is not None:
        return open_analyzed_lake(lake, timeout_s, READER_DUCKDB_MEMORY_MIB if capped else None)

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


def open_analyzed_lake(uri: str, timeout_s: float | None, memory_limit_mib: int | None):
    """The lake, read-only; an error that says what to run when no Spark analysis committed
    its tables yet."""
    import tracekit

    store = tracekit.open(lake=uri, timeout_s=timeout_s, memory_limit_mib=memory_limit_mib)
    if not store.analyzed:
        store.close()
        raise TracekitError(f"the lake {uri} holds no flow analysis yet: run `tracekit analyze "
                            f"--lake {uri} --engine spark` first")
    return store


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
