"""A flow as one tree: each span under its call parent, and a consumer at the top of its trace
under the latest-ending producer it joined (by link, parent or message id; a shared business
key is a correlation, not a message). The waterfall draws this tree; the comparison aligns it."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from tracekit.analysis.model import CALL


def flow_tree(info: Mapping[str, object],
              edges: pd.DataFrame) -> tuple[dict[str, str], dict[str, tuple[str, str]]]:
    """(span → its call parent, consumer → (its producer, how it joined)) for the spans of
    `info` (span key → a row with `end_adj`) and the flow's `edges`."""
    kinds, via_of = edges["kind"].to_numpy(), edges["via"].to_numpy()
    src, dst = edges["src"].to_numpy(), edges["dst"].to_numpy()
    parent: dict[str, str] = {}
    for a, b in zip(src[kinds == CALL], dst[kinds == CALL]):
        if a in info and b in info:
            parent[b] = a
    producer: dict[str, tuple[str, str]] = {}
    for a, b, kind, via in zip(src, dst, kinds, via_of):
        if kind == CALL or via == "business_key" or a not in info or b not in info or b in parent:
            continue
        if b not in producer or info[a].end_adj > info[producer[b][0]].end_adj:
            producer[b] = (a, via)
    return parent, producer
