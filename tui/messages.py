"""Messages the workers and views post: data goes down as attributes, events come up as these."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from tui.data import StoreStats
from tui.flow_data import Waterfall


@dataclass
class StatsLoaded(Message):
    """The store's figures (first paint, and every live tick)."""

    stats: StoreStats
    at: float
    readable: bool = True       # False: its analysis tables are about to be brought up to date


@dataclass
class Analyzing(Message):
    """Bringing the analysis tables up to date: spans analyzed of those they lacked."""

    done: int
    total: int

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, Analyzing)


@dataclass
class PollFailed(Message):
    """Reading the store failed (shown until a read succeeds)."""

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
class MarkFlow(Message):
    """Remember a flow to compare another with (`m`)."""

    flow_id: str


@dataclass
class CompareFlows(Message):
    """Compare flow `a` with `b` (None: with the marked flow, else a typical good flow)."""

    a: str
    b: str | None = None


@dataclass
class FlowLoaded(Message):
    """A flow read and analyzed, ready to show (`span_key`: the span to show first)."""

    waterfall: Waterfall | None
    span_key: str | None = None
    error: str | None = None


@dataclass
class OpenSpan(Message):
    trace_id: str
    span_id: str


@dataclass
class WriteReport(Message):
    """Write an incident report for a window or one flow."""

    window: tuple[int, int] | None = None
    flow_id: str | None = None
