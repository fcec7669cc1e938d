"""One flow: its spans as the waterfall shows them, in call-tree order across traces, with
the critical path and the failure origin marked."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import pandas as pd

from tracekit.analysis.flow_tree import flow_tree
from tracekit.analysis.model import CALL, Analysis
from tracekit.errors import TracekitError


@dataclass
class Row:
    """One line of the waterfall: a span, or the broker wait before a consumer."""

    key: str
    depth: int
    service: str
    name: str
    kind: str
    start_ns: int
    end_ns: int
    error: bool = False
    critical: bool = False
    origin: bool = False
    wait: bool = False              # a broker-wait line (key: the consumer waited for)
    via: str | None = None          # how a consumer joined its producer (link, parent, message id)
    destination: str | None = None
    children: int = 0               # rows below it in its subtree
    status_message: str | None = None

    @property
    def trace_id(self) -> str:
        return self.key.split(":", 1)[0]

    @property
    def span_id(self) -> str:
        return self.key.split(":", 1)[1]


@dataclass
class Waterfall:
    flow_id: str
    start_ns: int
    end_ns: int
    rows: list[Row]
    services: list[str]
    links: dict[str, list[str]] = field(default_factory=dict)   # span → linked spans (both ways)
    origin: str | None = None
    summary: dict = field(default_factory=dict)

    def position(self, key: str) -> int | None:
        for i, row in enumerate(self.rows):
            if row.key == key and not row.wait:
                return i
        return None


def waterfall(store, flow_id: str) -> Waterfall:
    """Every span of a stored flow in call-tree order, consumers under their producers with
    the broker wait between them, the critical path and the failure origin marked: from an
    analysis of that flow's spans only."""
    from tracekit.analysis.critical_paths import critical_paths
    from tracekit.analysis.windowed import window_analysis

    analysis = window_analysis(store, 0, 0, (flow_id,))
    if analysis.flows.empty:
        raise TracekitError(f"flow {flow_id} is not in the store's analysis (any more)")
    return build(analysis, critical_paths(analysis), flow_id)


def build(analysis: Analysis, paths: pd.DataFrame, flow_id: str) -> Waterfall:
    """The waterfall of one flow of `analysis`, with its critical path `paths`."""
    from tracekit.analysis.causes import origins

    spans = analysis.spans[analysis.spans["flow_id"].to_numpy() == flow_id]
    edges = analysis.edges[analysis.edges["flow_id"].to_numpy() == flow_id]
    paths = paths[paths["flow_id"].to_numpy() == flow_id] if len(paths) else paths
    flow = analysis.flows[analysis.flows["flow_id"] == flow_id].iloc[0]
    info = {k: r for k, r in zip(spans["key"], spans.itertuples(index=False))}
    parent, producer = flow_tree(info, edges)
    children: dict[str, list[str]] = {}
    for b, a in [*parent.items(), *((b, a) for b, (a, _) in producer.items())]:
        children.setdefault(a, []).append(b)
    links: dict[str, list[str]] = {}
    kinds, src, dst = edges["kind"].to_numpy(), edges["src"].to_numpy(), edges["dst"].to_numpy()
    for a, b in zip(src[kinds != CALL], dst[kinds != CALL]):
        if a in info and b in info:
            links.setdefault(a, []).append(b)
            links.setdefault(b, []).append(a)
    roots = [k for k in info if k not in parent and k not in producer]
    start_of = {k: r.start_adj for k, r in info.items()}
    critical = set(paths.loc[paths["segment"] == "span", "span"])
    waited = set(paths.loc[paths["segment"] == "broker_wait", "span"])
    origin = origins(analysis, [flow_id]).get(flow_id)
    rows: list[Row] = []

    def visit(key: str, depth: int) -> None:
        r = info[key]
        first = len(rows)
        if key in producer:
            prod = info[producer[key][0]]
            rows.append(Row(key, depth, r.service_name, r.name, "WAIT", int(prod.end_adj),
                            int(max(r.start_adj, prod.end_adj)), critical=key in waited,
                            wait=True, via=producer[key][1],
                            destination=r.destination if isinstance(r.destination, str) else None))
        rows.append(Row(key, depth, r.service_name, r.name, r.kind, int(r.start_adj),
                        int(r.end_adj), bool(r.error), key in critical, key == origin,
                        via=producer[key][1] if key in producer else None,
                        destination=r.destination if isinstance(r.destination, str) else None,
                        status_message=r.status_message if isinstance(r.status_message, str) else None))
        me = len(rows) - 1
        for child in sorted(children.get(key, ()), key=start_of.__getitem__):
            visit(child, depth + 1)
        rows[me].children = len(rows) - me - 1
        if first != me:          # the wait line folds with its consumer
            rows[first].children = len(rows) - first - 1

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10_000))
    try:
        for root in sorted(roots, key=start_of.__getitem__):
            visit(root, 0)
    finally:
        sys.setrecursionlimit(limit)
    services = sorted(set(spans["service_name"]))
    summary = {"status": flow["status"], "style": flow["style"], "key": flow["business_key"],
               "type": _type_name(analysis.flow_types, flow["type_id"]), "traces": int(flow["traces"]),
               "spans": int(flow["spans"]), "errors": int(flow["errors"]),
               "duration_ms": float(flow["duration_ns"]) / 1e6,
               "critical_ms": float(paths["duration_ns"].sum()) / 1e6 if len(paths) else 0.0}
    start = int(min(spans["start_adj"].min(), flow["start_ns"]))
    end = int(max(spans["end_adj"].max(), flow["end_ns"]))
    return Waterfall(flow_id, start, end, rows, services, links, origin, summary)


def _type_name(types: pd.DataFrame, type_id) -> str | None:
    if types.empty or not isinstance(type_id, str):
        return None
    names = types.loc[types["type_id"] == type_id, "name"]
    return names.iat[0] if len(names) else None
