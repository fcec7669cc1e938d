"""What the analysis CLI commands print: flows, one flow, the service graph, causes."""

from __future__ import annotations

import json
from dataclasses import asdict

import pandas as pd

from tracekit.analysis.model import Analysis
from tracekit.plurals import counted


def _ms(ns) -> str:
    return f"{ns / 1e6:,.1f} ms"


def _text(value) -> str | None:
    return value if isinstance(value, str) else None


def flow_detail(analysis: Analysis, flow_id: str) -> dict:
    from tracekit.analysis.causes import _Resolver, failing, origins
    from tracekit.analysis.critical_paths import critical_path

    flow = analysis.flows.set_index("flow_id").loc[flow_id]
    spans = analysis.spans[analysis.spans["flow_id"] == flow_id].sort_values("start_adj")
    edges = analysis.edges[analysis.edges["flow_id"] == flow_id]
    start = int(flow["start_ns"])
    incoming = {dst: (kind, via) for dst, kind, via in zip(edges["dst"], edges["kind"], edges["via"])}
    steps = [{"at_ms": (s.start_adj - start) / 1e6, "duration_ms": (s.end_adj - s.start_adj) / 1e6,
              "self_ms": s.self_ns / 1e6, "service": s.service_name, "name": s.name, "kind": s.kind,
              "trace_id": s.trace_id, "span_id": s.span_id, "error": bool(s.error),
              "edge": incoming.get(s.key, (None, None))[0],
              "via": incoming.get(s.key, (None, None))[1],
              "skew": s.skew_note if isinstance(s.skew_note, str) else None}
             for s in spans.itertuples()]
    asynchronous = edges[edges["kind"] != "call"]
    hops = [{"kind": e.kind, "via": e.via, "from": f"{e.src_service} {e.src_name}",
             "to": f"{e.dst_service} {e.dst_name}", "destination": e.destination,
             "wait_ms": None if pd.isna(e.wait_ns) else e.wait_ns / 1e6}
            for e in asynchronous.itertuples()]
    info = spans.set_index("key")
    path = [{"service": info.at[s.span, "service_name"], "name": info.at[s.span, "name"],
             "segment": s.kind, "from_ms": (s.start_ns - start) / 1e6,
             "duration_ms": s.duration_ns / 1e6,
             "share": s.duration_ns / max(int(flow["duration_ns"]), 1)}
            for s in critical_path(analysis, flow_id)]
    origin = None
    found = origins(analysis, [flow_id])
    if flow_id in found:
        key = found[flow_id]
        cause = _Resolver(analysis).resolve(key)
        # How it travelled: up the calls above the origin, span by span, while they failed.
        calls = edges[edges["kind"] == "call"]
        parent = dict(zip(calls["dst"], calls["src"]))
        chain, up = [], parent.get(key)
        failed = failing(spans).set_axis(spans["key"])
        while up is not None and up in info.index and bool(failed[up]):
            chain.append(f"{info.at[up, 'service_name']} {info.at[up, 'name']}")
            up = parent.get(up)
        origin = {"service": info.at[key, "service_name"], "name": info.at[key, "name"],
                  "propagated_to": chain,
                  "trace_id": info.at[key, "trace_id"], "span_id": info.at[key, "span_id"],
                  "exception": info.at[key, "exception_type"] if isinstance(info.at[key, "exception_type"], str) else None,
                  "message": info.at[key, "exception_message"] if isinstance(info.at[key, "exception_message"], str) else None,
                  "error_log": _text(info.at[key, "error_log"]) if "error_log" in info else None,
                  "cause": {"service": cause[0], "operation": cause[1]}}
    types = analysis.flow_types.set_index("type_id")
    return {
        "flow_id": flow_id, "business_key": flow["business_key"], "style": flow["style"],
        "status": flow["status"], "duration_ms": flow["duration_ns"] / 1e6,
        "type": types.at[flow["type_id"], "name"] if flow["type_id"] in types.index else None,
        "evidence": {"sync_hops": int(flow["sync_hops"]), "async_hops": int(flow["async_hops"]),
                     "async_share": float(flow["async_share"]), "coordinator": flow["coordinator"]},
        "traces": int(flow["traces"]), "services": list(flow["services"]),
        "missing_steps": list(flow["missing_steps"]),
        "labels": {k: int(flow[k]) for k in ("retries", "timeouts", "fast_fails",
                                              "compensations", "dead_letters", "skew_adjusted")},
        "steps": steps, "async_edges": hops, "critical_path": path, "failure_origin": origin,
    }


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
