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
    calls = edges[edges["kind"] == CALL]
    position = pd.Index(spans["key"]).get_indexer
    parent, child = position(calls["src"]), position(calls["dst"])
    start, end = spans["start_ns"].to_numpy(), spans["end_ns"].to_numpy()
    own = end - start
    if len(parent) == 0:
        return own
    lo = np.maximum(start[child], start[parent])
    hi = np.minimum(end[child], end[parent])
    keep = hi > lo
    frame = pd.DataFrame({"parent": parent[keep], "lo": lo[keep], "hi": hi[keep]})
    frame = frame.sort_values(["parent", "lo"], kind="stable")
    # Union of intervals per parent: a new run starts where an interval begins after every
    # earlier one (of the same parent) has ended.
    reach = frame.groupby("parent", sort=False)["hi"].cummax()
    before = reach.groupby(frame["parent"], sort=False).shift(1)
    run = (before.isna() | (frame["lo"] > before)).cumsum()
    runs = frame.assign(run=run.to_numpy()).groupby("run", sort=False).agg(
        parent=("parent", "first"), lo=("lo", "min"), hi=("hi", "max"))
    covered = (runs["hi"] - runs["lo"]).groupby(runs["parent"]).sum()
    own = own.copy()
    own[covered.index.to_numpy()] -= covered.to_numpy()
    return own


def _take(spans: pd.DataFrame, column: str, keys: pd.Series) -> np.ndarray:
    """spans[column] at the rows of `keys` (span keys), vectorized."""
    position = pd.Index(spans["key"]).get_indexer(keys)
    return spans[column].to_numpy()[position]


def hops(spans: pd.DataFrame, edges: pd.DataFrame) -> pd.DataFrame:
    """Cross-service hops per flow: synchronous (calls between services) and asynchronous
    (messages and correlations), with the service that makes most synchronous calls."""
    frame = pd.DataFrame({"flow_id": _take(spans, "flow_id", edges["src"]),
                          "src_service": _take(spans, "service_name", edges["src"]),
                          "dst_service": _take(spans, "service_name", edges["dst"]),
                          "kind": edges["kind"].to_numpy()})
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
    """A canonical shape per flow: its root operation and the set of its edges, each as
    (caller service:operation, edge kind, callee service:operation), sorted. Repeats (retries,
    loops, one query per item) count once; timing and order do not matter. Flows with the same
    shape share a type."""
    label = spans["service_name"] + ":" + spans["name"]
    labelled = pd.DataFrame({"key": spans["key"], "label": label})
    position = pd.Index(spans["key"]).get_indexer
    labels = label.to_numpy()
    flow_of = spans["flow_id"].to_numpy()
    src_pos, dst_pos = position(edges["src"]), position(edges["dst"])
    frame = pd.DataFrame({"flow_id": flow_of[src_pos],
                          "edge": labels[src_pos] + ">" + edges["kind"].str.slice(0, 1).to_numpy()
                          + ">" + labels[dst_pos]})
    frame = frame.drop_duplicates().sort_values(["flow_id", "edge"])
    joined = frame.groupby("flow_id", sort=False)["edge"].agg("|".join)
    root_label = dict(zip(labelled["key"], labelled["label"]))
    return {flow: root_label[root] + "||" + joined.get(flow, "") for flow, root in roots.items()}


def steps_of(signature: str) -> frozenset[str]:
    """The service:operation labels in a shape."""
    root, _, edges = signature.partition("||")
    out = {root}
    for edge in filter(None, edges.split("|")):
        src, _, rest = edge.partition(">")
        out.add(src)
        out.add(rest.partition(">")[2])
    return frozenset(out)


def type_id(signature: str) -> str:
    return hashlib.sha1(signature.encode()).hexdigest()[:10]
