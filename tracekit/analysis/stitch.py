"""Flow stitching: the edges between spans, and the flows they connect across traces.

Edges: *call* (parent → child, including client → server), *message* (producer → consumer, by
parent or by span link), *correlation* (same `messaging.message.id`, or the same business key,
with no context propagated). A flow is a connected set of traces under the cross-trace edges.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tracekit.analysis.frames import arrow_strings, frame
from tracekit.analysis.model import CALL, CORRELATION, MESSAGE

EDGE_COLUMNS = ["src", "dst", "kind", "via", "src_pos", "dst_pos"]   # *_pos: span rows
# A business-key value shared by more traces than this is too generic to stitch on.
MAX_TRACES_PER_KEY = 64


def span_keys(spans: pd.DataFrame) -> np.ndarray:
    """Each span's "trace:span" key, as an object array of Python strings."""
    joined = pc.binary_join_element_wise(arrow_strings(spans["trace_id"]),
                                         arrow_strings(spans["span_id"]),
                                         pa.scalar(":", pa.large_string()))
    return joined.to_numpy(zero_copy_only=False)


class SpanIds:
    """Spans, their parents and their links' targets as integer codes: a lookup of integers
    instead of "trace:span" strings, and no Python hash of a million id strings. Span ids that
    are 16 hex digits, as OTLP's are, are read as the 64-bit numbers they spell; any other ids
    (imports of other systems, hand-made test data) are numbered by hashing the strings in
    Arrow. 1M spans, with the duplicate check: 1.2 s (1.6 s by hashing in Arrow) against 3.1 s
    for Python strings, which also had to be made first (~1 s).

    Codes are numbered in order of first appearance, the stored spans' first, so a link to a
    trace or span the store does not hold gets a code past the stored ones."""

    def __init__(self, spans: pd.DataFrame) -> None:
        n = len(spans)
        links = spans["links"].to_numpy()
        counts = np.fromiter((len(x) for x in links), dtype=np.int64, count=n)
        self.link_holders = np.repeat(np.arange(n), counts)
        targets = [target.partition(":") for x in links[counts > 0] for target in x]
        parents = arrow_strings(spans["parent_span_id"])
        self.has_parent = parents.is_valid().to_numpy(zero_copy_only=False)

        trace_codes, traces = _codes(arrow_strings(spans["trace_id"]),
                                     pa.array([t for t, _, _ in targets], pa.large_string()))
        self.trace_code = trace_codes[:n]
        n_traces = int(self.trace_code.max()) + 1 if n else 0
        self.traces = traces.slice(0, n_traces).to_numpy(zero_copy_only=False).astype(object)

        span_parts = (arrow_strings(spans["span_id"]), parents.filter(pa.array(self.has_parent)),
                      pa.array([sp for _, _, sp in targets], pa.large_string()))
        span_codes, distinct, found = _span_codes(*span_parts)
        n_parents = len(span_parts[1])
        self.width = np.int64(max(distinct, 1))
        self.span_code = span_codes[:n]
        self.parent_code = span_codes[n:n + n_parents]
        self.key_code = self.trace_code * self.width + self.span_code
        target_trace = trace_codes[n:]
        self.target_code = np.where((target_trace < n_traces) & found,
                                    target_trace * self.width + span_codes[n + n_parents:], -1)

    def duplicated(self) -> np.ndarray:
        """True for each span whose (trace id, span id) an earlier row already has."""
        return pd.Series(self.key_code, copy=False).duplicated().to_numpy()

    @functools.cached_property
    def index(self) -> pd.Index:
        index = pd.Index(self.key_code)
        if not index.is_unique:
            raise ValueError("spans repeat a (trace id, span id): drop the duplicated() first")
        return index

    def parents(self) -> tuple[np.ndarray, np.ndarray]:
        """(child, parent) row positions of every span whose parent is stored."""
        child = np.flatnonzero(self.has_parent)
        parent = self.index.get_indexer(self.trace_code[child] * self.width + self.parent_code)
        found = parent >= 0                 # orphans: the parent is not stored (yet)
        return child[found], parent[found]

    def links(self) -> tuple[np.ndarray, np.ndarray]:
        """(holder, target) row positions of every link whose target is stored."""
        target = self.index.get_indexer(self.target_code)
        found = target >= 0
        return self.link_holders[found], target[found]


def _codes(*parts: pa.Array) -> tuple[np.ndarray, pa.Array]:
    """Integer codes (int64, in order of first appearance) of the strings of `parts` end to end,
    and the distinct strings they number."""
    encoded = pc.dictionary_encode(pa.concat_arrays([p.cast(pa.large_string()) for p in parts]))
    return encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64), encoded.dictionary


def _span_codes(spans: pa.Array, parents: pa.Array, targets: pa.Array
                ) -> tuple[np.ndarray, int, np.ndarray]:
    """Codes of span ids, parent span ids and link targets' span ids, numbered together; how
    many distinct ones; and which targets could be numbered (a target that is not an id like
    the stored ones cannot name a stored span)."""
    stored = [_hex64(spans), _hex64(parents)]
    if not all(valid.all() for _, valid in stored):
        codes, distinct = _codes(spans, parents, targets)
        return codes, len(distinct), np.ones(len(targets), dtype=bool)
    wanted, found = _hex64(targets)
    codes, uniques = pd.factorize(np.concatenate([stored[0][0], stored[1][0], wanted]))
    return codes.astype(np.int64), len(uniques), found


_NIBBLE = np.full(256, 16, dtype=np.uint8)
_NIBBLE[np.frombuffer(b"0123456789abcdef", dtype=np.uint8)] = np.arange(16, dtype=np.uint8)


def _hex64(array: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Each string of 16 lower-case hex digits as the 64-bit number it spells, and which strings
    were such (the others, nulls included, read as 0)."""
    n = len(array)
    array = array.cast(pa.large_string()).fill_null("")
    sixteen = pc.equal(pc.binary_length(array), 16)
    if not pc.all(sixteen).as_py():        # a shorter or longer string: read as not hex
        array = pc.if_else(sixteen, array, "x" * 16)
    start = np.frombuffer(array.buffers()[1], dtype=np.int64, count=1, offset=array.offset * 8)
    digits = np.frombuffer(array.buffers()[2], dtype=np.uint8, count=16 * n,
                           offset=int(start[0]) if n else 0).reshape(n, 16)
    nibbles = _NIBBLE[digits]
    valid = nibbles.max(axis=1, initial=0) < 16
    nibbles[~valid] = 0
    values = ((nibbles[:, 0::2] << 4) | nibbles[:, 1::2]).view(">u8").ravel().astype(np.uint64)
    return values, valid


def parent_edges(spans: pd.DataFrame, ids: SpanIds | None = None) -> pd.DataFrame:
    child, parent = (ids or SpanIds(spans)).parents()
    keys, kinds = spans["key"].to_numpy(), spans["kind"].to_numpy()
    async_hop = (kinds[parent] == "PRODUCER") & (kinds[child] == "CONSUMER")
    return frame({"src": keys[parent], "dst": keys[child],
                  "kind": np.where(async_hop, MESSAGE, CALL).astype(object), "via": "parent",
                  "src_pos": parent, "dst_pos": child})


def link_edges(spans: pd.DataFrame, ids: SpanIds | None = None) -> pd.DataFrame:
    holders, target = (ids or SpanIds(spans)).links()    # links to spans the store holds
    if len(holders) == 0:
        return pd.DataFrame(columns=EDGE_COLUMNS)
    keys, kinds = spans["key"].to_numpy(), spans["kind"].to_numpy()
    return frame({"src": keys[target], "dst": keys[holders],
                  "kind": np.where(kinds[target] == "PRODUCER", MESSAGE, CORRELATION).astype(object),
                  "via": "link", "src_pos": target, "dst_pos": holders})


def message_id_edges(spans: pd.DataFrame, known: pd.DataFrame) -> pd.DataFrame:
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
    known_src = known["src_pos"].to_numpy(dtype=np.int64)
    known_dst = known["dst_pos"].to_numpy(dtype=np.int64)
    into = np.zeros(len(spans), dtype=bool)
    into[dst] = True
    relevant = into[known_dst]              # only edges into these consumers can repeat a pair
    new = ~np.isin(pair, known_src[relevant] * n + known_dst[relevant])
    keys = spans["key"].to_numpy()
    return frame({"src": keys[src[new]], "dst": keys[dst[new]],
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


def _first_in_groups(order: np.ndarray, group: np.ndarray) -> np.ndarray:
    """The first element of `order` in each run of equal `group[order]` values."""
    g = group[order]
    keep = np.ones(len(order), dtype=bool)
    keep[1:] = g[1:] != g[:-1]
    return order[keep]


def business_key_edges(spans: pd.DataFrame, trace_number: np.ndarray,
                       trace_label: np.ndarray) -> pd.DataFrame:
    """Traces sharing a business key that nothing else connected: a correlation edge from the
    first keyed span of the key's first trace to the first keyed span of each other trace.

    trace_number: each span's trace, numbered; trace_label: each trace number's component."""
    keys = spans["business_key"].to_numpy()
    keyed = np.flatnonzero(pd.notna(keys))
    if len(keyed) == 0:
        return pd.DataFrame(columns=EDGE_COLUMNS)
    key_code = pd.factorize(keys[keyed])[0].astype(np.int64)
    trace = trace_number[keyed].astype(np.int64)
    start = spans["start_ns"].to_numpy()[keyed]
    # The earliest keyed span of each (key, trace); ties: the earlier row.
    pair = key_code * (int(trace.max()) + 1) + trace
    first = _first_in_groups(np.lexsort((start, pair)), pair)
    sizes = np.bincount(key_code[first])[key_code[first]]
    first = first[(sizes > 1) & (sizes <= MAX_TRACES_PER_KEY)]
    if len(first) == 0:
        return pd.DataFrame(columns=EDGE_COLUMNS)
    # Each key's anchor: its earliest first span.
    anchor_of = np.full(int(key_code.max()) + 1, -1, dtype=np.int64)
    anchors = _first_in_groups(first[np.lexsort((start[first], key_code[first]))], key_code)
    anchor_of[key_code[anchors]] = anchors
    anchor = anchor_of[key_code[first]]
    apart = trace_label[trace[first]] != trace_label[trace[anchor]]
    src, dst = keyed[anchor[apart]], keyed[first[apart]]
    span_keys_ = spans["key"].to_numpy()
    return frame({"src": span_keys_[src], "dst": span_keys_[dst], "kind": CORRELATION,
                  "via": "business_key", "src_pos": src, "dst_pos": dst})


def stitch(spans: pd.DataFrame, ids: SpanIds | None = None
           ) -> tuple[pd.DataFrame, pd.Series, np.ndarray]:
    """(edges, flow id per trace, flow id per span). The flow id is the id of the flow's
    earliest trace (ties: the smaller trace id). `ids`: SpanIds(spans), if made already."""
    spans = spans.assign(key=span_keys(spans)) if "key" not in spans else spans
    ids = ids or SpanIds(spans)
    edges = pd.concat([parent_edges(spans, ids), link_edges(spans, ids)], ignore_index=True)
    edges = pd.concat([edges, message_id_edges(spans, edges)], ignore_index=True)
    # Number the traces earliest first, so that a component's smallest number is its earliest.
    trace_start = np.full(len(ids.traces), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(trace_start, ids.trace_code, spans["start_ns"].to_numpy(dtype=np.int64))
    by_name = np.argsort(ids.traces, kind="stable")
    order = by_name[np.argsort(trace_start[by_name], kind="stable")]
    traces = ids.traces[order]
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    trace_number = rank[ids.trace_code]     # traces[trace_number[i]] is span i's trace

    def label_traces(edge_frame: pd.DataFrame) -> np.ndarray:
        a = trace_number[edge_frame["src_pos"].to_numpy(dtype=np.int64)]
        b = trace_number[edge_frame["dst_pos"].to_numpy(dtype=np.int64)]
        cross = a != b
        return components(traces, a[cross], b[cross])

    labels = label_traces(edges)
    keyed = business_key_edges(spans, trace_number, labels)
    if not keyed.empty:
        edges = pd.concat([edges, keyed], ignore_index=True)
        labels = label_traces(edges)
    flow_of_trace = pd.Series(traces[labels], index=pd.Index(traces, dtype=object),
                              name="flow_id", dtype=object)
    edges = edges.astype({"src_pos": np.int64, "dst_pos": np.int64})
    return edges, flow_of_trace, traces[labels][trace_number]
