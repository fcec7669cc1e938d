"""The analyzer's results: typed records for one flow, DataFrames for many."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

CALL, MESSAGE, CORRELATION = "call", "message", "correlation"


@dataclass(frozen=True)
class Section:
    """One segment of a critical path: `span` (trace:span key) was the work that mattered
    from `start_ns` to `end_ns`; kind 'span' or 'broker_wait' (then `span` is the consumer)."""

    span: str
    start_ns: int
    end_ns: int
    kind: str = "span"

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns


@dataclass(frozen=True)
class SkewAdjustment:
    span: str
    shift_ns: int
    reason: str


@dataclass
class Analysis:
    """Everything the analyzer found in a set of spans.

    spans: one row per span, with `key` (trace:span), `flow_id`, `self_ns`.
    edges: one row per edge (src, dst, kind, via, wait_ns, destination).
    flows: one row per flow (flow_id, start, end, duration, traces, services, style, type...).
    """

    spans: pd.DataFrame
    edges: pd.DataFrame
    flows: pd.DataFrame
    flow_types: pd.DataFrame = field(default_factory=pd.DataFrame)
    as_of_ns: int | None = None
