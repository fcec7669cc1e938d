"""Flows from stitched spans: self time, hops, style, shape (type) and duration."""

from __future__ import annotations

import hashlib
from collections import defaultdict

import numpy as np
import pandas as pd

from tracekit.analysis.model import CALL

ORCHESTRATED_BELOW = 0.25     # share of cross-service hops that go through a broker
CHOREOGRAPHED_FROM = 0.6


def self_times(spans: pd.DataFrame, edges: pd.DataFrame) -> np.ndarray:
    """Each span's own time: its duration minus the union of its call children's intervals
    (clipped to it). Message children run on their own time and are not subtracted."""
    start = dict(zip(spans["key"], spans["start_ns"]))
    end = dict(zip(spans["key"], spans["end_ns"]))
    calls = edges[edges["kind"] == CALL]
    children: dict[str, list[str]] = defaultdict(list)
    for src, dst in zip(calls["src"], calls["dst"]):
        children[src].append(dst)
    out = (spans["end_ns"] - spans["start_ns"]).to_numpy().copy()
    position = {key: i for i, key in enumerate(spans["key"])}
    for parent, kids in children.items():
        p0, p1 = start[parent], end[parent]
        intervals = sorted((max(start[k], p0), min(end[k], p1)) for k in kids)
        covered, cur_s, cur_e = 0, None, None
        for s, e in intervals:
            if e <= s:
                continue
            if cur_e is None or s > cur_e:
                if cur_e is not None:
                    covered += cur_e - cur_s
                cur_s, cur_e = s, e
            else:
                cur_e = max(cur_e, e)
        if cur_e is not None:
            covered += cur_e - cur_s
        out[position[parent]] -= covered
    return out


def hops(spans: pd.DataFrame, edges: pd.DataFrame) -> pd.DataFrame:
    """Cross-service hops per flow: synchronous (calls between services) and asynchronous
    (messages and correlations), with the service that makes most synchronous calls."""
    service = dict(zip(spans["key"], spans["service_name"]))
    flow = dict(zip(spans["key"], spans["flow_id"]))
    frame = pd.DataFrame({"flow_id": edges["src"].map(flow),
                          "src_service": edges["src"].map(service),
                          "dst_service": edges["dst"].map(service),
                          "kind": edges["kind"]})
    sync = frame[(frame["kind"] == CALL) & (frame["src_service"] != frame["dst_service"])]
    asynchronous = frame[frame["kind"] != CALL]
    counts = pd.DataFrame({
        "sync_hops": sync.groupby("flow_id").size(),
        "async_hops": asynchronous.groupby("flow_id").size(),
    }).fillna(0).astype(int)
    coordinator = (sync.groupby(["flow_id", "src_service"]).size().rename("n").reset_index()
                   .sort_values(["flow_id", "n"], ascending=[True, False])
                   .drop_duplicates("flow_id").set_index("flow_id")["src_service"])
    counts["coordinator"] = coordinator
    return counts


def style_of(sync_hops: int, async_hops: int) -> str:
    total = sync_hops + async_hops
    if total == 0:
        return "single-service"
    share = async_hops / total
    if share < ORCHESTRATED_BELOW:
        return "orchestrated"
    if share >= CHOREOGRAPHED_FROM:
        return "choreographed"
    return "hybrid"


def signatures(spans: pd.DataFrame, edges: pd.DataFrame, roots: dict[str, str]) -> dict[str, str]:
    """A canonical shape per flow: the flow graph from its root, children ordered by
    (service, operation), repeated sibling subtrees counted once (retries, loops), edge kinds
    kept. Flows with the same shape share a type, whatever their timing."""
    label = dict(zip(spans["key"], spans["service_name"] + ":" + spans["name"]))
    children: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for src, dst, kind in zip(edges["src"], edges["dst"], edges["kind"]):
        children[src].append((kind, dst))
    memo: dict[str, str] = {}

    def shape(key: str, depth: int = 0) -> str:
        if key in memo:
            return memo[key]
        if depth > 200:
            return label[key]
        kids = sorted({f"{kind[0]}>{shape(dst, depth + 1)}" for kind, dst in children.get(key, ())})
        memo[key] = label[key] + ("(" + ",".join(kids) + ")" if kids else "")
        return memo[key]

    return {flow: shape(root) for flow, root in roots.items()}


def type_id(signature: str) -> str:
    return hashlib.sha1(signature.encode()).hexdigest()[:10]
