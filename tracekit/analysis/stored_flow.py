"""One flow as the analysis tables hold it: its row, its steps, its hops through brokers and
its critical path, read by the flow's id and start (a few row groups, whatever the store's
size) with no re-analysis. Light to import on purpose: `tracekit flow ID` reads this and
nothing else unless the flow failed (its failure origin is worked out from its spans, in
`present.failure_origin`)."""

from __future__ import annotations

from tracekit import queries

# Logs are written while their span runs; a little later for exporters that stamp them late.
LOG_SLACK_NS = 5 * 10**9

_LABELS = ("retries", "timeouts", "fast_fails", "compensations", "dead_letters", "skew_adjusted")


def find(store, ident: str) -> str:
    """A flow id from a flow id (or a unique prefix), a trace id in it, or a business key."""
    from tracekit.errors import TracekitError

    hits = [row["flow_id"] for row in store.rows(queries.load("analysis/find_flow"), {"ident": ident})]
    if len(hits) == 1:
        return hits[0]
    if not hits:
        raise TracekitError(f"no flow matches {ident!r}: give a flow id (or its start), a trace "
                            "id or a business key such as an order id; `tracekit flows` lists them")
    raise TracekitError(f"{ident!r} matches {len(hits)} flows; give more of the id")


def read(store, flow_id: str) -> dict:
    """The flow `flow_id` as the CLI and the report show it (`failure_origin` None: see
    `failing`); raises LookupError when the tables hold no such flow."""
    found = store.rows(queries.load("analysis/one_flow"), {"flow_id": flow_id})
    if not found:
        raise LookupError(flow_id)
    flow = found[0]
    start = flow["start_ns"]
    at = {"flow_id": flow_id, "start_ns": start}
    steps = store.rows(queries.load("analysis/one_flow_steps"),
                       {**at, "logs_to_ns": flow["end_ns"] + LOG_SLACK_NS})
    hops = store.rows(queries.load("analysis/one_flow_hops"), at)
    path = store.rows(queries.load("analysis/one_flow_path"), at)
    duration_ms = flow["duration_ms"]
    return {
        "flow_id": flow_id, "business_key": flow["business_key"], "style": flow["style"],
        "status": flow["status"], "duration_ms": duration_ms, "type": flow["type_name"],
        "evidence": {"sync_hops": flow["sync_hops"], "async_hops": flow["async_hops"],
                     "async_share": flow["async_share"], "coordinator": flow["coordinator"]},
        "traces": flow["traces"], "services": list(flow["services"] or ()),
        "missing_steps": list(flow["missing_steps"] or ()),
        "labels": {k: flow[k] for k in _LABELS},
        "steps": [{"at_ms": (s["start_ns"] - start) / 1e6,
                   "duration_ms": (s["end_ns"] - s["start_ns"]) / 1e6, "self_ms": s["self_ms"],
                   "service": s["service_name"], "name": s["name"], "kind": s["kind"],
                   "trace_id": s["trace_id"], "span_id": s["span_id"], "error": bool(s["error"]),
                   "error_logs": s["error_logs"], "edge": s["edge"], "via": s["via"],
                   "skew": s["skew_note"]}
                  for s in steps],
        "async_edges": [{"kind": h["kind"], "via": h["via"],
                         "from": f"{h['src_service']} {h['src_name']}",
                         "to": f"{h['dst_service']} {h['dst_name']}",
                         "destination": h["destination"], "wait_ms": h["wait_ms"]}
                        for h in hops],
        "critical_path": [{"service": p["service_name"], "name": p["name"], "segment": p["segment"],
                           "from_ms": (p["start_ns"] - start) / 1e6, "duration_ms": p["duration_ms"],
                           "share": p["duration_ms"] / duration_ms if duration_ms > 0 else 0.0}
                          for p in path],
        "failure_origin": None,
    }


def failing(detail: dict) -> bool:
    """Whether the flow has a failing span (by its status or an error log inside it): only
    then has it a failure origin to work out."""
    return any(s["error"] or s["error_logs"] for s in detail["steps"])
