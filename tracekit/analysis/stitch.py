"""Flow stitching: the edges between spans, and the flows they connect across traces.

Edges: *call* (parent → child, including client → server), *message* (producer → consumer, by
parent or by span link), *correlation* (same `messaging.message.id`, or the same business key,
with no context propagated). A flow is a connected set of traces under the cross-trace edges.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tracekit.analysis.model import CALL, CORRELATION, MESSAGE

EDGE_COLUMNS = ["src", "dst", "kind", "via", "src_pos", "dst_pos"]   # *_pos: span rows
# A business-key value shared by more traces than this is too generic to stitch on.
MAX_TRACES_PER_KEY = 64


def span_keys(spans: pd.DataFrame) -> pd.Series:
    return spans["trace_id"] + ":" + spans["span_id"]


def _positions(spans: pd.DataFrame):
    """key → row position (-1 when the store has no such span)."""
    return pd.Index(spans["key"]).get_indexer


def parent_edges(spans: pd.DataFrame, position=None) -> pd.DataFrame:
    has_parent = spans["parent_span_id"].notna().to_numpy()
    child = np.flatnonzero(has_parent)
    wanted = (spans["trace_id"].to_numpy()[has_parent] + ":"
              + spans["parent_span_id"].to_numpy()[has_parent])
    parent = (position or _positions(spans))(wanted)
    found = parent >= 0                     # orphans: the parent is not stored (yet)
    child, parent = child[found], parent[found]
    keys, kinds = spans["key"].to_numpy(), spans["kind"].to_numpy()
    async_hop = (kinds[parent] == "PRODUCER") & (kinds[child] == "CONSUMER")
    return pd.DataFrame({"src": keys[parent], "dst": keys[child],
                         "kind": np.where(async_hop, MESSAGE, CALL), "via": "parent",
                         "src_pos": parent, "dst_pos": child})


def link_edges(spans: pd.DataFrame, position=None) -> pd.DataFrame:
    links = spans["links"].to_numpy()
    counts = np.fromiter((len(x) for x in links), dtype=np.int64, count=len(links))
    holders = np.repeat(np.arange(len(links)), counts)
    if len(holders) == 0:
        return pd.DataFrame(columns=EDGE_COLUMNS)
    targets = np.concatenate([np.asarray(x, dtype=object) for x in links[counts > 0]])
    target = (position or _positions(spans))(targets)
    found = target >= 0                     # links to spans the store holds
    holders, target = holders[found], target[found]
    keys, kinds = spans["key"].to_numpy(), spans["kind"].to_numpy()
    return pd.DataFrame({"src": keys[target], "dst": keys[holders],
                         "kind": np.where(kinds[target] == "PRODUCER", MESSAGE, CORRELATION),
                         "via": "link", "src_pos": target, "dst_pos": holders})


def message_id_edges(spans: pd.DataFrame, known: pd.DataFrame, position=None) -> pd.DataFrame:
    """Producer → consumer pairs that share only a message id (no parent, no link)."""
    ids, kinds = spans["message_id"].to_numpy(), spans["kind"].to_numpy()
    with_id = pd.notna(ids)
    producers = np.flatnonzero(with_id & (kinds == "PRODUCER"))
    consumers = np.flatnonzero(with_id & (kinds == "CONSUMER"))
    producer_of = pd.Index(ids[producers])
    if not producer_of.is_unique:
        producer_of = producer_of.drop_duplicates(keep="first")
        producers = producers[~pd.Index(ids[producers]).duplicated(keep="first")]
    match = producer_of.get_indexer(ids[consumers])
    found = match >= 0
    src, dst = producers[match[found]], consumers[found]
    n = np.int64(len(spans))
    pair = src.astype(np.int64) * n + dst
    seen = known["src_pos"].to_numpy(dtype=np.int64) * n + known["dst_pos"].to_numpy(dtype=np.int64)
    new = ~np.isin(pair, seen)
    keys = spans["key"].to_numpy()
    return pd.DataFrame({"src": keys[src[new]], "dst": keys[dst[new]],
                         "kind": CORRELATION, "via": "message_id",
                         "src_pos": src[new], "dst_pos": dst[new]})


def components(nodes: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Connected components of an undirected graph on 0..n-1: the smallest member of each."""
    labels = np.arange(len(nodes))
    if len(a) == 0:
        return labels
    while True:
        smaller = np.minimum(labels[a], labels[b])
        before = labels.copy()
        np.minimum.at(labels, a, smaller)
        np.minimum.at(labels, b, smaller)
        while True:   # pointer jumping: every label points at a root
            jumped = labels[labels]
            if np.array_equal(jumped, labels):
                break
            labels = jumped
        if np.array_equal(before, labels):
            return labels


def business_key_edges(spans: pd.DataFrame, trace_label: pd.Series) -> pd.DataFrame:
    """Traces sharing a business key that nothing else connected: a correlation edge from the
    first keyed span of the key's first trace to the first keyed span of each other trace."""
    keyed = spans[spans["business_key"].notna()]
    if keyed.empty:
        return pd.DataFrame(columns=EDGE_COLUMNS)
    first = (keyed.assign(position=keyed.index).sort_values("start_ns")
             .groupby(["business_key", "trace_id"], sort=False)
             .head(1)[["business_key", "trace_id", "key", "start_ns", "position"]])
    sizes = first.groupby("business_key")["trace_id"].transform("size")
    first = first[(sizes > 1) & (sizes <= MAX_TRACES_PER_KEY)].copy()
    if first.empty:
        return pd.DataFrame(columns=EDGE_COLUMNS)
    first["component"] = first["trace_id"].map(trace_label)
    anchor = first.sort_values("start_ns").groupby("business_key").head(1)
    joined = first.merge(anchor[["business_key", "key", "component", "position"]],
                         on="business_key", suffixes=("", "_anchor"))
    joined = joined[joined["component"] != joined["component_anchor"]]
    return pd.DataFrame({"src": joined["key_anchor"], "dst": joined["key"],
                         "kind": CORRELATION, "via": "business_key",
                         "src_pos": joined["position_anchor"], "dst_pos": joined["position"]})


def stitch(spans: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """(edges, flow id per trace). The flow id is the id of the flow's earliest trace."""
    spans = spans.assign(key=span_keys(spans)) if "key" not in spans else spans
    position = _positions(spans)      # one hash index over the span keys, for every lookup
    edges = pd.concat([parent_edges(spans, position), link_edges(spans, position)],
                      ignore_index=True)
    edges = pd.concat([edges, message_id_edges(spans, edges, position)], ignore_index=True)
    trace_start = spans.groupby("trace_id")["start_ns"].min().sort_values(kind="stable")
    traces = trace_start.index.to_numpy()   # earliest first, so the smallest label is the earliest
    # Each span's trace, as a number: traces[trace_number[i]] is span i's trace.
    trace_number = pd.Index(traces).get_indexer(spans["trace_id"])

    def label_traces(edge_frame: pd.DataFrame) -> np.ndarray:
        a = trace_number[edge_frame["src_pos"].to_numpy(dtype=np.int64)]
        b = trace_number[edge_frame["dst_pos"].to_numpy(dtype=np.int64)]
        cross = a != b
        return components(traces, a[cross], b[cross])

    labels = label_traces(edges)
    keyed = business_key_edges(spans, pd.Series(labels, index=traces))
    if not keyed.empty:
        edges = pd.concat([edges, keyed], ignore_index=True)
        labels = label_traces(edges)
    flow_of_trace = pd.Series(traces[labels], index=traces, name="flow_id")
    edges = edges.astype({"src_pos": np.int64, "dst_pos": np.int64})
    return edges, flow_of_trace
