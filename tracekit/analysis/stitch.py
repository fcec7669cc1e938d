"""Flow stitching: the edges between spans, and the flows they connect across traces.

Edges: *call* (parent → child, including client → server), *message* (producer → consumer, by
parent or by span link), *correlation* (same `messaging.message.id`, or the same business key,
with no context propagated). A flow is a connected set of traces under the cross-trace edges.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tracekit.analysis.model import CALL, CORRELATION, MESSAGE

EDGE_COLUMNS = ["src", "dst", "kind", "via"]
# A business-key value shared by more traces than this is too generic to stitch on.
MAX_TRACES_PER_KEY = 64


def span_keys(spans: pd.DataFrame) -> pd.Series:
    return spans["trace_id"] + ":" + spans["span_id"]


def parent_edges(spans: pd.DataFrame) -> pd.DataFrame:
    child = spans[spans["parent_span_id"].notna()][["trace_id", "parent_span_id", "key", "kind"]]
    parent = spans[["trace_id", "span_id", "key", "kind"]]
    joined = child.merge(parent, left_on=["trace_id", "parent_span_id"],
                         right_on=["trace_id", "span_id"], suffixes=("_c", "_p"))
    async_hop = (joined["kind_p"] == "PRODUCER") & (joined["kind_c"] == "CONSUMER")
    return pd.DataFrame({"src": joined["key_p"], "dst": joined["key_c"],
                         "kind": np.where(async_hop, MESSAGE, CALL),
                         "via": "parent"})


def link_edges(spans: pd.DataFrame) -> pd.DataFrame:
    linked = spans[spans["links"].map(len) > 0][["key", "links"]].explode("links")
    targets = spans[["key", "kind"]].rename(columns={"key": "links", "kind": "target_kind"})
    joined = linked.merge(targets, on="links")   # links to spans the store holds
    return pd.DataFrame({"src": joined["links"], "dst": joined["key"],
                         "kind": np.where(joined["target_kind"] == "PRODUCER", MESSAGE, CORRELATION),
                         "via": "link"})


def message_id_edges(spans: pd.DataFrame, known: pd.DataFrame) -> pd.DataFrame:
    """Producer → consumer pairs that share only a message id (no parent, no link)."""
    with_id = spans[spans["message_id"].notna()]
    producers = with_id[with_id["kind"] == "PRODUCER"][["message_id", "key"]]
    consumers = with_id[with_id["kind"] == "CONSUMER"][["message_id", "key"]]
    pairs = producers.merge(consumers, on="message_id", suffixes=("_p", "_c"))
    pairs = pd.DataFrame({"src": pairs["key_p"], "dst": pairs["key_c"]})
    seen = known[["src", "dst"]].drop_duplicates()
    pairs = pairs.merge(seen, how="left", indicator=True)
    pairs = pairs[pairs["_merge"] == "left_only"][["src", "dst"]]
    return pairs.assign(kind=CORRELATION, via="message_id")


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
    first = (keyed.sort_values("start_ns").groupby(["business_key", "trace_id"], sort=False)
             .head(1)[["business_key", "trace_id", "key", "start_ns"]])
    sizes = first.groupby("business_key")["trace_id"].transform("size")
    first = first[(sizes > 1) & (sizes <= MAX_TRACES_PER_KEY)].copy()
    if first.empty:
        return pd.DataFrame(columns=EDGE_COLUMNS)
    first["component"] = first["trace_id"].map(trace_label)
    anchor = first.sort_values("start_ns").groupby("business_key").head(1)
    joined = first.merge(anchor[["business_key", "key", "component"]], on="business_key",
                         suffixes=("", "_anchor"))
    joined = joined[joined["component"] != joined["component_anchor"]]
    return pd.DataFrame({"src": joined["key_anchor"], "dst": joined["key"],
                         "kind": CORRELATION, "via": "business_key"})


def stitch(spans: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """(edges, flow id per trace). The flow id is the id of the flow's earliest trace."""
    spans = spans.assign(key=span_keys(spans)) if "key" not in spans else spans
    edges = pd.concat([parent_edges(spans), link_edges(spans)], ignore_index=True)
    edges = pd.concat([edges, message_id_edges(spans, edges)], ignore_index=True)
    trace_start = spans.groupby("trace_id")["start_ns"].min().sort_values(kind="stable")
    traces = trace_start.index.to_numpy()   # earliest first, so the smallest label is the earliest
    # Each span's trace, as a number: traces[trace_number[i]] is span i's trace.
    trace_number = pd.Index(traces).get_indexer(spans["trace_id"])
    span_position = pd.Index(spans["key"]).get_indexer

    def label_traces(edge_frame: pd.DataFrame) -> np.ndarray:
        a = trace_number[span_position(edge_frame["src"])]
        b = trace_number[span_position(edge_frame["dst"])]
        cross = a != b
        return components(traces, a[cross], b[cross])

    labels = label_traces(edges)
    keyed = business_key_edges(spans, pd.Series(labels, index=traces))
    if not keyed.empty:
        edges = pd.concat([edges, keyed], ignore_index=True)
        labels = label_traces(edges)
    flow_of_trace = pd.Series(traces[labels], index=traces, name="flow_id")
    return edges, flow_of_trace
