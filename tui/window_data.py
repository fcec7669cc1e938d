"""What the views list for a time window, read from the store's analysis tables: the flow
types, the flows, the service graph, and the root-cause ranking. Pure functions of a store;
the views call them from worker threads."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tui.data import sql

SPARK = "▁▂▃▄▅▆▇█"
FLOWS_SHOWN = 10_000         # rows the flows list holds (a search narrows the rest)
FAILED_SHOWN = 500           # rows of the failures view's list
ALL_TIME = (0, 2**62)        # the window "all": every flow start the store can hold
CAUSES_LENGTH_NS = 5 * 60 * 1_000_000_000     # the ranking's window when the window is "all"


def _bounds(window: tuple[int, int] | None) -> dict:
    start, end = window or ALL_TIME
    return {"start_ns": int(start), "end_ns": int(end)}


# --- overview: flow types ------------------------------------------------------------------

# Sort keys and their ORDER BY: SQL text from this fixed list only.
TYPE_ORDER = {
    "flows": "p.flows DESC, name",
    "error_rate": "p.error_rate DESC, name",
    "p95_ms": "p.p95_ms DESC, name",
    "p50_ms": "p.p50_ms DESC, name",
    "name": "name, p.type_id",
}
TYPE_SORTS = tuple(TYPE_ORDER)
TYPE_COLUMNS = ["type_id", "name", "style", "flows", "failed", "error_rate", "p50_ms", "p95_ms",
                "trend", "error_trend", "p95_trend"]


def sparkline(values, top: float | None = None) -> str:
    """One character per value, the tallest at `top` (default: the largest value)."""
    values = np.asarray(values, dtype=float)
    if top is None:
        top = values.max() if len(values) else 0
    if top <= 0:
        return SPARK[0] * len(values)
    return "".join(SPARK[min(len(SPARK) - 1, int(v / top * (len(SPARK) - 1) + 0.999))] if v else " "
                   for v in values)


def _trends(per_bucket: list[dict], buckets: int) -> tuple[str, str, str]:
    """Sparklines over the window's buckets: flows started, the share of them that failed (a
    full block: all of them), and their p95 duration (a bucket without flows stays blank)."""
    flows, error_rate, p95 = np.zeros(buckets), np.zeros(buckets), np.zeros(buckets)
    for b in per_bucket or ():
        i = int(b["bucket"])
        flows[i] = b["flows"]
        error_rate[i] = b["failed"] / b["flows"] if b["flows"] else 0
        p95[i] = b["p95_ms"] or 0
    def blank_where_none(line: str) -> str:     # a bucket with flows shows, if only at ▁
        return "".join((c if c != " " else SPARK[0]) if flows[i] else " " for i, c in enumerate(line))

    return sparkline(flows), blank_where_none(sparkline(error_rate, top=1.0)), blank_where_none(sparkline(p95))


def type_rows(store, window: tuple[int, int] | None, text: str = "", sort: str = "flows",
              buckets: int = 16) -> pd.DataFrame:
    """One row per flow type with flows started in the window: style, flows, error rate,
    p50/p95, and sparklines over the window of flows started, their error rate and p95."""
    query = sql("flow_types").replace("{order}", TYPE_ORDER[sort])
    from_to = window or (None, None)
    rows = store.arrow(query, {**_bounds(window), "from_ns": from_to[0], "to_ns": from_to[1],
                               "buckets": buckets, "text": text.strip()}).to_pylist()
    for row in rows:
        row["trend"], row["error_trend"], row["p95_trend"] = _trends(row["trend"], buckets)
    return pd.DataFrame(rows, columns=TYPE_COLUMNS)


# --- flows list -------------------------------------------------------------------------------

FLOW_SORTS = ("start", "duration", "errors")
# (sort, descending) → ORDER BY: SQL text from this fixed list only.
FLOW_ORDER = {
    ("start", True): "start_time DESC, flow_id",
    ("start", False): "start_time, flow_id",
    ("duration", True): "duration_ms DESC, start_time DESC, flow_id",
    ("duration", False): "duration_ms, start_time DESC, flow_id",
    ("errors", True): "errors DESC, start_time DESC, flow_id",
    ("errors", False): "errors, start_time DESC, flow_id",
}
FLOW_COLUMNS = ["flow_id", "start_ns", "duration_ms", "status", "style", "type", "key",
                "traces", "spans", "errors"]


@dataclass(frozen=True)
class FlowQuery:
    type_id: str | None = None
    search: str = ""
    window: tuple[int, int] | None = None
    failed_only: bool = False
    sort: str = "start"
    descending: bool = True


def flow_rows(store, query: FlowQuery, limit: int = FLOWS_SHOWN) -> tuple[pd.DataFrame, int]:
    """The flows matching `query`, sorted, the first `limit` of them, and how many matched.
    A search matches a flow id (prefix), a trace id, a business key or a service; when
    nothing does, text in an error (status message or exception) of the window's spans."""
    params = {**_bounds(query.window), "type_id": query.type_id, "failed": query.failed_only,
              "limit": limit}
    needle = query.search.strip()
    if not needle:
        return _flows(store, "", query, params)
    params["search"] = needle
    rows, total = _flows(store, sql("flow_search"), query, params)
    return (rows, total) if total else _flows(store, sql("error_search"), query, params)


def _flows(store, condition: str, query: FlowQuery, params: dict) -> tuple[pd.DataFrame, int]:
    text = (sql("flows").replace("{search}", condition)
            .replace("{order}", FLOW_ORDER[(query.sort, query.descending)]))
    table = store.arrow(text, params)
    total = table.column("total")[0].as_py() if table.num_rows else 0
    return table.drop_columns(["total"]).to_pandas(), total


# --- service map ---------------------------------------------------------------------------------


def service_map(store, window: tuple[int, int] | None) -> pd.DataFrame:
    """The service graph of the flows started in the window, grouped by caller."""
    return store.df(sql("service_edges"), _bounds(window))


# --- failures and root causes ----------------------------------------------------------------------


def cause_windows(window: tuple[int, int] | None, data_range: tuple[int, int] | None):
    """(window, baseline) the ranking compares: the window against the same length just
    before it. With no window, the newer half of the data against the older half, at most
    the last CAUSES_LENGTH_NS against as long before (the whole store is never read); `causes`
    then looks for the incident in that range (incident_windows)."""
    if window is not None:
        return window, (window[0] - (window[1] - window[0]), window[0])
    if data_range is None:
        return None, None
    end = data_range[1] + 1
    length = min((end - data_range[0]) // 2, CAUSES_LENGTH_NS)
    return (end - length, end), (end - 2 * length, end - length)


def incident_windows(store, newer: tuple[int, int], older: tuple[int, int]):
    """The strongest shift the report's window detection finds over both halves, against as
    long just before it; else (newer, older) as given. A fault that began before the newer
    half would otherwise sit on both sides of the comparison."""
    from tracekit.report.window import detect

    found = detect(store, (older[0], newer[1])).window
    if found is None:
        return newer, older
    return (found.start_ns, found.end_ns), (2 * found.start_ns - found.end_ns, found.start_ns)


@dataclass(frozen=True)
class Causes:
    """The root-cause ranking of a window against its baseline, what is different about its
    failing and slow flows, and what the comparison cannot tell."""

    ranked: list
    window: tuple | None
    baseline: tuple | None
    different: tuple = ()
    limits: tuple[str, ...] = ()


def causes(store, window: tuple[int, int] | None) -> Causes:
    """The root-cause ranking for the window against its baseline (see cause_windows), from
    an analysis of those flows' spans only, as `tracekit causes` gives it."""
    from tracekit.analysis.causes import rank
    from tracekit.analysis.critical_paths import critical_paths
    from tracekit.analysis.windowed import (NO_BASELINE_LOGS, baseline_without_logs, data_range,
                                            window_analysis)
    from tracekit.report.different import of_window

    used, baseline = cause_windows(window, data_range(store) if window is None else None)
    if used is None:
        return Causes([], None, None)
    if window is None:      # "all": the incident the report would find, else the halves
        used, baseline = incident_windows(store, used, baseline)
    analysis = window_analysis(store, min(used[0], baseline[0]), max(used[1], baseline[1]))
    if analysis.flows.empty:
        return Causes([], used, baseline)
    unlogged = baseline_without_logs(store, used, baseline)
    return Causes(rank(analysis, critical_paths(analysis), used, baseline,
                       baseline_logged=not unlogged),
                  used, baseline, of_window(store, used, baseline),
                  (NO_BASELINE_LOGS,) if unlogged else ())
