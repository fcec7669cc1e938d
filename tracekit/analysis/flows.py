"""Flows from stitched spans: self time, hops, style, shape (type) and duration."""

from __future__ import annotations


import numpy as np
import pandas as pd

from tracekit.analysis.model import CALL

ORCHESTRATED_BELOW = 0.25     # share of cross-service hops that go through a broker
CHOREOGRAPHED_FROM = 0.6


def self_times(spans: pd.DataFrame, edges: pd.DataFrame) -> np.ndarray:
    """Each span's own time: its duration minus the union of its call children's intervals
    (clipped to it). Message children run on their own time and are not subtracted."""
    calls = edges[edges["kind"] == CALL]
    if "src_pos" in calls:
        parent, child = calls["src_pos"].to_numpy(), calls["dst_pos"].to_numpy()
    else:
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


def _take(spans: pd.DataFrame, column: str, positions: pd.Series) -> np.ndarray:
    """spans[column] at the given row positions, vectorized."""
    return spans[column].to_numpy()[positions.to_numpy()]


def hops(spans: pd.DataFrame, edges: pd.DataFrame) -> pd.DataFrame:
    """Cross-service hops per flow: synchronous (calls between services) and asynchronous
    (messages and correlations), with the service that makes most synchronous calls."""
    frame = pd.DataFrame({"flow_id": _take(spans, "flow_id", edges["src_pos"]),
                          "src_service": _take(spans, "service_name", edges["src_pos"]),
                          "dst_service": _take(spans, "service_name", edges["dst_pos"]),
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


_KIND_CODE = {"call": 0, "message": 1, "correlation": 2}


def _mix(values: np.ndarray) -> np.ndarray:
    """splitmix64: spreads integer codes over 64 bits, so that sums of them rarely collide."""
    z = values.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def shapes(spans: pd.DataFrame, edges: pd.DataFrame,
           roots: dict[str, int]) -> tuple[dict[str, str], dict[str, str]]:
    """A canonical shape per flow: its root operation and the set of its edges, each as
    (caller service:operation, edge kind, callee service:operation). Repeats (retries, loops,
    one query per item) count once; timing and order do not matter. Flows with the same shape
    share a type.

    `roots`: flow id → row position of its root span.
    Returns (type id per flow, readable signature per type id). The type id is a 64-bit hash
    of the shape built from stable hashes of the labels, so the same shape gets the same id
    in any analysis (whole store or a part of it); the readable form is built once per type."""
    label = (spans["service_name"].astype(object) + ":" + spans["name"].astype(object)).to_numpy()
    codes, uniques = pd.factorize(label)
    label_hash = pd.util.hash_array(np.asarray(uniques, dtype=object))[codes]
    flows, flow_ids = pd.factorize(spans["flow_id"])
    src, dst = edges["src_pos"].to_numpy(), edges["dst_pos"].to_numpy()
    kind = edges["kind"].map(_KIND_CODE).to_numpy(dtype=np.uint64)
    edge_hash = _mix(_mix(label_hash[src] + kind) ^ label_hash[dst])
    unique = pd.DataFrame({"flow": flows[src], "edge": edge_hash, "src": src, "dst": dst,
                           "kind": kind}).drop_duplicates(["flow", "edge"])
    total = np.zeros(len(flow_ids), dtype=np.uint64)
    np.add.at(total, unique["flow"].to_numpy(), _mix(unique["edge"].to_numpy()))
    flow_position = pd.Index(flow_ids)
    root_keys = pd.Series(roots)
    at = flow_position.get_indexer(root_keys.index)
    total[at] += _mix(label_hash[root_keys.to_numpy(dtype=np.int64)] ^ np.uint64(0x5EED))
    type_of = {flow: format(int(total[i]), "016x")[:12] for flow, i in zip(root_keys.index, at)}
    representative: dict[str, str] = {}
    for flow, type_id in type_of.items():
        representative.setdefault(type_id, flow)
    chosen = flow_position.get_indexer(list(representative.values()))
    rows = unique[np.isin(unique["flow"].to_numpy(), chosen)]
    readable: dict[int, list[str]] = {}
    for f, a, b, k in zip(rows["flow"].to_numpy(), rows["src"].to_numpy(), rows["dst"].to_numpy(),
                          rows["kind"].to_numpy()):
        readable.setdefault(int(f), []).append(f"{label[a]}>{'cmr'[int(k)]}>{label[b]}")
    signature = {}
    for type_id, flow in representative.items():
        edges_text = "|".join(sorted(readable.get(int(flow_position.get_loc(flow)), [])))
        signature[type_id] = label[roots[flow]] + "||" + edges_text
    return type_of, signature


def steps_of(signature: str) -> frozenset[str]:
    """The service:operation labels in a shape."""
    root, _, edges = signature.partition("||")
    out = {root}
    for edge in filter(None, edges.split("|")):
        src, _, rest = edge.partition(">")
        out.add(src)
        out.add(rest.partition(">")[2])
    return frozenset(out)
