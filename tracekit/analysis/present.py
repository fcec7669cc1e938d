"""What the analysis CLI commands print: one flow (as `stored_flow.read` gives it, with its
failure origin from an analysis of its spans), causes."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING

from tracekit.plurals import counted

if TYPE_CHECKING:
    from tracekit.analysis.model import Analysis


def _text(value) -> str | None:
    return value if isinstance(value, str) else None


def failure_origin(analysis: Analysis, flow_id: str) -> dict | None:
    """Where the flow's failure began (its first failing span with no failing span below
    it), what that span blamed, and the failing calls above it it travelled up through; None
    for a flow with no failing span. `analysis` holds the flow's spans (or a window's)."""
    from tracekit.analysis.causes import _Resolver, failing, origins

    found = origins(analysis, [flow_id])
    if flow_id not in found:
        return None
    key = found[flow_id]
    spans = analysis.spans[analysis.spans["flow_id"] == flow_id]
    info = spans.set_index("key")
    cause = _Resolver(analysis).resolve(key)
    # How it travelled: up the calls above the origin, span by span, while they failed.
    edges = analysis.edges
    calls = edges[(edges["flow_id"] == flow_id) & (edges["kind"] == "call")]
    parent = dict(zip(calls["dst"], calls["src"]))
    chain, up = [], parent.get(key)
    failed = failing(spans).set_axis(spans["key"])
    while up is not None and up in info.index and bool(failed[up]):
        chain.append(f"{info.at[up, 'service_name']} {info.at[up, 'name']}")
        up = parent.get(up)
    return {"service": info.at[key, "service_name"], "name": info.at[key, "name"],
            "propagated_to": chain,
            "trace_id": info.at[key, "trace_id"], "span_id": info.at[key, "span_id"],
            "exception": _text(info.at[key, "exception_type"]),
            "message": _text(info.at[key, "exception_message"]),
            "error_log": _text(info.at[key, "error_log"]) if "error_log" in info else None,
            "cause": {"service": cause[0], "operation": cause[1]}}


def print_flow(detail: dict) -> None:
    print(f"flow {detail['flow_id']}  {detail['business_key'] or ''}")
    ev = detail["evidence"]
    print(f"  {detail['style']} ({counted(ev['sync_hops'], 'synchronous hop')}, {ev['async_hops']} "
          f"through a broker; coordinator {ev['coordinator'] or '-'}), {detail['status']}, "
          f"{detail['duration_ms']:,.1f} ms, {counted(detail['traces'], 'trace')}, type {detail['type']}")
    labels = ", ".join(f"{k} {v}" for k, v in detail["labels"].items() if v)
    if labels:
        print(f"  {labels}")
    if detail["missing_steps"]:
        print(f"  missing: {', '.join(detail['missing_steps'])}")
    print("\nsteps (ms from the flow's start)")
    for s in detail["steps"]:
        mark = "✗" if s["error"] else " "
        edge = f" ←{s['edge']}/{s['via']}" if s["edge"] and s["edge"] != "call" else ""
        print(f"  {mark} {s['at_ms']:9.1f} {s['duration_ms']:9.1f}  {s['service']:<16} "
              f"{s['kind']:<8} {s['name']}{edge}" + (f"  [{s['skew']}]" if s["skew"] else ""))
    if detail["async_edges"]:
        print("\nmessages")
        for e in detail["async_edges"]:
            wait = f"{e['wait_ms']:,.1f} ms wait" if e["wait_ms"] is not None else "no wait known"
            print(f"  {e['from']} → {e['to']} via {e['destination'] or e['via']} ({e['kind']}, {wait})")
    print("\ncritical path")
    for p in detail["critical_path"]:
        label = "broker wait before" if p["segment"] == "broker_wait" else ""
        print(f"  {p['from_ms']:9.1f} {p['duration_ms']:9.1f} ms {p['share']:6.1%}  "
              f"{label} {p['service']} {p['name']}".rstrip())
    origin = detail["failure_origin"]
    if origin:
        print(f"\nfailure origin: {origin['service']} {origin['name']}"
              + (f" — {origin['exception']}: {origin['message']}" if origin["exception"] else "")
              + (f"\n  error log: {origin['error_log']}" if origin.get("error_log") else "")
              + f"\n  likely cause: {origin['cause']['service']} {origin['cause']['operation']}"
              + ("\n  propagated up: " + " → ".join(origin["propagated_to"])
                 if origin["propagated_to"] else ""))


def dumps(value) -> str:
    def default(obj):
        if hasattr(obj, "item"):
            return obj.item()
        if hasattr(obj, "isoformat"):
            return obj.isoformat()
        if isinstance(obj, (set, tuple)):
            return list(obj)
        return str(obj)
    return json.dumps(value, default=default, indent=2)


def causes_json(causes) -> list[dict]:
    return [asdict(c) for c in causes]
