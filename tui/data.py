"""The store as the UI reads it outside the analysis of a window: its figures, how far its
analysis tables are, one span's detail, the SQL console, exports and reports. Pure functions
returning typed records; nothing here imports Textual, the views call these from workers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tracekit import queries

SQL_ROWS_SHOWN = 10_000      # rows the SQL console fetches; export writes them all
LOGS_SHOWN = 500


def sql(name: str) -> str:
    """The text of tui/sql/NAME.sql."""
    return queries.load(name, package="tui")


# --- the store's figures: the first paint and every live tick ----------------------------


@dataclass(frozen=True)
class StoreStats:
    path: str
    spans: int
    last_batch: int
    first_ns: int | None
    last_ns: int | None
    services: tuple[str, ...]
    via_collector: bool
    analyzed_through: int | None = None     # the last ingest batch the analysis tables hold
    flows: int | None = None                # flows in the analysis tables
    behind: int | None = None               # spans they lack (None: the tables are missing)
    types: int | None = None                # a fingerprint of the flow types' names and styles

    @property
    def revision(self) -> tuple | None:
        """Changes when the analysis tables do (None: there are none to read)."""
        if self.analyzed_through is None:
            return None
        return (self.analyzed_through, self.flows, self.types)

    @property
    def needs_analysis(self) -> bool:
        """A local store whose analysis tables lag its spans (a collector keeps its own)."""
        return not self.via_collector and self.behind != 0


def store_stats(store) -> StoreStats:
    from tracekit.analysis.ready import behind
    from tracekit.errors import QueryError
    from tracekit.reading import LocalStore

    row = store.arrow(sql("stats")).to_pylist()[0]
    try:
        progress = store.arrow(sql("progress")).to_pylist()[0]
    except QueryError:          # written before the store kept its analysis (schema 5)
        progress = {"analyzed_through": None, "flows": None, "types": None}
    return StoreStats(str(store.path), int(row["spans"] or 0), int(row["last_batch"] or 0),
                      row["first_ns"], row["last_ns"], tuple(row["services"] or ()),
                      not isinstance(store, LocalStore), progress["analyzed_through"],
                      progress["flows"], behind(store), progress["types"])


# --- time windows --------------------------------------------------------------------------

WINDOWS = (("all", None), ("last 1m", 60), ("last 5m", 300), ("last 15m", 900), ("last 1h", 3600),
           ("last 6h", 6 * 3600), ("last 1d", 24 * 3600))

# Where the UI opens: all of a store that holds at most this much time, else its last hour (as
# Jaeger's search does): over days of data the window "all" aggregates every flow stored.
OPENING_WINDOW = "last 1h"


def opening_window(first_ns: int | None, last_ns: int | None) -> str:
    """The window the UI opens on for data from `first_ns` to `last_ns`."""
    if first_ns is None or last_ns is None:
        return "all"
    return "all" if last_ns - first_ns <= dict(WINDOWS)[OPENING_WINDOW] * 1_000_000_000 else OPENING_WINDOW


def window_label(text: str) -> str:
    """A window label from what a person types: `all`, `1h`, `last 15m`."""
    label = text.strip().lower()
    label = label if label == "all" or label.startswith("last ") else f"last {label}"
    if label not in dict(WINDOWS):
        raise ValueError(f"no window {text!r}: give one of "
                         + ", ".join(w.removeprefix("last ") for w, _ in WINDOWS))
    return label


def window_bounds(label: str, last_ns: int | None) -> tuple[int, int] | None:
    """(start, end) ns for a window label, counted back from the newest data (not the clock:
    a store from yesterday still shows its last minutes)."""
    seconds = dict(WINDOWS).get(label)
    if seconds is None or last_ns is None:
        return None
    return (last_ns - seconds * 1_000_000_000, last_ns + 1)


# --- one span: detail and logs --------------------------------------------------------------------


@dataclass(frozen=True)
class LogLine:
    ts_ns: int
    span_id: str | None
    service: str
    severity: str
    body: str


@dataclass(frozen=True)
class SpanDetail:
    trace_id: str
    span_id: str
    fields: dict
    attributes: dict
    resource: dict
    events: list
    links: list                       # [{"trace_id", "span_id", "attributes"}]
    linked_from: list                 # spans that link to this one
    logs: list[LogLine]

    @property
    def span_logs(self) -> list[LogLine]:
        return [line for line in self.logs if line.span_id == self.span_id]


def _json(text) -> object:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def span_detail(store, trace_id: str, span_id: str) -> SpanDetail | None:
    found = store.arrow(sql("span"), {"trace_id": trace_id, "span_id": span_id}).to_pylist()
    if not found:
        return None
    row = found[0]
    logs = store.arrow(sql("trace_logs"), {"trace_id": trace_id, "limit": LOGS_SHOWN}).to_pylist()
    flow = store.arrow(sql("flow_of_trace"), {"trace_id": trace_id}).to_pylist()
    back = store.arrow(sql("backlinks"), {"trace_id": trace_id, "span_id": span_id,
                                          **flow[0]}).to_pylist() if flow else []
    fields = {k: row[k] for k in ("name", "kind", "service_name", "status_code", "status_message",
                                  "start_ns", "end_ns", "duration_ns", "parent_span_id",
                                  "scope_name", "scope_version")}
    return SpanDetail(
        trace_id, span_id, fields, _json(row["attributes"]) or {}, _json(row["resource"]) or {},
        _json(row["events"]) or [],
        [{"trace_id": link.get("trace_id"), "span_id": link.get("span_id"),
          "attributes": link.get("attributes")} for link in (_json(row["links"]) or [])],
        back,
        [LogLine(int(r["ts_ns"]), r["span_id"], r["service_name"], r["severity_text"] or "",
                 r["body"] or "") for r in logs])


def flow_of_trace(store, trace_id: str) -> str | None:
    """The stored flow a trace belongs to, or None."""
    found = store.arrow(sql("flow_of_trace"), {"trace_id": trace_id}).to_pylist()
    return found[0]["flow_id"] if found else None


# --- SQL console ----------------------------------------------------------------------------------------


def run_sql(store, query: str, max_rows: int | None = SQL_ROWS_SHOWN, cancel=None):
    """Run read-only SQL on the store, its analysis tables included; one row more than
    `max_rows` tells that there are more; `cancel` (a tracekit.readonly.Cancellation) stops it."""
    return store.arrow(query, max_rows=None if max_rows is None else max_rows + 1, cancel=cancel)


# The analysis tables as documented (docs/guides/flows.md), listed apart from the spans and
# logs; the tables they are kept in, apart again.
ANALYSIS_TABLES = ("flows", "flow_spans", "flow_edges", "flow_types", "critical_path",
                   "service_edges")
ANALYSIS_STORAGE = ("flow_rows", "flow_type_rows", "flow_traces", "flow_links",
                    "flow_message_ids", "flow_business_keys", "flow_type_steps", "flow_shapes",
                    "analysis_progress", "analysis_forget")


def schema(store) -> dict[str, list[tuple[str, str]]]:
    out: dict[str, list[tuple[str, str]]] = {}
    for row in store.arrow(sql("columns")).to_pylist():
        out.setdefault(row["table_name"], []).append((row["column_name"], row["data_type"]))
    return out


def attribute_keys(store) -> list[str]:
    """The keys the stored spans' attributes hold (none in a store older than the register)."""
    from tracekit.errors import QueryError

    try:
        return [row["key"] for row in store.arrow(sql("attribute_keys")).to_pylist()]
    except QueryError:
        return []


EXPORT_FORMATS = {".csv": "csv", ".parquet": "parquet", ".json": "json"}


def export_format(path: str | Path) -> str:
    """The format a file name asks for, by its extension."""
    fmt = EXPORT_FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise ValueError(f"{Path(path).name}: end the name with {', '.join(EXPORT_FORMATS)} "
                         "to choose the format")
    return fmt


def default_export_path(store_path: str, stamp: str, suffix: str = ".csv") -> Path:
    return Path(store_path).resolve().parent / f"tracekit-query-{stamp}{suffix}"


def export(table, target: str | Path) -> Path:
    """Write a result as CSV, Parquet or JSON (by the file's extension), as `tracekit sql
    --format` writes it."""
    from tracekit import output

    target = Path(target).expanduser()
    fmt = export_format(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as out:
        output.write(table, fmt, out)
    return target


# --- incident reports ------------------------------------------------------------------------------------


def reports_available() -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec("tracekit.report") is not None
    except ModuleNotFoundError:
        return False


def write_report(store, store_path: str, stamp: str, *, window=None, flow_id=None) -> Path:
    from tracekit.report import build, render

    report = build(store, window=window, flow_id=flow_id)
    target = Path(store_path).resolve().parent / f"tracekit-report-{stamp}.md"
    target.write_text(render(report, "md"))
    return target
