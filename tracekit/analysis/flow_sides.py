"""Two stored flows read for the comparison (`compare.FlowSide`), and the typical good flow
a flow is compared with when no other is named."""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import urlsplit

import pandas as pd

from tracekit import queries
from tracekit.analysis.compare import Comparison, FlowSide, Step, compare, masked
from tracekit.analysis.flow_tree import flow_tree
from tracekit.analysis.model import Analysis
from tracekit.errors import TracekitError

RECENT_NS = 3600 * 10**9    # a good flow started within an hour of the flow is preferred


@dataclass(frozen=True)
class Baseline:
    """The flow picked to compare with, and why it is typical."""

    flow_id: str
    duration_ms: float
    median_ms: float
    candidates: int
    type_name: str | None
    other_type: bool        # none of the flow's own type was complete: one of its workflow
    not_recent: bool        # none started within RECENT_NS of it

    def why(self) -> str:
        pool = "its workflow (no complete flow of its own type)" if self.other_type else "its type"
        when = "" if not self.not_recent else ", none within an hour of it"
        return (f"a complete flow of {pool}{when}: {self.duration_ms:,.1f} ms, nearest the median "
                f"{self.median_ms:,.1f} ms of {self.candidates:,}")


def typical_good_flow(store, flow_id: str, recent_ns: int = RECENT_NS) -> Baseline:
    """A complete flow of `flow_id`'s type (else of its workflow), started near it when there
    is one, of about median duration (analysis/typical_good_flow.sql)."""
    rows = store.arrow(queries.load("analysis/typical_good_flow"),
                       {"flow_id": flow_id, "recent_ns": int(recent_ns)}).to_pylist()
    if not rows:
        raise TracekitError(f"no complete flow of the type or workflow of {flow_id} to compare "
                            "it with: name one (`tracekit compare A B`; `tracekit flows` lists them)")
    r = rows[0]
    return Baseline(r["flow_id"], float(r["duration_ms"]), float(r["median_ms"]),
                    int(r["candidates"]), r["type_name"], bool(r["other_type"]), bool(r["not_recent"]))


def compare_flows(store, a_id: str, b_id: str | None = None) -> tuple[Comparison, str | None]:
    """Flow `a_id` compared with `b_id`, else with a typical good flow (then the second value
    says which and why; the CLI and the terminal UI both print it)."""
    picked = None
    if b_id is None:
        baseline = typical_good_flow(store, a_id)
        b_id, picked = baseline.flow_id, baseline.why()
    if a_id == b_id:
        raise TracekitError(f"both sides are flow {a_id}: name two different flows")
    return compare(*read_pair(store, a_id, b_id)), picked


def read_pair(store, a_id: str, b_id: str) -> tuple[FlowSide, FlowSide]:
    """The two stored flows, from an analysis of their own spans (as `tracekit flow` reads
    one), with their spans' attributes."""
    from tracekit.analysis.windowed import window_analysis

    analysis = window_analysis(store, 0, 0, (a_id, b_id))
    spans = analysis.spans
    if len(spans):
        attributes = _attributes(store, sorted(set(spans["trace_id"])),
                                 int(spans["start_ns"].min()), int(spans["start_ns"].max()))
    else:
        attributes = {}
    return side(analysis, a_id, attributes), side(analysis, b_id, attributes)


def _attributes(store, trace_ids: list[str], from_ns: int, to_ns: int) -> dict[str, dict]:
    rows = store.arrow(queries.load("analysis/span_attributes"),
                       {"trace_ids": trace_ids, "from_ns": from_ns, "to_ns": to_ns}).to_pylist()
    return {r["key"]: json.loads(r["attributes"]) or {} for r in rows if r["attributes"]}


def _str(value) -> str | None:
    return value if isinstance(value, str) and value else None


def _target(span) -> str | None:
    """Whom a client or producer span called, ids masked (so two orders' calls align)."""
    if span.kind not in ("CLIENT", "PRODUCER"):
        return None
    for value in (span.peer_service, span.rpc_service, span.destination):
        if _str(value):
            return value
    url = _str(span.url)
    if url:
        parts = urlsplit(url)
        # The host without its port: a service restarted on another port is the same callee.
        return masked(f"{parts.hostname}{parts.path}") if parts.hostname else masked(url.split("?")[0])
    return _str(span.server_address)


def side(analysis: Analysis, flow_id: str, attributes: dict[str, dict]) -> FlowSide:
    """One flow of `analysis` as the comparison takes it: each step under its call parent,
    a consumer at the top of its trace under the latest-ending producer it joined (as the
    waterfall draws it), and its critical path."""
    from tracekit.analysis.critical_paths import critical_path

    if analysis.flows.empty or flow_id not in set(analysis.flows["flow_id"]):
        raise TracekitError(f"flow {flow_id} is not in the store's analysis (any more): "
                            "`tracekit flows` lists them")
    spans = analysis.spans[analysis.spans["flow_id"].to_numpy() == flow_id]
    edges = analysis.edges[analysis.edges["flow_id"].to_numpy() == flow_id]
    info = {k: r for k, r in zip(spans["key"], spans.itertuples(index=False))}
    parent, producer = flow_tree(info, edges)
    parent.update((consumer, src) for consumer, (src, _) in producer.items())
    steps = tuple(Step(
        key=k, parent=parent.get(k), service=r.service_name, name=r.name,
        start_ns=int(r.start_adj), end_ns=int(r.end_adj), self_ns=int(r.self_ns), kind=r.kind,
        target=_target(r), error=bool(r.error), status=_str(r.status_code),
        status_message=_str(r.status_message),
        exception=": ".join(v for v in (_str(r.exception_type), _str(r.exception_message)) if v) or None,
        error_log=_str(getattr(r, "error_log", None)), attributes=attributes.get(k, {}))
        for k, r in info.items())
    critical: dict[tuple[str, str], int] = {}
    for section in critical_path(analysis, flow_id):
        at = (section.span, section.kind)
        critical[at] = critical.get(at, 0) + section.duration_ns
    flow = analysis.flows[analysis.flows["flow_id"] == flow_id].iloc[0]
    return FlowSide(flow_id, steps, critical, _str(flow.get("status")), int(flow["duration_ns"]),
                    _type_name(analysis.flow_types, flow["type_id"]), _str(flow["business_key"]))


def _type_name(types: pd.DataFrame, type_id) -> str | None:
    if types.empty or not isinstance(type_id, str):
        return None
    names = types.loc[types["type_id"] == type_id, "name"]
    return names.iat[0] if len(names) else None
