"""The tracekit terminal UI: `make_app(db_path)` builds it for the CLI, the tests and the benchmark."""

from __future__ import annotations

import contextlib
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, TabbedContent, TabPane

from tui import data
from tui.failures import FailuresView
from tui.flow_view import FlowScreen
from tui.flows import FlowsView
from tui.help import HelpScreen
from tui.messages import (AnalysisFailed, AnalysisReady, OpenFlow, OpenSpan, OpenType,
                          StatsLoaded, WriteReport)
from tui.overview import OverviewView
from tui.service_map import ServiceMapView
from tui.span_detail import SpanScreen
from tui.sql_console import SqlConsole
from tui.status import StatusLine


class TracekitApp(App):
    """Flow types, flows, one flow's waterfall, failures, the service map and SQL."""

    TITLE = "tracekit"
    CSS_PATH = "tracekit.tcss"
    BINDINGS = [
        Binding("1", "show('overview')", "Types"),
        Binding("2", "show('flows')", "Flows"),
        Binding("3", "show('failures')", "Failures"),
        Binding("4", "show('services')", "Services"),
        Binding("5", "show('sql')", "SQL"),
        Binding("w", "cycle_window", "Window"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, db_path: str | Path, *, live_interval: float | None = 2.0,
                 stamp=None, clock=time.monotonic, preview_spans: int = 50_000) -> None:
        super().__init__()
        self.db_path = Path(db_path)
        self.live_interval = live_interval
        self.snapshot: data.Snapshot | None = None
        self.stats: data.StoreStats | None = None
        self.window_label = "all"
        self.clock = clock          # seconds, for elapsed times shown (tests freeze it)
        self.preview_spans = preview_spans
        self.analysis_complete = False
        self._stamp = stamp or (lambda: datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ"))
        from tracekit.analysis.incremental import LiveAnalysis

        self._live = LiveAnalysis()
        self._analysis_lock = threading.Lock()
        self._store_lock = threading.Lock()
        self._store = None
        self._last_stats: tuple[float, int] | None = None
        self._version = 0

    # --- layout ---------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with TabbedContent(id="views", initial="overview"):
            with TabPane("1 Types", id="overview"):
                yield OverviewView()
            with TabPane("2 Flows", id="flows"):
                yield FlowsView()
            with TabPane("3 Failures", id="failures"):
                yield FailuresView()
            with TabPane("4 Services", id="services"):
                yield ServiceMapView()
            with TabPane("5 SQL", id="sql"):
                yield SqlConsole()
        yield StatusLine(str(self.db_path))
        yield Footer()

    def on_mount(self) -> None:
        self.update_analysis()
        if self.live_interval:
            self.set_interval(self.live_interval, self.update_analysis)

    @contextlib.contextmanager
    def open_store(self):
        """The store, opened once and shared by the workers (each query takes its own
        cursor). DuckDB refuses a second read-only open of a file in the same process while
        the first is open, so every worker goes through this one. Reopened after a failure:
        a collector that started or stopped changes how the file must be read."""
        import tracekit

        with self._store_lock:
            if self._store is None:
                self._store = tracekit.open(self.db_path)
            store = self._store
        try:
            yield store
        except Exception as exc:
            from tracekit.errors import QueryError

            if not isinstance(exc, QueryError):     # bad SQL is the query's fault, not the store's
                with self._store_lock:
                    if self._store is store:
                        self._store = None
                        store.close()
            raise

    def on_unmount(self) -> None:
        with self._store_lock:
            if self._store is not None:
                self._store.close()
                self._store = None

    @property
    def window(self) -> tuple[int, int] | None:
        return data.window_bounds(self.window_label, self.stats.last_ns if self.stats else None)

    # --- workers: all store and analysis work happens here ------------------------------

    @work(thread=True, group="analysis", exit_on_error=False)
    def update_analysis(self) -> None:
        """Read the spans committed since the last analysis and extend it (first: all)."""
        if not self._analysis_lock.acquire(blocking=False):
            return      # the previous update is still running: this tick is merged into it
        try:
            with self.open_store() as store:
                stats = data.store_stats(store)
                self.post_message(StatsLoaded(stats, time.monotonic()))
                if stats.spans == 0 or (self._live.analysis is not None
                                        and stats.last_batch <= self._live.last_batch):
                    return
                if self._live.analysis is None and stats.spans > 2 * self.preview_spans:
                    self._preview(store)
                new = data.load_new_spans(store, self._live.last_batch)
            started = time.monotonic()
            self._live.update(new)
            self._version += 1
            snap = data.snapshot(self._live, self._version)
            self.post_message(AnalysisReady(snap, len(new), time.monotonic() - started))
        except Exception as exc:    # shown in the status line; the next tick tries again
            self.post_message(AnalysisFailed(f"{type(exc).__name__}: {exc}"))
        finally:
            self._analysis_lock.release()

    def _preview(self, store) -> None:
        """On a large store, analyze the newest spans first and show them while the whole
        store is read and analyzed (tens of seconds at a million spans)."""
        from tracekit.analysis.incremental import LiveAnalysis

        since = data.preview_batch(store, self.preview_spans)
        if since is None:
            return
        started = time.monotonic()
        preview = LiveAnalysis()
        part = data.load_new_spans(store, since)
        preview.update(part)
        self.post_message(AnalysisReady(data.snapshot(preview, -1), len(part),
                                        time.monotonic() - started, preview=True))

    @work(thread=True, group="report", exit_on_error=False)
    def write_report(self, window, flow_id) -> None:
        try:
            with self.open_store() as store:
                path = data.write_report(store, str(self.db_path), self._stamp(),
                                         window=window, flow_id=flow_id)
            self.call_from_thread(self.notify, f"report written: {path}", title="Incident report")
        except Exception as exc:
            self.call_from_thread(self.notify, f"{type(exc).__name__}: {exc}",
                                  title="Report failed", severity="error")

    # --- handlers: state changes happen on the UI thread ----------------------------------

    @on(StatsLoaded)
    def _stats(self, message: StatsLoaded) -> None:
        rate = None
        if self._last_stats is not None and message.at > self._last_stats[0]:
            rate = (message.stats.spans - self._last_stats[1]) / (message.at - self._last_stats[0])
        self._last_stats = (message.at, message.stats.spans)
        first = self.stats is None
        self.stats = message.stats
        status = self.query_one(StatusLine)
        status.stats, status.rate = message.stats, rate
        if first:
            self.query_one(OverviewView).stats = message.stats
            self._push_window()

    @on(AnalysisReady)
    def _analysis(self, message: AnalysisReady) -> None:
        if message.preview and self.analysis_complete:
            return
        self.analysis_complete = not message.preview
        self.snapshot = message.snapshot
        status = self.query_one(StatusLine)
        status.flows = len(message.snapshot.flows)
        status.preview = message.new_spans if message.preview else None
        status.error = None
        for view in self._views():
            view.snapshot = message.snapshot

    @on(AnalysisFailed)
    def _analysis_failed(self, message: AnalysisFailed) -> None:
        self.query_one(StatusLine).error = message.error

    @on(OpenType)
    def _open_type(self, message: OpenType) -> None:
        flows = self.query_one(FlowsView)
        flows.set_type(message.type_id, message.name)
        self.action_show("flows")

    @on(OpenFlow)
    def _open_flow(self, message: OpenFlow) -> None:
        if self.snapshot is None:
            self.notify("the analysis is still running", severity="warning")
            return
        screen = self.screen
        if isinstance(screen, FlowScreen) and screen.flow_id == message.flow_id and message.span_key:
            screen.go_to(message.span_key)      # a link inside the flow on screen: jump, remember
            return
        self.push_screen(FlowScreen(self.snapshot, message.flow_id, message.span_key))

    @on(OpenSpan)
    def _open_span(self, message: OpenSpan) -> None:
        self.push_screen(SpanScreen(message.trace_id, message.span_id))

    @on(WriteReport)
    def _report(self, message: WriteReport) -> None:
        if not data.reports_available():
            self.notify("reports are not available in this version", severity="warning")
            return
        self.notify("writing the incident report…")
        self.write_report(message.window, message.flow_id)

    @on(TabbedContent.TabActivated)
    def _tab(self, event: TabbedContent.TabActivated) -> None:
        for view in (self.query_one(FailuresView), self.query_one(ServiceMapView)):
            if view.parent is not None and view.parent.id == event.pane.id:
                view.shown()

    # --- actions ---------------------------------------------------------------------------

    def action_show(self, view: str) -> None:
        if len(self.screen_stack) > 1:
            return
        self.query_one(TabbedContent).active = view
        pane = self.query_one(f"#{view}", TabPane)
        for widget in pane.query("DataTable, TextArea, Waterfall"):
            widget.focus()
            break

    def action_cycle_window(self) -> None:
        labels = [label for label, _ in data.WINDOWS]
        self.window_label = labels[(labels.index(self.window_label) + 1) % len(labels)]
        self._push_window()

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def _push_window(self) -> None:
        window = self.window
        self.query_one(StatusLine).window = (self.window_label, window)
        for view in self._views():
            view.window = window

    def _views(self):
        return (self.query_one(OverviewView), self.query_one(FlowsView),
                self.query_one(FailuresView), self.query_one(ServiceMapView),
                self.query_one(SqlConsole))


def make_app(db_path: str | Path, *, live_interval: float | None = 2.0, stamp=None,
             clock=time.monotonic, preview_spans: int = 50_000) -> TracekitApp:
    """The app on the store at `db_path` (read through `tracekit.open`, also while a
    collector writes it); `live_interval` seconds between live updates (None: no updates);
    `stamp()` names exported files, `clock()` times queries (both fixed in snapshot tests);
    a store of more than twice `preview_spans` shows its newest spans analyzed first."""
    return TracekitApp(db_path, live_interval=live_interval, stamp=stamp, clock=clock,
                       preview_spans=preview_spans)
