"""Flows of a type, a window or a search, sortable by start, duration and errors: the first
FLOWS_SHOWN of them, read from the store's `flows` in that order, in an Arrow-backed table
that draws only the rows in view."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.reactive import reactive
from textual.widgets import Input, Static
from textual_fastdatatable import ArrowBackend, DataTable

from tui import cells, window_data
from tui.filter_input import FilterInput
from tui.messages import CompareFlows, MarkFlow, OpenFlow
from tui.window_view import WindowedView

COLUMNS = (("Start (UTC)", "start"), ("Duration ms", "duration"), ("Status", None), ("Style", None),
           ("Flow type", None), ("Key", None), ("Traces", None), ("Spans", None),
           ("Errors", "errors"), ("Flow id", None))


def _markup(text: str, colour: str) -> str:
    return f"[{colour}]{text}[/]" if colour else text


def arrow_rows(rows):
    """The flows list as Arrow: formatted strings (Rich markup) and numbers, one column each."""
    import pyarrow as pa

    return pa.table({
        "Start (UTC)": [cells.clock(ns) for ns in rows["start_ns"]],
        "Duration ms": rows["duration_ms"].round(1).astype(float),
        "Status": [_markup(v, cells.STATUS_COLOURS.get(v, "")) for v in rows["status"]],
        "Style": [_markup(v, cells.STYLE_COLOURS.get(v, "")) for v in rows["style"]],
        "Flow type": [v if isinstance(v, str) else "-" for v in rows["type"]],
        "Key": [v if isinstance(v, str) else "-" for v in rows["key"]],
        "Traces": rows["traces"].astype("int64"),
        "Spans": rows["spans"].astype("int64"),
        "Errors": rows["errors"].astype("int64"),
        "Flow id": rows["flow_id"].astype(str),
    })


class FlowsView(WindowedView):
    """The flows list; enter opens a flow."""

    HELP_TITLE = "flows"
    BINDINGS = [
        Binding("s", "cycle_sort", "Sort", tooltip="Sort by start, duration or errors (or click a header)"),
        Binding("r", "reverse", "Reverse", tooltip="Reverse the order"),
        Binding("f", "failed", "Failed only", tooltip="Failed flows only (again: all)"),
        Binding("slash", "search", "Search", tooltip="Search: trace id, order id, flow id, service, error text"),
        Binding("x", "clear", "Clear", tooltip="Clear the type, the search and the failed-only filter"),
        Binding("m", "mark", "Mark"),
        Binding("c", "compare", "Compare"),
    ]
    NOTE = "#flows-note"
    flow_query: reactive[window_data.FlowQuery] = reactive(window_data.FlowQuery)

    def __init__(self) -> None:
        super().__init__()
        self.type_name: str | None = None
        self.flow_ids: list[str] = []           # row → flow id of the table shown
        self._fill_lock = asyncio.Lock()

    def compose(self) -> ComposeResult:
        with Horizontal(id="flow-bar"):
            yield FilterInput(placeholder="search: trace id, order id, flow id, service, error text  (/)",
                        id="flow-search")
        yield Static("Reading the flows…", id="flows-note", classes="note")
        yield DataTable(id="flow-table", cursor_type="row", zebra_stripes=True, show_row_labels=False)

    def set_type(self, type_id: str | None, name: str | None) -> None:
        self.type_name = name
        self.flow_query = replace(self.flow_query, type_id=type_id)

    def watch_flow_query(self, _) -> None:
        self.changed()

    def state(self) -> tuple:
        return (*super().state(), self.flow_query)

    def load(self) -> None:
        self.compute(replace(self.flow_query, window=self.window))

    @work(thread=True, exclusive=True, group="flows", exit_on_error=False)
    def compute(self, query) -> None:
        try:
            with self.app.open_store() as store:
                rows, total = window_data.flow_rows(store, query)
            table = arrow_rows(rows)
        except Exception as exc:
            self.failed(exc)
            return
        self.deliver(self._fill, table, list(rows["flow_id"]), total, query)

    async def _fill(self, table, flow_ids: list[str], total: int, query: window_data.FlowQuery) -> None:
        async with self._fill_lock:         # two workers' results: one swap at a time
            old = self.query_one("#flow-table", DataTable)
            focused = old.has_focus
            await old.remove()
            new = DataTable(id="flow-table", backend=ArrowBackend(table), cursor_type="row",
                            zebra_stripes=True, show_row_labels=False)
            self.flow_ids = flow_ids
            await self.mount(new)
            if focused:
                new.focus()
        parts = [f"{total:,} flows"]
        if query.type_id:
            parts.append(f"type {self.type_name or query.type_id}")
        if query.search:
            parts.append(f"matching {query.search!r}")
        if query.failed_only:
            parts.append("failed only")
        order = "newest" if query.descending else "oldest"
        if query.sort != "start":
            order = ("longest" if query.descending else "shortest") if query.sort == "duration" \
                else ("most errors" if query.descending else "fewest errors")
        parts.append(f"{order} first (s, r)")
        if total > table.num_rows:
            parts.append(f"showing the first {table.num_rows:,}: search to narrow")
        self.query_one("#flows-note", Static).update(" · ".join(parts) + " · x clears")

    def action_cycle_sort(self) -> None:
        sorts = list(window_data.FLOW_SORTS)
        self.flow_query = replace(self.flow_query, sort=sorts[(sorts.index(self.flow_query.sort) + 1) % len(sorts)])

    def action_reverse(self) -> None:
        self.flow_query = replace(self.flow_query, descending=not self.flow_query.descending)

    def action_failed(self) -> None:
        self.flow_query = replace(self.flow_query, failed_only=not self.flow_query.failed_only)

    def action_search(self) -> None:
        self.query_one("#flow-search", Input).focus()

    def action_clear(self) -> None:
        self.type_name = None
        self.query_one("#flow-search", Input).value = ""
        self.flow_query = window_data.FlowQuery()

    def _flow_at_cursor(self) -> str | None:
        row = self.query_one("#flow-table", DataTable).cursor_row
        return self.flow_ids[row] if 0 <= row < len(self.flow_ids) else None

    def action_mark(self) -> None:
        flow_id = self._flow_at_cursor()
        if flow_id:
            self.post_message(MarkFlow(flow_id))

    def action_compare(self) -> None:
        flow_id = self._flow_at_cursor()
        if flow_id:
            self.post_message(CompareFlows(flow_id))

    @on(Input.Submitted, "#flow-search")
    def _search(self, event: Input.Submitted) -> None:
        self.flow_query = replace(self.flow_query, search=event.value.strip())
        self.query_one("#flow-table", DataTable).focus()

    @on(FilterInput.Left, "#flow-search")
    def _search_left(self) -> None:
        """Back to the list, the box showing the search in force (what was typed is dropped)."""
        self.query_one("#flow-search", Input).value = self.flow_query.search or ""
        self.query_one("#flow-table", DataTable).focus()

    @on(DataTable.HeaderSelected, "#flow-table")
    def _header(self, event: DataTable.HeaderSelected) -> None:
        key = COLUMNS[event.column_index][1]
        if key in window_data.FLOW_SORTS:
            descending = not self.flow_query.descending if key == self.flow_query.sort else True
            self.flow_query = replace(self.flow_query, sort=key, descending=descending)

    @on(DataTable.RowSelected, "#flow-table")
    def _open(self, event: DataTable.RowSelected) -> None:
        self._open_row(event.cursor_row)

    def on_click(self, event: events.Click) -> None:
        """A double click opens the flow (this table only moves its cursor on a click)."""
        table = self.query_one("#flow-table", DataTable)
        if event.chain >= 2 and event.widget is table:
            self._open_row(table.cursor_row)

    def _open_row(self, row: int) -> None:
        if 0 <= row < len(self.flow_ids):
            self.post_message(OpenFlow(self.flow_ids[row]))
