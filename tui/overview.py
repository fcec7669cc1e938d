"""Flow types: style, count, error rate, p50/p95 and a sparkline of flows started; sortable and
filterable. Under the list, the highlighted type's flows, error rate and p95 over the window as
small charts."""

from __future__ import annotations

from rich.markup import escape
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.reactive import reactive
from textual.widgets import DataTable, Input, Static

from tui import cells, data, window_data
from tui.filter_input import FilterInput
from tui.messages import OpenType
from tui.window_view import WindowedView

COLUMNS = (("Flow type", "name"), ("Style", "style"), ("Flows", "flows"),
           ("Errors", "error_rate"), ("p50", "p50_ms"), ("p95", "p95_ms"), ("Trend", None))


class OverviewView(WindowedView):
    """Every flow type in the window; enter lists its flows."""

    HELP_TITLE = "flow types"
    BINDINGS = [
        Binding("s", "cycle_sort", "Sort", tooltip="Sort by the next column (or click a header)"),
        Binding("slash", "filter", "Filter", tooltip="Filter the types by name or style"),
    ]
    NOTE = "#overview-note"
    stats: reactive[data.StoreStats | None] = reactive(None)
    analyzing: reactive[tuple[int, int] | None] = reactive(None)
    sort: reactive[str] = reactive("flows")
    text: reactive[str] = reactive("")

    def compose(self) -> ComposeResult:
        yield FilterInput(placeholder="filter flow types by name or style  (/)", id="type-filter")
        yield Static("Opening the store…", id="overview-note", classes="note")
        yield DataTable(id="types", cursor_type="row", zebra_stripes=True)
        yield Static("", id="type-trends", classes="note")

    def watch_stats(self, _) -> None:
        self._loading_note()

    def watch_analyzing(self, _) -> None:
        self._loading_note()

    def _loading_note(self) -> None:
        """Before the flow types: what the store holds, and the analysis catching up."""
        stats = self.stats
        if stats is None or self._loaded is not None:
            return
        note = self.query_one("#overview-note", Static)
        if stats.spans == 0:
            note.update("The store holds no spans yet: they appear here as a collector receives "
                        "them (tracekit collect, or tracekit demo).")
            return
        services = ", ".join(s for s in stats.services[:8]) + (" …" if len(stats.services) > 8 else "")
        text = (f"[b]{stats.spans:,}[/b] spans from {len(stats.services)} services ({services}), "
                f"{cells.clock(stats.first_ns, True)} – {cells.clock(stats.last_ns)[:8]} UTC.\n")
        if self.analyzing is not None:
            done, total = self.analyzing
            text += (f"Analyzing the {total:,} spans the store's analysis tables lack "
                     f"({done:,} done): the flow types appear when they are current.")
        else:
            text += "Reading the flow types…"
        note.update(text)

    def state(self) -> tuple:
        return (*super().state(), self.text, self.sort, self._is_narrow())

    def load(self) -> None:
        self.compute(self.window, self.text, self.sort, 8 if self._is_narrow() else 16)

    watch_sort = watch_text = lambda self, _: self.changed()

    @work(thread=True, exclusive=True, group="overview", exit_on_error=False)
    def compute(self, window, text, sort, buckets) -> None:
        try:
            with self.app.open_store() as store:
                rows = window_data.type_rows(store, window, text, sort, buckets)
        except Exception as exc:
            self.failed(exc)
            return
        self.deliver(self._fill, rows)

    def _is_narrow(self) -> bool:
        return self.app.size.width < 100

    def _fill(self, rows) -> None:
        table = self.query_one("#types", DataTable)
        narrow = self._is_narrow()      # at 80 columns: short styles and sparklines
        selected = None
        if table.row_count and table.cursor_row < table.row_count:
            selected = table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value
        values = []
        for r in rows.itertuples():
            style = cells.style(r.style)
            if narrow:
                style.truncate(5)
            name = r.name if not narrow or len(r.name) <= 22 else "…" + r.name[-21:]
            values.append((name, style, cells.right(f"{r.flows:,}"), cells.percent(r.error_rate),
                           cells.right(cells.ms(r.p50_ms)), cells.right(cells.ms(r.p95_ms)), r.trend))
        cells.fill_table(table, [(label, key or "trend") for label, key in COLUMNS], values,
                         list(rows["type_id"]), max_width=22 if narrow else 48)
        self._trends = {r.type_id: r for r in rows.itertuples()}
        note = self.query_one("#overview-note", Static)
        sort_label = dict((k, lbl) for lbl, k in COLUMNS if k)[self.sort]
        if not len(rows) and self.window and not self.text:
            note.update("No flow started in this window · w picks another")
            return
        note.update(f"{len(rows)} flow types, {int(rows['flows'].sum()) if len(rows) else 0:,} "
                    f"flows · sorted by {sort_label} (s) · enter: its flows")
        if selected is not None:
            try:
                table.move_cursor(row=table.get_row_index(selected))
            except Exception:
                pass

    @on(DataTable.RowHighlighted, "#types")
    def _show_trends(self, event: DataTable.RowHighlighted) -> None:
        """The highlighted type over the window: flows started, error rate (█: all failed) and
        p95, one character per stretch of the window."""
        row = getattr(self, "_trends", {}).get(event.row_key.value)
        trends = self.query_one("#type-trends", Static)
        if row is None:
            trends.update("")
            return
        trends.update(f"[b]{escape(row.name)}[/b] over the window:  flows [cyan]{row.trend}[/cyan]   "
                      f"errors [red]{row.error_trend}[/red]   p95 [yellow]{row.p95_trend}[/yellow]"
                      f" ({cells.ms(row.p95_ms)})")

    def action_cycle_sort(self) -> None:
        sorts = window_data.TYPE_SORTS
        self.sort = sorts[(sorts.index(self.sort) + 1) % len(sorts)]

    def action_filter(self) -> None:
        self.query_one("#type-filter", Input).focus()

    @on(DataTable.HeaderSelected, "#types")
    def _header(self, event: DataTable.HeaderSelected) -> None:
        key = event.column_key.value
        if key in window_data.TYPE_SORTS:
            self.sort = key

    @on(Input.Changed, "#type-filter")
    def _filter(self, event: Input.Changed) -> None:
        self.text = event.value

    @on(Input.Submitted, "#type-filter")
    @on(FilterInput.Left, "#type-filter")
    def _filter_done(self) -> None:
        self.query_one("#types", DataTable).focus()

    @on(DataTable.RowSelected, "#types")
    def _open(self, event: DataTable.RowSelected) -> None:
        name = str(event.data_table.get_row(event.row_key)[0])
        self.post_message(OpenType(event.row_key.value, name))
