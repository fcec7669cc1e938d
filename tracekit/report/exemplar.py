"""The report's exemplar: one flow of the incident, its detail, and its critical path against
a healthy flow's (`tracekit.report.assemble` picks the flow)."""

from __future__ import annotations

import json

from tracekit.report import queries
from tracekit.report.mermaid import sequence
from tracekit.report.model import Exemplar, PathComparison, PathStep, Window


def exemplar_of(store, analysis, flow_id: str) -> Exemplar:
    """The exemplar flow as the report shows it: its detail, failure origin, span attributes
    and sequence diagram."""
    from tracekit.analysis import stored_flow
    from tracekit.analysis.present import failure_origin

    detail = stored_flow.read(store, flow_id)
    origin = failure_origin(analysis, flow_id)
    if origin:
        trace_id, span_id = origin["trace_id"], origin["span_id"]
    else:
        root = analysis.flows.set_index("flow_id").at[flow_id, "root_span"]
        trace_id, span_id = str(root).split(":", 1)
    start = int(analysis.flows.set_index("flow_id").at[flow_id, "start_ns"])
    span = queries.run(store, "exemplar_span", {"trace_id": trace_id, "span_id": span_id,
                                                "from": queries.timestamp(start)}).first
    attributes = {}
    if span.get("attributes"):
        stored = json.loads(span["attributes"])
        if isinstance(stored, dict):
            attributes = {k: v if isinstance(v, str) else json.dumps(v) for k, v in stored.items()}
    return Exemplar(flow_id, detail["status"], detail["type"], detail["business_key"],
                    float(detail["duration_ms"]), _plain(origin), attributes,
                    sequence(analysis, flow_id))


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if hasattr(value, "item"):
        return value.item()
    return value


def path_comparison(store, analysis, flow_id: str, win: Window) -> PathComparison:
    """The exemplar's critical path against a healthy flow of the same type (else of the same
    workflow): a complete one of median duration, outside the window when there is one."""
    flows = analysis.flows
    me = flows.set_index("flow_id").loc[flow_id]
    healthy = flows[(flows["status"] == "complete") & (flows["flow_id"] != flow_id)]
    outside = (healthy["start_ns"] < win.start_ns) | (healthy["start_ns"] >= win.end_ns)
    candidates = None
    for pool in (healthy[(healthy["type_id"] == me["type_id"]) & outside],
                 healthy[healthy["type_id"] == me["type_id"]],
                 healthy[(healthy["root_service"] == me["root_service"])
                         & (healthy["root_name"] == me["root_name"]) & outside],
                 healthy[(healthy["root_service"] == me["root_service"])
                         & (healthy["root_name"] == me["root_name"])]):
        if len(pool):
            candidates = pool
            break
    other = None
    if candidates is not None:
        ordered = candidates.sort_values(["duration_ns", "flow_id"])
        other = str(ordered["flow_id"].iloc[len(ordered) // 2])
    starts = flows.set_index("flow_id")["start_ns"]
    earliest = min(int(starts.at[flow_id]), int(starts.at[other]) if other else int(starts.at[flow_id]))
    result = queries.run(store, "path", {"exemplar": flow_id, "healthy": other or flow_id,
                                         "from": queries.timestamp(earliest)})
    steps = tuple(PathStep(r["service_name"], r["name"], r["segment"], r["exemplar_ms"],
                           r["healthy_ms"] if other else 0.0) for r in result.rows)
    grew = max(steps, key=lambda s: s.delta_ms) if steps and other else None
    healthy_ms = (float(flows.set_index("flow_id").at[other, "duration_ns"]) / 1e6) if other else None
    return PathComparison(flow_id, other, str(me["status"]), float(me["duration_ns"]) / 1e6,
                          healthy_ms, steps, grew, result.figure("critical path, exemplar against healthy"))
