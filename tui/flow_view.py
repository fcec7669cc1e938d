"""One flow: its waterfall across traces, critical path, failure origin and message links."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Static

from tui import cells, flow_data
from tui.messages import CompareFlows, MarkFlow, OpenSpan, WriteReport
from tui.waterfall import Waterfall


class FlowScreen(Screen):
    """A flow's waterfall, read before the screen opens (one layout, and no screen to draw
    while the flow is analyzed); escape goes back to the list."""

    HELP_TITLE = "flow"
    AUTO_FOCUS = "#waterfall"
    BINDINGS = [
        Binding("escape,backspace", "app.pop_screen", "Back"),
        Binding("c", "compare", "Compare"),
        Binding("m", "mark", "Mark", show=False),     # in the help; the footer is full
        Binding("R", "report", "Report", tooltip="Write an incident report of this flow next to the store"),
        Binding("question_mark", "app.help", "Help", key_display="?"),
        Binding("f1", "app.help", "Help", show=False),
    ]

    def __init__(self, waterfall: flow_data.Waterfall, span_key: str | None = None) -> None:
        super().__init__()
        self.flow_id = waterfall.flow_id
        self.span_key = span_key
        self.waterfall_data = waterfall

    def compose(self) -> ComposeResult:
        yield Static(f"flow {self.flow_id}", id="flow-header")
        yield Static("", id="flow-legend", classes="note")
        yield Waterfall(id="waterfall")
        yield Static("", id="flow-selected")
        yield Footer()

    def on_mount(self) -> None:
        self._show(self.waterfall_data)

    def _show(self, waterfall: flow_data.Waterfall) -> None:
        s = waterfall.summary
        header = Text()
        header.append(f" flow {waterfall.flow_id}", style="bold")
        if isinstance(s["key"], str):
            header.append(f"  {s['key']}", style="bold")
        header.append("  ")
        header.append_text(cells.status(s["status"]))
        header.append("  ")
        header.append_text(cells.style(s["style"]))
        header.append(f"  {cells.ms(s['duration_ms'])}  {s['traces']} traces  {s['spans']} spans"
                      f"  {s['errors']} errors  type {s['type'] or '-'}")
        self.query_one("#flow-header", Static).update(header)
        legend = Text(" ")
        for i, service in enumerate(waterfall.services):
            legend.append("■ ", style=cells.SERVICE_COLOURS[i % len(cells.SERVICE_COLOURS)])
            legend.append(f"{service}  ")
        legend.append("│ ▌█ critical path  ━ other  ┄ broker wait  ✖ failure origin", style="dim")
        self.query_one("#flow-legend", Static).update(legend)
        self.query_one(Waterfall).show(waterfall, self.span_key)

    @on(Waterfall.Selected)
    def _selected(self, event: Waterfall.Selected) -> None:
        row = event.row
        text = Text(" ")
        if row.wait:
            text.append(f"broker wait before {row.service} {row.name}: "
                        f"{cells.ms((row.end_ns - row.start_ns) / 1e6)} via {row.via}"
                        + (f" on {row.destination}" if row.destination else ""))
        else:
            text.append(f"{row.service} {row.name}", style="bold")
            text.append(f"  {row.kind}  trace {row.trace_id}  span {row.span_id}"
                        f"  +{cells.ms((row.start_ns - self.waterfall_data.start_ns) / 1e6)}")
            if row.critical:
                text.append("  on the critical path", style="yellow")
            if row.origin:
                text.append("  failure origin", style="bold red")
            if row.status_message:
                text.append(f"  {row.status_message}", style="red")
            links = self.waterfall_data.links.get(row.key)
            if links:
                text.append(f"  l: follow {len(links)} link{'s' if len(links) > 1 else ''}", style="dim")
        self.query_one("#flow-selected", Static).update(text)

    @on(Waterfall.DetailRequested)
    def _detail(self, event: Waterfall.DetailRequested) -> None:
        self.post_message(OpenSpan(event.row.trace_id, event.row.span_id))

    def go_to(self, key: str) -> None:
        self.query_one(Waterfall).jump(key)

    def action_compare(self) -> None:
        self.post_message(CompareFlows(self.flow_id))

    def action_mark(self) -> None:
        self.post_message(MarkFlow(self.flow_id))

    def action_report(self) -> None:
        self.post_message(WriteReport(flow_id=self.flow_id))
