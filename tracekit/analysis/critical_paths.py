"""Every flow's critical path from an analysis: the compiled walk (`_walk.c`) when it is
built, else the Python walk (`critical_path.py`), behind one function, `critical_paths`; the
edge-case tests run against both (tests/test_critical_path.py)."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pandas as pd

from tracekit.analysis.critical_path import Node, flow_critical_path
from tracekit.analysis.frames import frame
from tracekit.analysis.model import CALL, Analysis, Section
from tracekit.analysis.run import no_gc_pauses


def _nodes(spans: pd.DataFrame, edges: pd.DataFrame) -> tuple[dict[str, Node], list[str]]:
    nodes = {k: Node(k, int(st), int(en)) for k, st, en in
             zip(spans["key"].tolist(), spans["start_adj"].tolist(), spans["end_adj"].tolist())}
    kinds = edges["kind"].to_numpy()
    src, dst, via = edges["src"].to_numpy(), edges["dst"].to_numpy(), edges["via"].to_numpy()
    calls = kinds == CALL
    for a, b in zip(src[calls], dst[calls]):
        if a in nodes and b in nodes:
            nodes[b].parent = a
            nodes[a].children.append(b)
    hops = ~calls & (via != "business_key")
    for a, b in zip(src[hops], dst[hops]):
        if a in nodes and b in nodes and nodes[b].parent is None:
            current = nodes[b].producer
            if current is None or nodes[a].end_ns > nodes[current].end_ns:
                nodes[b].producer = a
    roots = [k for k, n in nodes.items() if n.parent is None]
    return nodes, roots


def critical_path(analysis: Analysis, flow_id: str) -> list[Section]:
    spans = analysis.spans[analysis.spans["flow_id"] == flow_id]
    edges = analysis.edges[analysis.edges["flow_id"] == flow_id]
    nodes, roots = _nodes(spans, edges)
    return flow_critical_path(nodes, roots) if roots else []


def critical_paths(analysis: Analysis) -> pd.DataFrame:
    """Every flow's critical path: one row per section."""
    with no_gc_pauses():
        return _critical_paths(analysis)


def _critical_paths(analysis: Analysis) -> pd.DataFrame:
    try:
        from tracekit.analysis import _walk
    except ImportError:     # not built: the Python walk gives the same answer, slower
        return _critical_paths_python(analysis)
    return _critical_paths_compiled(analysis, _walk)


def _critical_paths_compiled(analysis: Analysis, _walk) -> pd.DataFrame:
    spans, edges = analysis.spans, analysis.edges
    n = len(spans)
    start = spans["start_adj"].to_numpy(dtype=np.int64)
    end = spans["end_adj"].to_numpy(dtype=np.int64)
    kinds, via = edges["kind"].to_numpy(), edges["via"].to_numpy()
    src, dst = edges["src_pos"].to_numpy(dtype=np.int64), edges["dst_pos"].to_numpy(dtype=np.int64)
    calls = kinds == CALL
    # Call children in CSR form, in edge order within each parent (as the Python walk sees them).
    order = np.argsort(src[calls], kind="stable")
    child_idx = np.ascontiguousarray(dst[calls][order])
    child_off = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(src[calls], minlength=n), out=child_off[1:])
    has_parent = np.zeros(n, dtype=bool)
    has_parent[dst[calls]] = True
    # A consumer at the top of its tree continues at its latest-ending producer.
    hops = ~calls & (via != "business_key")
    candidates = pd.DataFrame({"dst": dst[hops], "src": src[hops], "end": end[src[hops]],
                               "order": np.arange(int(hops.sum()))})
    candidates = candidates[~has_parent[candidates["dst"].to_numpy()]]
    chosen = (candidates.sort_values(["dst", "end", "order"], ascending=[True, False, True])
              .drop_duplicates("dst"))
    producer = np.full(n, -1, dtype=np.int64)
    producer[chosen["dst"].to_numpy()] = chosen["src"].to_numpy()
    roots = np.flatnonzero(~has_parent)
    keys = spans["key"].to_numpy()
    key_rank = np.zeros(n, dtype=np.int64)
    key_rank[roots[np.argsort(keys[roots], kind="stable")]] = np.arange(len(roots))
    flow_codes, flow_ids = pd.factorize(spans["flow_id"].to_numpy()[roots])
    by_flow = np.argsort(flow_codes, kind="stable")
    flow_roots = np.ascontiguousarray(roots[by_flow])
    flow_off = np.zeros(len(flow_ids) + 1, dtype=np.int64)
    np.cumsum(np.bincount(flow_codes, minlength=len(flow_ids)), out=flow_off[1:])
    capacity = 3 * n + 16
    out = [np.empty(capacity, dtype=np.int64) for _ in range(6)]
    count = _walk.walk(start, end, producer, child_off, child_idx, key_rank, flow_off,
                       flow_roots, *out)
    if count < 0:
        raise RuntimeError("critical path walk: output larger than 3 sections per span")
    node, s_start, s_end, kind, flow, seq = (a[:count] for a in out)
    segment = np.array(["span", "broker_wait"], dtype=object)
    return frame({
        "flow_id": np.asarray(flow_ids, dtype=object)[flow], "seq": seq, "span": keys[node],
        "segment": segment[kind], "start_ns": s_start,
        "end_ns": s_end, "service_name": spans["service_name"].to_numpy()[node],
        "name": spans["name"].to_numpy()[node], "duration_ns": s_end - s_start,
        "trace_id": spans["trace_id"].to_numpy()[node], "span_id": spans["span_id"].to_numpy()[node]})


def _critical_paths_python(analysis: Analysis) -> pd.DataFrame:
    nodes, roots = _nodes(analysis.spans, analysis.edges)
    flow_of = dict(zip(analysis.spans["key"].tolist(), analysis.spans["flow_id"].tolist()))
    roots_by_flow: dict[str, list[str]] = defaultdict(list)
    for root in roots:
        roots_by_flow[flow_of[root]].append(root)
    rows = []
    for flow_id, flow_roots in roots_by_flow.items():
        for seq, section in enumerate(flow_critical_path(nodes, flow_roots)):
            rows.append((flow_id, seq, section.span, section.kind, section.start_ns,
                         section.end_ns))
    frame = pd.DataFrame(rows, columns=["flow_id", "seq", "span", "segment", "start_ns", "end_ns"])
    info = analysis.spans.set_index("key")[["service_name", "name", "trace_id", "span_id"]]
    frame = frame.join(info, on="span")
    frame["duration_ns"] = frame["end_ns"] - frame["start_ns"]
    return frame
