"""Messages the workers and views post: data goes down as attributes, events come up as these."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from tui.data import Snapshot, StoreStats


@dataclass
class StatsLoaded(Message):
    """The store's cheap figures (first paint, and every live tick)."""

    stats: StoreStats
    at: float


@dataclass
class AnalysisReady(Message):
    """A new analysis of the store; a burst of them collapses into the newest."""

    snapshot: Snapshot
    new_spans: int
    elapsed_s: float
    preview: bool = False       # only the newest spans: the whole store is still being analyzed

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, AnalysisReady)


@dataclass
class AnalysisFailed(Message):
    error: str


@dataclass
class OpenType(Message):
    """Show the flows of one type."""

    type_id: str
    name: str


@dataclass
class OpenFlow(Message):
    flow_id: str
    span_key: str | None = None


@dataclass
class OpenSpan(Message):
    trace_id: str
    span_id: str


@dataclass
class WriteReport(Message):
    """Write an incident report for a window or one flow."""

    window: tuple[int, int] | None = None
    flow_id: str | None = None
