"""One span: attributes, resource, events, links (followable) and the logs of it and its trace."""

from __future__ import annotations

import json

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option

from tui import cells, data
from tui.messages import OpenFlow


def _value(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _pairs(values: dict) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for key in sorted(values):
        table.add_row(key, _value(values[key]))
    return table


class SpanScreen(Screen):
    """Everything stored about one span, and the logs written while it ran."""

    HELP_TITLE = "span"
    BINDINGS = [
        Binding("escape,backspace", "app.pop_screen", "Back"),
        Binding("question_mark", "app.help", "Help", key_display="?"),
        Binding("f1", "app.help", "Help", show=False),
    ]

    def __init__(self, trace_id: str, span_id: str) -> None:
        super().__init__()
        self.trace_id, self.span_id = trace_id, span_id
        self.detail: data.SpanDetail | None = None

    def compose(self) -> ComposeResult:
        yield Static(f" span {self.span_id} in trace {self.trace_id}  loading…", id="span-header")
        with VerticalScroll(id="span-body"):
            yield Static("", id="span-logs", classes="section")
            yield Static("", id="span-attributes", classes="section")
            yield Static("", id="span-events", classes="section")
            yield Static("Links", classes="section-title")
            yield OptionList(id="span-links")
            yield Static("", id="span-resource", classes="section")
        yield Footer()

    def on_mount(self) -> None:
        self.load(self.trace_id, self.span_id)

    @work(thread=True, exclusive=True, group="span", exit_on_error=False)
    def load(self, trace_id: str, span_id: str) -> None:
        try:
            with self.app.open_store() as store:
                detail = data.span_detail(store, trace_id, span_id)
        except Exception as exc:
            self.app.call_from_thread(self._failed, f"{type(exc).__name__}: {exc}")
            return
        self.app.call_from_thread(self._show, detail)

    def _failed(self, error: str) -> None:
        self.query_one("#span-header", Static).update(Text(f" {error}", style="bold red"))

    def _show(self, detail: data.SpanDetail | None) -> None:
        if detail is None:
            self._failed(f"span {self.span_id} is not in the store")
            return
        self.detail = detail
        f = detail.fields
        header = Text()
        header.append(f" {f['service_name']} {f['name']}", style="bold")
        header.append(f"  {f['kind']}  ")
        header.append(f"{f['status_code']}", style="bold red" if f["status_code"] == "ERROR" else "green4")
        if f["status_message"]:
            header.append(f" {f['status_message']}", style="red")
        header.append(f"\n {cells.ms(f['duration_ns'] / 1e6)} from {cells.clock(f['start_ns'])} UTC"
                      f"  trace {detail.trace_id}  span {detail.span_id}"
                      f"  parent {f['parent_span_id'] or '-'}  scope {f['scope_name'] or '-'}")
        self.query_one("#span-header", Static).update(header)
        logs = Text()
        own = detail.span_logs
        logs.append(f"Logs of this span ({len(own)})\n", style="bold underline")
        for line in own:
            self._log(logs, line, False)
        if not own:
            logs.append("  none\n", style="dim")
        others = [line for line in detail.logs if line.span_id != detail.span_id]
        logs.append(f"Other logs of the trace ({len(others)})\n", style="bold underline")
        for line in others[:200]:
            self._log(logs, line, True)
        self.query_one("#span-logs", Static).update(logs)
        self.query_one("#span-attributes", Static).update(self._section("Attributes", detail.attributes))
        events = Text(f"Events ({len(detail.events)})\n", style="bold underline")
        for event in detail.events:
            events.append(f"  {event.get('time', '')}  ", style="dim")
            events.append(f"{event.get('name')}", style="bold")
            events.append(f"  {_value(event.get('attributes') or {})}\n")
        self.query_one("#span-events", Static).update(events)
        links = self.query_one("#span-links", OptionList)
        links.clear_options()
        for link in detail.links:
            links.add_option(Option(f"→ links to {link['trace_id']}:{link['span_id']}",
                                    id=f"{link['trace_id']}:{link['span_id']}"))
        for back in detail.linked_from:
            links.add_option(Option(f"← linked from {back['service_name']} {back['name']} "
                                    f"({back['trace_id']}:{back['span_id']})",
                                    id=f"{back['trace_id']}:{back['span_id']}"))
        if not links.option_count:
            links.add_option(Option("no links", disabled=True))
        else:
            links.highlighted = 0
            links.focus()               # enter follows the first link
        self.query_one("#span-resource", Static).update(self._section("Resource", detail.resource))

    @staticmethod
    def _log(text: Text, line: data.LogLine, dim: bool) -> None:
        colour = "red" if line.severity.upper() in ("ERROR", "FATAL", "CRITICAL") else (
            "dark_orange3" if line.severity.upper().startswith("WARN") else "")
        text.append(f"  {cells.clock(line.ts_ns)} ", style="dim")
        text.append(f"{line.severity:<5} ", style=colour)
        text.append(f"{line.service}: ", style="dim" if dim else "bold")
        text.append(f"{line.body}\n", style="dim" if dim else "")

    @staticmethod
    def _section(title: str, values: dict):
        from rich.console import Group

        return Group(Text(f"{title} ({len(values)})", style="bold underline"), _pairs(values))

    @on(OptionList.OptionSelected, "#span-links")
    def _follow(self, event: OptionList.OptionSelected) -> None:
        self.follow(event.option.id)

    @work(thread=True, exclusive=True, group="span-link", exit_on_error=False)
    def follow(self, key: str) -> None:
        """Open the flow of a linked span at that span."""
        try:
            with self.app.open_store() as store:
                flow_id = data.flow_of_trace(store, key.split(":", 1)[0])
        except Exception as exc:
            self.app.call_from_thread(self._failed, f"{type(exc).__name__}: {exc}")
            return
        self.app.call_from_thread(self._open_flow, flow_id, key)

    def _open_flow(self, flow_id: str | None, key: str) -> None:
        if flow_id is None:
            self.notify("that span is not in the analysis (yet)", severity="warning")
            return
        self.app.pop_screen()
        self.app.post_message(OpenFlow(flow_id, key))
