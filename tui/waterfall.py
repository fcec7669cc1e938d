"""The waterfall: one line per span of a flow, drawn only for the lines on screen."""

from __future__ import annotations

import math
import time

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tui.cells import SERVICE_COLOURS, ms
from tui.flow_data import Row, Waterfall as WaterfallData

DURATION_WIDTH = 10


class Waterfall(ScrollView, can_focus=True):
    """Spans in call-tree order with consumers under their producers; bars on the flow's
    time axis; ▌ and solid bars mark the critical path, red the failing spans."""

    HELP_TITLE = "waterfall"
    BINDINGS = [
        Binding("up,k", "move(-1)", "Up", show=False),
        Binding("down,j", "move(1)", "Down", show=False),
        Binding("pageup", "move(-20)", "Page up", show=False),
        Binding("pagedown", "move(20)", "Page down", show=False),
        Binding("home", "move(-1000000)", "Top", show=False),
        Binding("end", "move(1000000)", "Bottom", show=False),
        Binding("enter", "toggle", "Fold", tooltip="Fold or unfold the subtree"),
        Binding("left", "fold(True)", "Fold", show=False),
        Binding("right", "fold(False)", "Unfold", show=False),
        Binding("d", "detail", "Detail", tooltip="Span detail: attributes, resource, events, links, logs"),
        Binding("l", "follow", "Follow link", tooltip="Follow a message link: producer → consumers, consumer → producer"),
        Binding("o", "origin", "Origin", tooltip="Jump to the failure origin"),
        Binding("p", "next_critical", "Next critical"),
        Binding("left_square_bracket,alt+left", "back", "Link back", show=False),
        Binding("right_square_bracket,alt+right", "forward", "Link forward", show=False),
    ]
    DEFAULT_CSS = """
    Waterfall { height: 1fr; }
    """

    cursor: reactive[int] = reactive(0)

    class Selected(Message):
        """The cursor is on a span."""

        def __init__(self, row: Row) -> None:
            super().__init__()
            self.row = row

    class DetailRequested(Message):
        def __init__(self, row: Row) -> None:
            super().__init__()
            self.row = row

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.data: WaterfallData | None = None
        self.collapsed: set[int] = set()
        self.lines: list[int] = []
        self.history: list[str] = []
        self.history_at = -1
        self._link_turn: dict[str, int] = {}
        self.rendered_at = 0.0

    # --- data -----------------------------------------------------------------------------

    def show(self, waterfall: WaterfallData, focus_key: str | None = None) -> None:
        self.data = waterfall
        self.collapsed = set()
        self._relayout()
        start = waterfall.position(focus_key) if focus_key else None
        self._go(waterfall.rows[start].key if start is not None else waterfall.rows[0].key
                 if waterfall.rows else None)

    def _relayout(self) -> None:
        rows = self.data.rows if self.data else []
        lines, i = [], 0
        while i < len(rows):
            lines.append(i)
            i += 1 + rows[i].children if i in self.collapsed else 1
        self.lines = lines
        self.virtual_size = Size(self.size.width, len(lines))
        self.refresh()

    @property
    def row(self) -> Row | None:
        if not self.data or not self.lines:
            return None
        return self.data.rows[self.lines[min(self.cursor, len(self.lines) - 1)]]

    def row_text(self, line: int) -> str:
        """The text of a visible line (for people reading logs and for tests)."""
        return self._strip(line, self.size.width or 120).text

    # --- rendering ------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        line = y + int(self.scroll_offset.y)
        if not self.data or line >= len(self.lines):
            return Strip.blank(self.size.width, self.rich_style)
        self.rendered_at = time.perf_counter()      # when spans were last drawn (benchmark)
        return self._strip(line, self.size.width)

    def _strip(self, line: int, width: int) -> Strip:
        data = self.data
        row = data.rows[self.lines[line]]
        index = self.lines[line]
        base = self.rich_style
        selected = line == self.cursor
        colour = SERVICE_COLOURS[data.services.index(row.service) % len(SERVICE_COLOURS)] \
            if row.service in data.services else "default"
        label_width = max(24, min(64, width * 2 // 5))
        bar_width = max(8, width - label_width - DURATION_WIDTH - 2)
        segments: list[Segment] = []
        mark = Style(color="red", bold=True) if row.origin else Style(color="yellow", bold=True)
        segments.append(Segment("▌" if row.critical else " ", mark if row.critical else base))
        fold = " "
        if row.children:
            fold = "▸" if index in self.collapsed else "▾"
        indent = "  " * min(row.depth, 20) + fold + " "
        segments.append(Segment(indent, Style(dim=True)))
        used = 1 + len(indent)
        if row.wait:
            dest = f" {row.destination}" if row.destination else ""
            text = f"⇢ broker wait {ms((row.end_ns - row.start_ns) / 1e6)}{dest}"
            segments.append(Segment(text[: label_width - used],
                                    Style(color="yellow", italic=True, bold=row.critical)))
            used += min(len(text), label_width - used)
        else:
            if row.origin:
                segments.append(Segment("✖ origin ", Style(color="red", bold=True)))
                used += 9
            service = row.service + " "
            segments.append(Segment(service[: max(0, label_width - used)],
                                    Style(color=colour, bold=True)))
            used += min(len(service), max(0, label_width - used))
            name = row.name + (" ✗" if row.error and not row.origin else "")
            name_style = Style(color="red", bold=row.critical) if row.error else Style(bold=row.critical)
            room = max(0, label_width - used)
            segments.append(Segment(name[:room], name_style))
            used += min(len(name), room)
        segments.append(Segment(" " * max(0, label_width - used)))
        duration = ms((row.end_ns - row.start_ns) / 1e6).rjust(DURATION_WIDTH - 1) + " "
        segments.append(Segment(duration, Style(color="red") if row.error else Style(dim=not row.critical)))
        segments.extend(self._bar(row, bar_width, colour))
        strip = Strip(segments).crop_extend(0, width, base)
        if selected:
            strip = strip.apply_style(Style(reverse=True) if self.has_focus else Style(underline=True))
        return strip

    def _bar(self, row: Row, width: int, colour: str) -> list[Segment]:
        data = self.data
        total = max(data.end_ns - data.start_ns, 1)
        left = (row.start_ns - data.start_ns) / total * width
        right = (row.end_ns - data.start_ns) / total * width
        a = min(width - 1, max(0, int(left)))
        b = min(width, max(a + 1, math.ceil(right)))
        if row.wait:
            glyph, style = "┄", Style(color="yellow", bold=row.critical)
        elif row.critical:
            glyph, style = "█", Style(color="red" if row.error else colour, bold=True)
        else:
            glyph, style = "━", Style(color="red" if row.error else colour)
        return [Segment(" " * a), Segment(glyph * (b - a), style), Segment(" " * (width - b))]

    # --- movement -------------------------------------------------------------------------

    def watch_cursor(self, old: int, new: int) -> None:
        self.refresh()
        self.scroll_to_region_line(new)
        if self.row is not None:
            self.post_message(self.Selected(self.row))

    def scroll_to_region_line(self, line: int) -> None:
        top = int(self.scroll_offset.y)
        height = max(1, self.size.height)
        if line < top:
            self.scroll_to(y=line, animate=False)
        elif line >= top + height:
            self.scroll_to(y=line - height + 1, animate=False)

    def action_move(self, delta: int) -> None:
        if self.lines:
            self.cursor = max(0, min(len(self.lines) - 1, self.cursor + delta))

    def action_toggle(self) -> None:
        self._fold(None)

    def action_fold(self, fold: bool) -> None:
        self._fold(fold)

    def _fold(self, fold: bool | None) -> None:
        if not self.lines:
            return
        index = self.lines[self.cursor]
        if not self.data.rows[index].children:
            return
        if fold is None:
            fold = index not in self.collapsed
        (self.collapsed.add if fold else self.collapsed.discard)(index)
        self._relayout()
        self.cursor = self.lines.index(index)

    def action_detail(self) -> None:
        if self.row is not None:
            self.post_message(self.DetailRequested(self.row))

    def action_origin(self) -> None:
        if self.data and self.data.origin:
            self._go(self.data.origin, remember=True)

    def action_next_critical(self) -> None:
        if not self.lines:
            return
        for line in list(range(self.cursor + 1, len(self.lines))) + list(range(0, self.cursor)):
            row = self.data.rows[self.lines[line]]
            if row.critical and not row.wait:
                self.cursor = line
                return

    def action_follow(self) -> None:
        """Producer → its consumers in turn; consumer → its producer."""
        row = self.row
        if row is None:
            return
        targets = self.data.links.get(row.key, [])
        if not targets:
            self.notify("no message link from this span", severity="warning")
            return
        turn = self._link_turn.get(row.key, 0)
        self._link_turn[row.key] = turn + 1
        self._go(targets[turn % len(targets)], remember=True)

    def jump(self, key: str) -> None:
        """Move to a span (a link followed from elsewhere), remembered for back/forward."""
        self._go(key, remember=True)

    def _go(self, key: str | None, remember: bool = False) -> None:
        if key is None or self.data is None:
            return
        position = self.data.position(key)
        if position is None:
            return
        if remember:
            current = self.row
            if current is not None and (self.history_at < 0 or self.history[self.history_at] != current.key):
                del self.history[self.history_at + 1:]
                self.history.append(current.key)
                self.history_at = len(self.history) - 1
            del self.history[self.history_at + 1:]
            self.history.append(key)
            self.history_at = len(self.history) - 1
        self._reveal(position)
        self.cursor = self.lines.index(position)
        self.refresh()

    def _reveal(self, position: int) -> None:
        """Unfold whatever hides the row at `position`."""
        hidden = [c for c in self.collapsed if c < position <= c + self.data.rows[c].children]
        if hidden:
            self.collapsed.difference_update(hidden)
            self._relayout()

    def action_back(self) -> None:
        if self.history_at > 0:
            self.history_at -= 1
            self._go(self.history[self.history_at])

    def action_forward(self) -> None:
        if self.history_at < len(self.history) - 1:
            self.history_at += 1
            self._go(self.history[self.history_at])

    def on_resize(self) -> None:
        self.virtual_size = Size(self.size.width, len(self.lines))

    def on_click(self, event) -> None:
        line = event.y + int(self.scroll_offset.y)
        if 0 <= line < len(self.lines):
            if line == self.cursor and event.chain >= 2:
                self.action_detail()
            self.cursor = line
