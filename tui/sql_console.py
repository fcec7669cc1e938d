"""The SQL console: an SQL editor with completion and a history kept across runs, the store's
tables and columns, results in an Arrow-backed table, errors inline, queries that can be
cancelled, export to CSV, Parquet or JSON."""

from __future__ import annotations

import asyncio
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import OptionList, Static, Tree
from textual.widgets.option_list import Option
from textual_fastdatatable import ArrowBackend, DataTable

from tui import data
from tui.export_prompt import ExportPrompt
from tui.sql_editor import SqlEditor
from tui.sql_history import SqlHistory
from tui.sql_text import Completion, Word, completions, statement_at, word_before

FIRST_QUERY = "SELECT service_name, count(*) AS spans FROM spans GROUP BY ALL ORDER BY spans DESC"
KEYS_NOTE = "ctrl+r / f5 runs the statement at the cursor (or the selection) · ctrl+↑/↓ history · " \
            "ctrl+space completes · ctrl+e export"


class SqlConsole(Horizontal):
    """Read-only DuckDB SQL on the store, its analysis tables included."""

    HELP_TITLE = "SQL console"
    BINDINGS = [
        Binding("ctrl+r,ctrl+enter,f5", "run", "Run", priority=True,
                tooltip="Run the selection, or the statement under the cursor"),
        Binding("ctrl+up", "history(-1)", "Previous", priority=True, tooltip="Previous query (history kept across runs)"),
        Binding("ctrl+down", "history(1)", "Next", priority=True, tooltip="Next query in the history"),
        Binding("ctrl+e", "export", "Export", priority=True, tooltip="Export the whole result: CSV, Parquet or JSON"),
        Binding("escape", "cancel", "Cancel", priority=True, tooltip="Cancel the running query"),
    ]

    def __init__(self, history: SqlHistory | None = None) -> None:
        super().__init__()
        self.history = history or SqlHistory(None)
        self.history_at = len(self.history.queries)
        self.result = None              # the last pyarrow result shown
        self.last_query: str | None = None
        self.tables: dict[str, list[str]] = {}      # completion: table → columns
        self.attribute_keys: list[str] = []
        self.running = None             # the Cancellation of the query running, if one is
        self._offered: list[Completion] = []
        self._swap_lock = asyncio.Lock()

    def compose(self) -> ComposeResult:
        yield Tree("tables", id="schema")
        with Vertical(id="sql-main"):
            yield SqlEditor(FIRST_QUERY, id="sql-editor")
            yield OptionList(id="sql-completions")
            yield Static(KEYS_NOTE, id="sql-status", classes="note")
            yield DataTable(id="sql-result", data=None, show_row_labels=False)

    def on_mount(self) -> None:
        tree = self.query_one("#schema", Tree)
        tree.show_root = False
        tree.root.expand()
        self.query_one("#sql-completions", OptionList).display = False

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action == "cancel":
            return self.running is not None
        return True

    # --- the schema and the completion words ---------------------------------------------------

    def analysis_ready(self) -> None:
        """The store's analysis tables can be read: list the tables (once)."""
        if not self.query_one("#schema", Tree).root.children:
            self.load_schema()

    @work(thread=True, group="sql-schema", exit_on_error=False)
    def load_schema(self) -> None:
        try:
            with self.app.open_store() as store:
                columns = data.schema(store)
                keys = data.attribute_keys(store)
        except Exception as exc:
            columns, keys = {"(unavailable)": [(str(exc), "")]}, []
        self.app.call_from_thread(self._fill_schema, columns, keys)

    def _fill_schema(self, columns: dict, keys: list[str]) -> None:
        self.tables = {name: [c for c, _ in cols] for name, cols in columns.items()}
        self.attribute_keys = keys
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
            self.query_one(SqlEditor).insert(str(event.node.data))

    # --- completion ------------------------------------------------------------------------------

    @on(SqlEditor.CompletionWanted)
    def _offer(self, event: SqlEditor.CompletionWanted) -> None:
        """Show what the word before the cursor may become (nothing to offer: no list)."""
        editor = self.query_one(SqlEditor)
        word = word_before(editor.text_before_cursor)
        if word is None and event.forced:
            word = Word("", False)
        if word is None:
            found = []
        elif event.forced and not word.text and not word.attribute_key:
            found = [Completion(t, "table") for t in self.tables]    # ctrl+space after a space
        else:
            found = completions(word, self.tables, self.attribute_keys)
        self._offered = found
        box = self.query_one("#sql-completions", OptionList)
        box.clear_options()
        box.add_options([Option(Text.assemble(c.text, (f"  {c.kind}", "dim"))) for c in found])
        box.display = bool(found)
        editor.completing = bool(found)
        if found:
            box.highlighted = 0

    def _close_completions(self) -> None:
        self._offered = []
        self.query_one("#sql-completions", OptionList).display = False
        self.query_one(SqlEditor).completing = False

    @on(SqlEditor.CompletionKey)
    def _completion_key(self, event: SqlEditor.CompletionKey) -> None:
        box = self.query_one("#sql-completions", OptionList)
        moves = {"up": box.action_cursor_up, "down": box.action_cursor_down,
                 "pageup": box.action_page_up, "pagedown": box.action_page_down}
        if event.key in moves:
            moves[event.key]()
        elif event.key in ("tab", "enter") and box.highlighted is not None:
            self._accept(self._offered[box.highlighted])
        else:
            self._close_completions()

    @on(OptionList.OptionSelected, "#sql-completions")
    def _clicked(self, event: OptionList.OptionSelected) -> None:
        self._accept(self._offered[event.option_index])
        self.query_one(SqlEditor).focus()

    def _accept(self, item: Completion) -> None:
        editor = self.query_one(SqlEditor)
        word = word_before(editor.text_before_cursor)
        row, column = editor.cursor_location
        start = (row, column - len(word.text)) if word else (row, column)
        text = item.text
        if word and word.attribute_key:
            after = editor.get_text_range(editor.cursor_location, (row, column + 2))
            if not after.startswith("'"):
                text += "']"
        self._close_completions()
        editor.replace(text, start, editor.cursor_location)

    @on(SqlEditor.Left)
    def _left(self) -> None:
        self._close_completions()
        self.query_one("#sql-result", DataTable).focus()

    # --- running -------------------------------------------------------------------------------

    def action_run(self) -> None:
        editor = self.query_one(SqlEditor)
        self._close_completions()
        query = editor.selected_text.strip() or statement_at(
            editor.text, len(editor.text_before_cursor))
        if not query:
            return
        self.history.add(query)
        if self.history.error:
            self.notify(f"the SQL history is not kept: {self.history.error}", severity="warning")
            self.history.error = None
        self.history_at = len(self.history.queries)
        from tracekit.readonly import Cancellation

        if self.running is not None:
            self.running.cancel()       # one query at a time: the newer one wins
        self.running = Cancellation()
        self.refresh_bindings()
        self._status(Text("running… (escape cancels)", style="dark_orange3"))
        self.run_query(query, self.running)

    def action_cancel(self) -> None:
        if self.running is not None:
            self.running.cancel()
            self._status(Text("cancelling…", style="dark_orange3"))

    def action_history(self, step: int) -> None:
        """Older (-1) or newer (+1) queries, skipping the one already in the editor."""
        editor = self.query_one(SqlEditor)
        queries = self.history.queries
        at = self.history_at
        while 0 <= at + step < len(queries):
            at += step
            if queries[at] != editor.text.strip():
                self.history_at = at
                editor.text = queries[at]
                editor.move_cursor(editor.document.end)
                return

    @work(thread=True, exclusive=True, group="sql", exit_on_error=False)
    def run_query(self, query: str, cancel) -> None:
        from tracekit.errors import QueryCancelled

        started = self.app.clock()
        try:
            with self.app.open_store() as store:
                table = data.run_sql(store, query, cancel=cancel)
        except QueryCancelled:
            self.app.call_from_thread(self._done, cancel, query, None, "query cancelled")
            return
        except Exception as exc:
            self.app.call_from_thread(self._done, cancel, query, None, str(exc))
            return
        self.app.call_from_thread(self._done, cancel, query, table, self.app.clock() - started)

    async def _done(self, cancel, query: str, table, outcome) -> None:
        if cancel is not self.running:
            return          # a newer query replaced this one
        self.running = None
        self.refresh_bindings()
        self.last_query = query
        if table is None:
            self.result = None
            cancelled = cancel.cancelled
            self._status(Text(outcome if cancelled else f"error: {outcome}",
                              style="dark_orange3" if cancelled else "bold red"))
            return
        await self._show(table, outcome)

    async def _show(self, table, elapsed: float) -> None:
        truncated = table.num_rows > data.SQL_ROWS_SHOWN
        if truncated:
            table = table.slice(0, data.SQL_ROWS_SHOWN)
        self.result = table
        # A fresh grid over the new Arrow table: it renders only the rows in view.
        async with self._swap_lock:
            old = self.query_one("#sql-result", DataTable)
            focused = old.has_focus
            await old.remove()
            new = DataTable(id="sql-result", backend=ArrowBackend(table), show_row_labels=False)
            await self.query_one("#sql-main", Vertical).mount(new)
            if focused:
                new.focus()
        more = f" (the first {data.SQL_ROWS_SHOWN:,}; export writes them all)" if truncated else ""
        self._status(Text(f"{table.num_rows:,} rows{more} · {len(table.columns)} columns · "
                          f"{elapsed:.2f} s · ctrl+e export"))

    def _status(self, text: Text) -> None:
        self.query_one("#sql-status", Static).update(text)

    # --- export --------------------------------------------------------------------------------

    def action_export(self) -> None:
        if self.last_query is None or self.result is None:
            self.notify("run a query first", severity="warning")
            return
        query = self.last_query
        suggested = data.default_export_path(str(self.app.db_path), self.app._stamp())

        def chosen(path: Path | None) -> None:
            if path is not None:
                self._status(Text(f"exporting to {path}…", style="dark_orange3"))
                self.export(query, path)

        self.app.push_screen(ExportPrompt(suggested), chosen)

    @work(thread=True, group="sql-export", exit_on_error=False)
    def export(self, query: str, path: Path) -> None:
        try:
            with self.app.open_store() as store:
                table = data.run_sql(store, query, max_rows=None)
            written = data.export(table, path)
        except Exception as exc:
            self.app.call_from_thread(self._status, Text(f"export failed: {exc}", style="bold red"))
            self.app.call_from_thread(self.notify, str(exc), title="Export failed", severity="error")
            return
        self.app.call_from_thread(self._status, Text(f"exported {table.num_rows:,} rows to {written}"))
        self.app.call_from_thread(self.notify, str(written), title=f"{data.export_format(written).upper()} written")
