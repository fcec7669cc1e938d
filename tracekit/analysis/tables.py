"""The analyzer's results as SQL tables: flows, flow_spans, flow_edges, flow_types,
critical_path and service_edges, registered on a DuckDB connection when a query names them.

The analysis of a store is kept while the store does not change (same last batch), so a
long-lived process (the collector's query endpoint, the terminal UI) pays for it once per
change, and a query that names none of these tables pays nothing.
"""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd

from tracekit.analysis import referenced, worker
from tracekit.analysis.model import CALL, Analysis


_cache: dict[str, tuple[tuple, dict[str, pd.DataFrame], int]] = {}
_lock = threading.Lock()
_states: dict[str, object] = {}     # db → LiveAnalysis, in the process that computes


def compute(db: str, base_batch: int, spans_arrow):
    """Bring the analysis of `db` up to date with spans committed after `base_batch`; returns
    (tables, last batch analyzed), or None when this process no longer holds the analysis
    `base_batch` refers to (then the caller sends every span). Runs in any process."""
    from tracekit.analysis.incremental import LiveAnalysis
    from tracekit.analysis.spans import to_frame

    live = _states.get(db)
    if base_batch == 0:
        live = _states[db] = LiveAnalysis()
    elif live is None or live.last_batch != base_batch:
        return None
    analysis = live.update(to_frame(spans_arrow))
    return build(analysis, live.paths), live.last_batch


def _ts(ns) -> pd.Series:
    return pd.to_datetime(pd.Series(ns, dtype="int64"), unit="ns")


def build(analysis: Analysis, paths: pd.DataFrame) -> dict[str, pd.DataFrame]:
    flows, spans, edges = analysis.flows, analysis.spans, analysis.edges
    types = analysis.flow_types
    type_names = dict(zip(types["type_id"], types["name"])) if not types.empty else {}
    out = {}
    out["flows"] = pd.DataFrame({
        "flow_id": flows["flow_id"], "start_time": _ts(flows["start_ns"]),
        "end_time": _ts(flows["end_ns"]), "duration_ms": flows["duration_ns"] / 1e6,
        "status": flows["status"], "failed": flows["failed"], "style": flows["style"],
        "async_share": flows["async_share"], "sync_hops": flows["sync_hops"],
        "async_hops": flows["async_hops"], "coordinator": flows["coordinator"],
        "type_id": flows["type_id"], "type_name": flows["type_id"].map(type_names),
        "root_service": flows["root_service"], "root_name": flows["root_name"],
        "business_key": flows["business_key"], "traces": flows["traces"],
        "spans": flows["spans"], "errors": flows["errors"], "services": flows["services"],
        "retries": flows["retries"], "timeouts": flows["timeouts"],
        "fast_fails": flows["fast_fails"], "compensations": flows["compensations"],
        "dead_letters": flows["dead_letters"], "missing_steps": flows["missing_steps"],
        "skew_adjusted": flows["skew_adjusted"],
    })
    out["flow_spans"] = pd.DataFrame({
        "flow_id": spans["flow_id"], "trace_id": spans["trace_id"], "span_id": spans["span_id"],
        "service_name": spans["service_name"], "name": spans["name"], "kind": spans["kind"],
        "start_time": _ts(spans["start_adj"]), "end_time": _ts(spans["end_adj"]),
        "self_ms": spans["self_ns"] / 1e6, "error": spans["error"],
        "skew_note": spans["skew_note"],
    })
    src, dst = _key_parts(edges["src"]), _key_parts(edges["dst"])
    out["flow_edges"] = pd.DataFrame({
        "flow_id": edges["flow_id"], "kind": edges["kind"], "via": edges["via"],
        "src_trace_id": src[0], "src_span_id": src[1], "src_service": edges["src_service"],
        "src_name": edges["src_name"], "dst_trace_id": dst[0], "dst_span_id": dst[1],
        "dst_service": edges["dst_service"], "dst_name": edges["dst_name"],
        "wait_ms": pd.to_numeric(edges["wait_ns"], errors="coerce") / 1e6,
        "destination": edges["destination"],
    })
    out["flow_types"] = types.copy() if not types.empty else pd.DataFrame(columns=["type_id", "name"])
    if not types.empty:
        steps = dominant_steps(analysis, paths)
        listed = steps.groupby("type_id").apply(
            lambda g: [{"service": r.service_name, "name": r.name, "segment": r.segment,
                        "share": round(float(r.share), 4)} for r in g.itertuples()],
            include_groups=False)
        out["flow_types"]["critical_steps"] = out["flow_types"]["type_id"].map(listed)
    cp = paths.copy()
    parts = _key_parts(cp["span"]) if "span" in cp else ([], [])
    out["critical_path"] = pd.DataFrame({
        "flow_id": cp.get("flow_id", []), "seq": cp.get("seq", []),
        "trace_id": parts[0], "span_id": parts[1],
        "service_name": cp["service_name"], "name": cp["name"], "segment": cp["segment"],
        "start_time": _ts(cp["start_ns"]), "end_time": _ts(cp["end_ns"]),
        "duration_ms": cp["duration_ns"] / 1e6,
    })
    out["service_edges"] = service_edges(analysis)
    return out


def _key_parts(keys: pd.Series) -> tuple[list[str], list[str]]:
    """("trace:span" keys) → (trace ids, span ids); empty lists for no keys."""
    pairs = [key.partition(":") for key in keys]
    return [trace for trace, _, _ in pairs], [span for _, _, span in pairs]


def dominant_steps(analysis: Analysis, paths: pd.DataFrame, top: int = 3) -> pd.DataFrame:
    """Per flow type, the steps that take the largest share of its flows' critical paths."""
    if paths.empty:
        return pd.DataFrame(columns=["type_id", "service_name", "name", "segment", "share"])
    type_of = analysis.flows.set_index("flow_id")["type_id"]
    frame = paths.assign(type_id=paths["flow_id"].map(type_of))
    per_step = frame.groupby(["type_id", "service_name", "name", "segment"])["duration_ns"].sum()
    per_type = frame.groupby("type_id")["duration_ns"].sum()
    share = (per_step / per_step.index.get_level_values("type_id").map(per_type).to_numpy())
    ranked = share.rename("share").reset_index().sort_values(["type_id", "share"],
                                                             ascending=[True, False])
    return ranked.groupby("type_id").head(top).reset_index(drop=True)


def service_edges(analysis: Analysis) -> pd.DataFrame:
    """The service graph: synchronous calls between services, and asynchronous hops through
    broker nodes ('broker:<destination>'), with counts, errors and latency percentiles."""
    edges = analysis.edges
    info = analysis.spans.set_index("key")
    dst_error = edges["dst"].map(info["error"]).fillna(False).astype(bool)
    dst_ms = (edges["dst"].map(info["end_adj"]) - edges["dst"].map(info["start_adj"])) / 1e6
    frame = pd.DataFrame({"src": edges["src_service"], "dst": edges["dst_service"],
                          "kind": edges["kind"], "error": dst_error, "ms": dst_ms,
                          "wait_ms": pd.to_numeric(edges["wait_ns"], errors="coerce") / 1e6,
                          "destination": edges["destination"], "src_span": edges["src"]})
    sync = frame[(frame["kind"] == CALL) & (frame["src"] != frame["dst"])].assign(edge="sync")
    asynchronous = frame[frame["kind"] != CALL]
    broker = "broker:" + asynchronous["destination"].fillna("?")
    into = asynchronous.assign(dst=broker, edge="async", error=False, ms=np.nan)
    out_of = asynchronous.assign(src=broker, edge="async", ms=asynchronous["wait_ms"])
    # One publish reaches every consumer: count the hop into the broker once per producer
    # span (not once per distinct row: equal waits made different messages look the same).
    rows = pd.concat([sync, into.drop_duplicates(["src_span", "dst"]), out_of], ignore_index=True)
    grouped = rows.groupby(["src", "dst", "edge"])
    result = pd.DataFrame({
        "calls": grouped.size(), "errors": grouped["error"].sum().astype(int),
        "p50_ms": grouped["ms"].quantile(0.5), "p95_ms": grouped["ms"].quantile(0.95),
        "p99_ms": grouped["ms"].quantile(0.99)}).reset_index()
    result["error_rate"] = result["errors"] / result["calls"]
    return result.rename(columns={"src": "src_service", "dst": "dst_service", "edge": "kind"})


class _CursorStore:
    """The analyzer's loader reads through the connection the query runs on."""

    def __init__(self, conn) -> None:
        self.conn = conn

    def arrow(self, sql: str, params=None):
        return self.conn.sql(sql, params=params or {}).to_arrow_table()


def tables_for(conn) -> dict[str, pd.DataFrame]:
    """The analysis tables of the store `conn` reads, kept up to date incrementally: only the
    spans committed since the last call are read, and only the flows they touch analyzed."""
    from tracekit.analysis.spans import load_arrow

    [(db, )] = conn.execute("SELECT current_database()").fetchall()
    version = tuple(conn.execute("SELECT coalesce(max(batch_id), 0), count(*) FROM ingest_batches")
                    .fetchall()[0])
    with _lock:
        cached = _cache.get(db)
    if cached and cached[0] == version:
        return cached[1]
    base = cached[2] if cached else 0
    pool = worker.executor()

    def run(since: int):
        spans = load_arrow(_CursorStore(conn), since_batch=since)
        return pool.submit(compute, db, since, spans).result() if pool is not None \
            else compute(db, since, spans)

    result = run(base)
    if result is None:          # the worker restarted and lost the analysis: start over
        result = run(0)
    tables, last_batch = result
    with _lock:
        _cache[db] = (version, tables, last_batch)
    return tables


def attach_if_referenced(conn, sql: str) -> None:
    """Register the analysis tables `sql` reads (FROM/JOIN name) on `conn`."""
    names = referenced(sql)
    if not names:
        return
    tables = tables_for(conn)
    for name in names:
        conn.register(name, tables[name])
