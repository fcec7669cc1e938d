"""The status line: the store, how it is read, span rate, flows, how far its analysis is,
and the time window."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from tui.cells import clock
from tui.data import StoreStats


class StatusLine(Static):
    stats: reactive[StoreStats | None] = reactive(None)
    rate: reactive[float | None] = reactive(None)
    window: reactive[tuple | None] = reactive(None)
    error: reactive[str | None] = reactive(None)
    analyzing: reactive[tuple[int, int] | None] = reactive(None)   # (spans done, to do)
    opening: reactive[str | None] = reactive(None)      # the flow being read to open it

    def __init__(self, path: str) -> None:
        super().__init__(id="status")
        self.path = path

    def render(self) -> Text:
        line = Text()
        stats = self.stats
        line.append(f" {self.path}", style="bold")
        if stats is None:
            line.append("  opening…")
            return line
        if stats.via_collector:
            line.append("  live via collector", style="green4")
        line.append(f"  {stats.spans:,} spans")
        if self.rate is not None:
            line.append(f"  {self.rate:,.0f} spans/s")
        if self.analyzing is not None:
            done, total = self.analyzing
            line.append(f"  analyzing {done:,} of {total:,} spans…", style="dark_orange3")
        elif stats.flows is not None:
            line.append(f"  {stats.flows:,} flows")
            if stats.behind:
                line.append(f" (analysis {stats.behind:,} spans behind)", style="dark_orange3")
        else:
            line.append("  no analysis tables", style="dark_orange3")
        if self.window:
            label, bounds = self.window
            if bounds:
                line.append(f"  window {label} ({clock(bounds[0])[:8]}–{clock(bounds[1])[:8]} UTC)")
            else:
                line.append(f"  window all ({clock(stats.first_ns, True)} – {clock(stats.last_ns)[:8]} UTC)")
        if self.opening:
            line.append(f"  opening flow {self.opening[:12]}…", style="dark_orange3")
        if self.error:
            line.append(f"  ⚠ {self.error}", style="bold red")
        return line
