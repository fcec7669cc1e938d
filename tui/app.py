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
from textual.css.query import NoMatches
from textual.widgets import Footer, TabbedContent, TabPane, Tabs

from tui import data, flow_data
from tui.failures import FailuresView
from tui.flow_view import FlowScreen
from tui.flows import FlowsView
from tui.compare_view import CompareScreen
from tui.help import HelpScreen, key_sections
from tui.messages import (Analyzing, CompareFlows, FlowLoaded, MarkFlow, OpenFlow, OpenSpan,
                          OpenType, PollFailed, StatsLoaded, WriteReport)
from tui.overview import OverviewView
from tui.service_map import ServiceMapView
from tui.span_detail import SpanScreen
from tui.sql_console import SqlConsole
from tui.sql_history import SqlHistory, default_path
from tui.status import StatusLine


class TracekitApp(App):
    """Flow types, flows, one flow's waterfall, failures, the service map and SQL."""

    TITLE = "tracekit"
    CSS_PATH = "tracekit.tcss"
    HELP_TITLE = "anywhere"
    AUTO_FOCUS = "#types"       # the flow types list: arrows and enter work from the start
    BINDINGS = [
        Binding("1", "show('overview')", "Types", tooltip="The flow types"),
        Binding("2", "show('flows')", "Flows", tooltip="The flows list"),
        Binding("3", "show('failures')", "Failures", tooltip="Failed flows and their likely causes"),
        Binding("4", "show('services')", "Services", tooltip="The service map"),
        Binding("5", "show('sql')", "SQL", tooltip="The SQL console"),
        Binding("w", "cycle_window", "Window", tooltip="Time window: " + ", ".join(label for label, _ in data.WINDOWS)),
        Binding("escape,backspace", "back", "Back", tooltip="Back to the view you came from"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("f1", "help", "Help", show=False),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, db_path: str | Path, *, live_interval: float | None = 2.0,
                 stamp=None, clock=time.monotonic, window: str | None = None,
                 sql_history: Path | None = None, lake: str | None = None) -> None:
        super().__init__()
        self.db_path = Path(db_path)
        self.lake = lake        # a lake URI to read instead of the file (its last Spark analysis)
        self.sql_history = SqlHistory(sql_history)
        self.live_interval = live_interval
        self.stats: data.StoreStats | None = None
        self.revision: tuple | None = None      # the analysis the views show (None: not yet)
        self.window_label = window or "all"
        self._window_given = window is not None   # else chosen from the data's span at start
        self.clock = clock          # seconds, for elapsed times shown (tests freeze it)
        self._stamp = stamp or (lambda: datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ"))
        self._poll_lock = threading.Lock()
        self._store_lock = threading.Lock()
        self._store = None
        self._started = False       # the analysis tables were brought up to date at start
        self._stopping = threading.Event()
        self._last_stats: tuple[float, int] | None = None
        self._trail: list[str] = []       # the views left for another, for escape to go back
        self.marked_flow: str | None = None     # `m`: the flow `c` compares another with

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
                yield SqlConsole(self.sql_history)
        yield StatusLine(self._lake_label() if self.lake else str(self.db_path))
        yield Footer()

    def _lake_label(self) -> str:
        from tracekit.lake.location import LakeLocation

        return "lake " + LakeLocation.parse(self.lake).display()

    def on_mount(self) -> None:
        # The views are switched with 1-5 (or a click): the tab bar never takes the keys.
        self.query_one(Tabs).can_focus = False
        self.poll()
        if self.live_interval:
            self.set_interval(self.live_interval, self.poll)

    @contextlib.contextmanager
    def open_store(self):
        """The store, opened once and shared by the workers (each query takes its own
        cursor). DuckDB refuses a second read-only open of a file in the same process while
        the first is open, so every worker goes through this one. Reopened after a failure:
        a collector that started or stopped changes how the file must be read."""
        import tracekit
        from tracekit.analysis.ready import READER_DUCKDB_MEMORY_MIB

        with self._store_lock:
            if self._store is None:     # DuckDB's memory capped, as every reader's
                self._store = tracekit.open(self.db_path, lake=self.lake,
                                            memory_limit_mib=READER_DUCKDB_MEMORY_MIB)
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
        self._stopping.set()        # an update of the analysis stops after its current chunk
        with self._store_lock:
            if self._store is not None:
                self._store.close()
                self._store = None

    @property
    def window(self) -> tuple[int, int] | None:
        return data.window_bounds(self.window_label, self.stats.last_ns if self.stats else None)

    # --- workers: all store and analysis work happens here ------------------------------

    @work(thread=True, group="poll", exit_on_error=False)
    def poll(self) -> None:
        """Read the store's figures; the first time, bring a local store's analysis tables up
        to date if they lag its spans (a collector keeps its own current)."""
        if not self._poll_lock.acquire(blocking=False):
            return      # the previous tick is still running: this one is merged into it
        try:
            with self.open_store() as store:
                stats = data.store_stats(store)
            if not self._started and stats.needs_analysis:
                self.post_message(StatsLoaded(stats, time.monotonic(), readable=False))
                stats = self._bring_up_to_date(stats)
            self._started = True
            self.post_message(StatsLoaded(stats, time.monotonic()))
        except Exception as exc:    # shown in the status line; the next tick tries again
            self.post_message(PollFailed(f"{type(exc).__name__}: {exc}"))
        finally:
            self._poll_lock.release()

    def _bring_up_to_date(self, stats: data.StoreStats) -> data.StoreStats:
        """Analyze the spans the tables lack, in this process as the file's one writer: the
        shared read-only store is closed meanwhile, and the workers wait for it."""
        from tracekit.analysis.ready import bring_up_to_date

        total = stats.behind or 0
        self.post_message(Analyzing(0, total))
        with self._store_lock:
            if self._store is not None:
                self._store.close()
                self._store = None
            try:
                bring_up_to_date(
                    self.db_path, should_stop=self._stopping.is_set,
                    on_progress=lambda done, todo: self.post_message(Analyzing(done, todo)))
            except Exception as exc:    # held by a collector now, or not ours to write
                self.call_from_thread(
                    self.notify, f"{exc}\nThe views show the analysis as the store has it.",
                    title="The analysis could not be brought up to date", severity="error",
                    timeout=30)
        with self.open_store() as store:
            return data.store_stats(store)

    @work(thread=True, exclusive=True, group="flow", exit_on_error=False)
    def load_flow(self, flow_id: str, span_key: str | None) -> None:
        """One flow's waterfall, from an analysis of its own spans."""
        from textual.worker import get_current_worker

        try:
            with self.open_store() as store:
                loaded = FlowLoaded(flow_data.waterfall(store, flow_id), span_key)
        except Exception as exc:
            loaded = FlowLoaded(None, error=f"{type(exc).__name__}: {exc}")
        if not get_current_worker().is_cancelled:       # another flow was asked for since
            self.post_message(loaded)

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
        try:
            status = self.query_one(StatusLine)
        except NoMatches:       # a live tick landing while the app closes: its widgets are gone
            return
        status.stats, status.rate = message.stats, rate
        if first:
            if not self._window_given:
                self.window_label = data.opening_window(message.stats.first_ns, message.stats.last_ns)
            self.query_one(OverviewView).stats = message.stats
            self.query_one(StatusLine).window = (self.window_label, self.window)
        if not message.readable:
            return
        status.analyzing = status.error = None
        self.query_one(OverviewView).analyzing = None
        if self.revision is None:
            self.query_one(SqlConsole).analysis_ready()
        if message.stats.revision is not None and message.stats.revision != self.revision:
            self.revision = message.stats.revision
            self._push_window()     # a window counted back from the newest data moves on

    @on(Analyzing)
    def _analyzing(self, message: Analyzing) -> None:
        progress = (message.done, message.total)
        self.query_one(StatusLine).analyzing = progress
        self.query_one(OverviewView).analyzing = progress

    @on(PollFailed)
    def _poll_failed(self, message: PollFailed) -> None:
        self.query_one(StatusLine).error = message.error

    @on(OpenType)
    def _open_type(self, message: OpenType) -> None:
        flows = self.query_one(FlowsView)
        flows.set_type(message.type_id, message.name)
        self.action_show("flows")

    @on(OpenFlow)
    def _open_flow(self, message: OpenFlow) -> None:
        screen = self.screen
        if isinstance(screen, FlowScreen) and screen.flow_id == message.flow_id and message.span_key:
            screen.go_to(message.span_key)      # a link inside the flow on screen: jump, remember
            return
        self.query_one(StatusLine).opening = message.flow_id
        self.load_flow(message.flow_id, message.span_key)

    @on(FlowLoaded)
    def _flow_loaded(self, message: FlowLoaded) -> None:
        self.query_one(StatusLine).opening = None
        if message.waterfall is None:
            self.notify(message.error, title="The flow could not be opened", severity="error")
            return
        self.push_screen(FlowScreen(message.waterfall, message.span_key))

    @on(OpenSpan)
    def _open_span(self, message: OpenSpan) -> None:
        self.push_screen(SpanScreen(message.trace_id, message.span_id))

    @on(MarkFlow)
    def _mark(self, message: MarkFlow) -> None:
        self.marked_flow = None if self.marked_flow == message.flow_id else message.flow_id
        self.notify(f"flow {message.flow_id} marked: c on another flow compares it with this one"
                    if self.marked_flow else f"flow {message.flow_id} unmarked", title="Compare")

    @on(CompareFlows)
    def _compare(self, message: CompareFlows) -> None:
        other = message.b or (self.marked_flow if self.marked_flow != message.a else None)
        self.push_screen(CompareScreen(message.a, other))

    @on(WriteReport)
    def _report(self, message: WriteReport) -> None:
        if not data.reports_available():
            self.notify("reports are not available in this version", severity="warning")
            return
        self.notify("writing the incident report…")
        self.write_report(message.window, message.flow_id)

    @on(TabbedContent.TabActivated)
    def _tab(self, event: TabbedContent.TabActivated) -> None:
        for view in self._views():
            if view.parent is not None and view.parent.id == event.pane.id:
                view.shown()
        self._focus_list(event.pane)

    # --- actions ---------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        """The views and the window are the main screen's: over a flow or a span their keys
        do nothing, so the footer leaves them out (fewer keys to draw, too)."""
        if action in ("show", "cycle_window", "back") and len(self.screen_stack) > 1:
            return False
        if action == "back" and not self._trail:
            return False
        return True

    def action_show(self, view: str, remember: bool = True) -> None:
        if len(self.screen_stack) > 1:
            return
        tabs = self.query_one(TabbedContent)
        if remember and tabs.active != view:
            self._trail = [*self._trail, tabs.active][-20:]
        tabs.active = view
        self._focus_list(self.query_one(f"#{view}", TabPane))
        self.refresh_bindings()

    def action_back(self) -> None:
        """To the view left for this one (flows → their types)."""
        if self._trail:
            *self._trail, view = self._trail
            self.action_show(view, remember=False)

    @staticmethod
    def _focus_list(pane: TabPane) -> None:
        """A view arrives with its list (or the SQL editor) focused."""
        for widget in pane.query("DataTable, TextArea"):
            widget.focus()
            break

    def action_cycle_window(self) -> None:
        labels = [label for label, _ in data.WINDOWS]
        self.window_label = labels[(labels.index(self.window_label) + 1) % len(labels)]
        self._push_window()

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(key_sections(self, self.screen.active_bindings)))

    def _push_window(self) -> None:
        window = self.window
        self.query_one(StatusLine).window = (self.window_label, window)
        for view in self._views():
            view.show(self.revision, window)

    def _views(self):
        return (self.query_one(OverviewView), self.query_one(FlowsView),
                self.query_one(FailuresView), self.query_one(ServiceMapView))


def make_app(db_path: str | Path, *, live_interval: float | None = 2.0, stamp=None,
             clock=time.monotonic, window: str | None = None,
             sql_history: str | Path | None = None, lake: str | None = None) -> TracekitApp:
    """The app on the store at `db_path` (read through `tracekit.open`, also while a
    collector writes it), reading its analysis tables: brought up to date first when they lag
    and the file is free; `live_interval` seconds between live updates (None: no updates);
    `stamp()` names exported files, `clock()` times queries (both fixed in snapshot tests);
    `window` the time window it opens on (a label of `data.WINDOWS`; None: all of a store that
    holds an hour or less, else the last hour); `sql_history`: the SQL console's history file
    (default: tui.sql_history.default_path()); `lake`: a lake URI read instead of the file,
    with the analysis its last Spark run committed."""
    return TracekitApp(db_path, live_interval=live_interval, stamp=stamp, clock=clock,
                       window=window, lake=lake,
                       sql_history=Path(sql_history) if sql_history else default_path())
