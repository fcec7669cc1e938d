"""The analyzer's results as the rows of the store's analysis tables (flows, flow_spans,
flow_edges, critical_path; flow_types and service_edges over them), and `build`: all six
from one in-memory analysis, the reference the stored tables are tested against.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tracekit.analysis.model import CALL, Analysis


def _ts(ns) -> pd.Series:
    return pd.to_datetime(pd.Series(ns, dtype="int64"), unit="ns")


def flow_rows(flows: pd.DataFrame) -> pd.DataFrame:
    """Rows of `flow_rows`: each flow's own results (status and type name are joined in by
    the `flows` view, as they depend on other flows and on the time)."""
    return pd.DataFrame({
        "flow_id": flows["flow_id"], "start_time": _ts(flows["start_ns"]),
        "end_time": _ts(flows["end_ns"]), "duration_ms": flows["duration_ns"] / 1e6,
        "failed": flows["failed"], "style": flows["style"],
        "async_share": flows["async_share"], "sync_hops": flows["sync_hops"],
        "async_hops": flows["async_hops"], "coordinator": flows["coordinator"],
        "type_id": flows["type_id"], "root_service": flows["root_service"],
        "root_name": flows["root_name"], "root_span": flows["root_span"],
        "business_key": flows["business_key"], "traces": flows["traces"],
        "spans": flows["spans"], "errors": flows["errors"], "services": flows["services"],
        "retries": flows["retries"], "timeouts": flows["timeouts"],
        "fast_fails": flows["fast_fails"], "compensations": flows["compensations"],
        "dead_letters": flows["dead_letters"], "skew_adjusted": flows["skew_adjusted"],
    })


def flow_span_rows(spans: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "flow_id": spans["flow_id"], "trace_id": spans["trace_id"], "span_id": spans["span_id"],
        "service_name": spans["service_name"], "name": spans["name"], "kind": spans["kind"],
        "start_time": _ts(spans["start_adj"]), "end_time": _ts(spans["end_adj"]),
        "self_ms": spans["self_ns"] / 1e6, "error": spans["error"],
        "skew_note": spans["skew_note"],
    })


def flow_edge_rows(analysis: Analysis) -> pd.DataFrame:
    """Rows of `flow_edges`, with the receiving span's duration and error (for the service
    graph) and the flow's start (so a flow's rows are found by time)."""
    edges, spans = analysis.edges, analysis.spans
    src_pos = edges["src_pos"].to_numpy(dtype=np.int64)
    dst_pos = edges["dst_pos"].to_numpy(dtype=np.int64)
    trace_ids, span_ids = spans["trace_id"].to_numpy(), spans["span_id"].to_numpy()
    src, dst = (trace_ids[src_pos], span_ids[src_pos]), (trace_ids[dst_pos], span_ids[dst_pos])
    flow_start = analysis.flows.set_index("flow_id")["start_ns"]
    return pd.DataFrame({
        "flow_id": edges["flow_id"], "kind": edges["kind"], "via": edges["via"],
        "src_trace_id": src[0], "src_span_id": src[1], "src_service": edges["src_service"],
        "src_name": edges["src_name"], "dst_trace_id": dst[0], "dst_span_id": dst[1],
        "dst_service": edges["dst_service"], "dst_name": edges["dst_name"],
        "wait_ms": pd.to_numeric(edges["wait_ns"], errors="coerce") / 1e6,
        "destination": edges["destination"],
        "dst_ms": (spans["end_adj"].to_numpy()[dst_pos] - spans["start_adj"].to_numpy()[dst_pos]) / 1e6,
        "dst_error": spans["error"].to_numpy(dtype=bool)[dst_pos],
        "flow_start": _ts(edges["flow_id"].map(flow_start).to_numpy(dtype=np.int64)),
    })


def critical_path_rows(paths: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "flow_id": paths.get("flow_id", []), "seq": paths.get("seq", []),
        "trace_id": paths.get("trace_id", []), "span_id": paths.get("span_id", []),
        "service_name": paths["service_name"], "name": paths["name"], "segment": paths["segment"],
        "start_time": _ts(paths["start_ns"]), "end_time": _ts(paths["end_ns"]),
        "duration_ms": paths["duration_ns"] / 1e6,
    })


def build(analysis: Analysis, paths: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The six analysis tables of one in-memory analysis, as the store documents them."""
    flows, types = analysis.flows, analysis.flow_types
    type_names = dict(zip(types["type_id"], types["name"])) if not types.empty else {}
    out = {}
    out["flows"] = flow_rows(flows).drop(columns=["root_span"])
    out["flows"].insert(4, "status", flows["status"])
    out["flows"].insert(12, "type_name", flows["type_id"].map(type_names))
    out["flows"]["missing_steps"] = flows["missing_steps"]
    out["flow_spans"] = flow_span_rows(analysis.spans)
    out["flow_edges"] = flow_edge_rows(analysis).drop(columns=["dst_ms", "dst_error", "flow_start"])
    out["flow_types"] = types.copy() if not types.empty else pd.DataFrame(columns=["type_id", "name"])
    if not types.empty:
        steps = dominant_steps(analysis, paths)
        listed = steps.groupby("type_id").apply(
            lambda g: [{"service": r.service_name, "name": r.name, "segment": r.segment,
                        "share": round(float(r.share), 4)} for r in g.itertuples()],
            include_groups=False)
        out["flow_types"]["critical_steps"] = out["flow_types"]["type_id"].map(listed)
    out["critical_path"] = critical_path_rows(paths)
    out["service_edges"] = service_edges(analysis)
    return out


def dominant_steps(analysis: Analysis, paths: pd.DataFrame, top: int = 3) -> pd.DataFrame:
    """Per flow type, the steps that take the largest share of its flows' critical paths."""
    if paths.empty:
        return pd.DataFrame(columns=["type_id", "service_name", "name", "segment", "share"])
    type_of = analysis.flows.set_index("flow_id")["type_id"]
    frame = paths.assign(type_id=paths["flow_id"].map(type_of))
    per_step = frame.groupby(["type_id", "service_name", "name", "segment"])["duration_ns"].sum()
    per_type = frame.groupby("type_id")["duration_ns"].sum()
    share = (per_step / per_step.index.get_level_values("type_id").map(per_type).to_numpy())
    ranked = share.rename("share").reset_index().sort_values(
        ["type_id", "share", "service_name", "name", "segment"],
        ascending=[True, False, True, True, True], kind="stable")
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
