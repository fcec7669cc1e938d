"""The SQL console: an editor with history, the store's tables and columns, results in an
Arrow-backed table, errors inline, export to CSV or Parquet."""

from __future__ import annotations

import asyncio

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Static, TextArea, Tree
from textual_fastdatatable import ArrowBackend, DataTable

from tui import data

FIRST_QUERY = "SELECT service_name, count(*) AS spans FROM spans GROUP BY ALL ORDER BY spans DESC"


class SqlConsole(Horizontal):
    """Read-only DuckDB SQL on the store, its analysis tables included."""

    HELP_TITLE = "SQL console"
    BINDINGS = [
        Binding("ctrl+r,ctrl+enter", "run", "Run", priority=True),
        Binding("ctrl+up", "history(-1)", "Previous", priority=True),
        Binding("ctrl+down", "history(1)", "Next", priority=True),
        Binding("ctrl+e", "export('csv')", "CSV", priority=True),
        Binding("ctrl+o", "export('parquet')", "Parquet", priority=True),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.history: list[str] = []
        self.history_at = 0
        self.result = None              # the last pyarrow result shown
        self.last_query: str | None = None
        self._swap_lock = asyncio.Lock()

    def compose(self) -> ComposeResult:
        yield Tree("tables", id="schema")
        with Vertical(id="sql-main"):
            yield TextArea(FIRST_QUERY, id="sql-editor", show_line_numbers=False)
            yield Static("ctrl+r runs · ctrl+↑/↓ history · ctrl+e CSV · ctrl+o Parquet",
                         id="sql-status", classes="note")
            yield DataTable(id="sql-result", data=None, show_row_labels=False)

    def on_mount(self) -> None:
        tree = self.query_one("#schema", Tree)
        tree.show_root = False
        tree.root.expand()

    def analysis_ready(self) -> None:
        """The store's analysis tables can be read: list the tables (once)."""
        if not self.query_one("#schema", Tree).root.children:
            self.load_schema()

    @work(thread=True, group="sql-schema", exit_on_error=False)
    def load_schema(self) -> None:
        try:
            with self.app.open_store() as store:
                columns = data.schema(store)
        except Exception as exc:
            columns = {"(unavailable)": [(str(exc), "")]}
        self.app.call_from_thread(self._fill_schema, columns)

    def _fill_schema(self, columns: dict) -> None:
        tree = self.query_one("#schema", Tree)
        tree.root.remove_children()
        analysis = [n for n in data.ANALYSIS_TABLES if n in columns]
        storage = [n for n in data.ANALYSIS_STORAGE if n in columns]
        for name in columns:
            if name not in analysis and name not in storage:
                self._table(tree.root, name, columns[name])
        for label, names, expand in (("analysis tables", analysis, True),
                                     ("analysis storage", storage, False)):
            if names:
                branch = tree.root.add(Text(label, style="bold"), expand=expand)
                for name in names:
                    self._table(branch, name, columns[name])

    @staticmethod
    def _table(parent, name: str, columns: list) -> None:
        branch = parent.add(name, data=name)
        for column, kind in columns:
            branch.add_leaf(Text.assemble(column, (f" {kind.lower()}", "dim")), data=column)

    @on(Tree.NodeSelected, "#schema")
    def _insert(self, event: Tree.NodeSelected) -> None:
        if event.node.data and not event.node.children:
            self.query_one("#sql-editor", TextArea).insert(str(event.node.data))

    def action_run(self) -> None:
        query = self.query_one("#sql-editor", TextArea).text.strip()
        if not query:
            return
        if not self.history or self.history[-1] != query:
            self.history.append(query)
        self.history_at = len(self.history)
        self._status(Text("running…", style="dark_orange3"))
        self.run_query(query)

    def action_history(self, step: int) -> None:
        """Older (-1) or newer (+1) queries, skipping the one already in the editor."""
        editor = self.query_one("#sql-editor", TextArea)
        at = self.history_at
        while 0 <= at + step < len(self.history):
            at += step
            if self.history[at] != editor.text.strip():
                self.history_at = at
                editor.text = self.history[at]
                return

    @work(thread=True, exclusive=True, group="sql", exit_on_error=False)
    def run_query(self, query: str) -> None:
        started = self.app.clock()
        try:
            with self.app.open_store() as store:
                table = data.run_sql(store, query)
        except Exception as exc:
            self.app.call_from_thread(self._error, query, str(exc))
            return
        self.app.call_from_thread(self._show, query, table, self.app.clock() - started)

    async def _show(self, query: str, table, elapsed: float) -> None:
        truncated = table.num_rows > data.SQL_ROWS_SHOWN
        if truncated:
            table = table.slice(0, data.SQL_ROWS_SHOWN)
        self.result, self.last_query = table, query
        # A fresh grid over the new Arrow table: it renders only the rows in view.
        async with self._swap_lock:
            await self.query_one("#sql-result", DataTable).remove()
            await self.query_one("#sql-main", Vertical).mount(
                DataTable(id="sql-result", backend=ArrowBackend(table), show_row_labels=False))
        more = f" (the first {data.SQL_ROWS_SHOWN:,}; export writes them all)" if truncated else ""
        self._status(Text(f"{table.num_rows:,} rows{more} · {len(table.columns)} columns · "
                          f"{elapsed:.2f} s · ctrl+e CSV · ctrl+o Parquet"))

    def _error(self, query: str, message: str) -> None:
        self.last_query = query
        self._status(Text(message, style="bold red"))

    def _status(self, text: Text) -> None:
        self.query_one("#sql-status", Static).update(text)

    def action_export(self, fmt: str) -> None:
        if self.last_query is None or self.result is None:
            self.notify("run a query first", severity="warning")
            return
        self.export(self.last_query, fmt)

    @work(thread=True, group="sql-export", exit_on_error=False)
    def export(self, query: str, fmt: str) -> None:
        try:
            with self.app.open_store() as store:
                table = data.run_sql(store, query, max_rows=None)
            path = data.export(table, str(self.app.db_path), fmt, self.app._stamp())
        except Exception as exc:
            self.app.call_from_thread(self.notify, str(exc), title="Export failed", severity="error")
            return
        self.app.call_from_thread(self._status, Text(f"exported {table.num_rows:,} rows to {path}"))
        self.app.call_from_thread(self.notify, str(path), title=f"{fmt.upper()} written")
