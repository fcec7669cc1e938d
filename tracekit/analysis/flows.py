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
    parent, lo, hi = parent[keep], lo[keep], hi[keep]
    order = np.lexsort((lo, parent))
    frame = pd.DataFrame({"parent": parent[order], "lo": lo[order], "hi": hi[order]})
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


def hops(spans: pd.DataFrame, edges: pd.DataFrame, flow_code: np.ndarray,
         flow_ids: np.ndarray) -> pd.DataFrame:
    """Cross-service hops per flow (rows in `flow_ids` order): synchronous (calls between
    services) and asynchronous (messages and correlations), with the service that makes most
    synchronous calls (ties: the first by name)."""
    src, dst = edges["src_pos"].to_numpy(), edges["dst_pos"].to_numpy()
    service_code, services = pd.factorize(spans["service_name"].to_numpy(), sort=True)
    call = edges["kind"].to_numpy() == CALL
    sync = call & (service_code[src] != service_code[dst])
    flow = flow_code[src].astype(np.int64)
    n_flows = len(flow_ids)
    counts = pd.DataFrame({"sync_hops": np.bincount(flow[sync], minlength=n_flows),
                           "async_hops": np.bincount(flow[~call], minlength=n_flows)})
    width = np.int64(len(services) + 1)
    pair, calls = np.unique(flow[sync] * width + service_code[src[sync]], return_counts=True)
    caller_flow, caller = pair // width, pair % width
    # Most calls first, then the service's name: the first row of each flow is its coordinator.
    order = np.lexsort((caller, -calls, caller_flow))
    keep = np.ones(len(order), dtype=bool)
    keep[1:] = caller_flow[order][1:] != caller_flow[order][:-1]
    chosen = order[keep]
    coordinator = np.full(n_flows, None, dtype=object)
    coordinator[caller_flow[chosen]] = np.asarray(services, dtype=object)[caller[chosen]]
    counts["coordinator"] = pd.Series(coordinator, dtype=object)
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


def shapes(spans: pd.DataFrame, edges: pd.DataFrame, roots: dict[str, int],
           flows: tuple[np.ndarray, np.ndarray] | None = None
           ) -> tuple[dict[str, str], dict[str, str]]:
    """A canonical shape per flow: its root operation and the set of its edges, each as
    (caller service:operation, edge kind, callee service:operation). Repeats (retries, loops,
    one query per item) count once; timing and order do not matter. Flows with the same shape
    share a type.

    `roots`: flow id → row position of its root span. `flows`: pd.factorize(spans["flow_id"]),
    if made already.
    Returns (type id per flow, readable signature per type id). The type id is a 64-bit hash
    of the shape built from stable hashes of the labels, so the same shape gets the same id
    in any analysis (whole store or a part of it); the readable form is built once per type."""
    service_code, services = pd.factorize(spans["service_name"].to_numpy(), use_na_sentinel=False)
    name_code, names = pd.factorize(spans["name"].to_numpy(), use_na_sentinel=False)
    codes, pairs = pd.factorize(service_code.astype(np.int64) * (len(names) + 1) + name_code)
    uniques = np.array([f"{services[p // (len(names) + 1)]}:{names[p % (len(names) + 1)]}"
                        for p in pairs], dtype=object)
    label = uniques[codes]      # "service:operation", one object per distinct label
    label_hash = pd.util.hash_array(uniques)[codes]
    flows, flow_ids = flows if flows is not None else pd.factorize(spans["flow_id"])
    src, dst = edges["src_pos"].to_numpy(), edges["dst_pos"].to_numpy()
    kinds = edges["kind"].to_numpy()
    kind = np.select([kinds == k for k in _KIND_CODE], list(_KIND_CODE.values()), 0).astype(np.uint64)
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
