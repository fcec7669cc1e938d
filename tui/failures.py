"""Failures: the failing flows of the window and the root-cause ranking with its evidence."""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Static

from tracekit.report.different import line
from tui import cells, window_data
from tui.messages import OpenFlow, WriteReport
from tui.window_view import WindowedView


class FailuresView(WindowedView):
    """What failed in the window, and which operation most likely caused it."""

    HELP_TITLE = "failures"
    BINDINGS = [Binding("R", "report", "Report", tooltip="Write an incident report of the window next to the store")]
    NOTE = "#failures-note"

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="causes-box"):
            yield Static("Waiting for the analysis…", id="causes")
        yield Static("", id="failures-note", classes="note")
        yield DataTable(id="failed-flows", cursor_type="row", zebra_stripes=True)

    def load(self) -> None:
        self.query_one("#causes", Static).update(Text("Ranking the causes…", style="dim"))
        self.compute(self.window)

    @work(thread=True, exclusive=True, group="failures", exit_on_error=False)
    def compute(self, window) -> None:
        try:
            with self.app.open_store() as store:
                rows, total = window_data.flow_rows(
                    store, window_data.FlowQuery(window=window, failed_only=True),
                    limit=window_data.FAILED_SHOWN)
                self.deliver(self._fill_flows, rows, total)
                found = window_data.causes(store, window)
        except Exception as exc:
            self.failed(exc)
            return
        self.deliver(self._fill_causes, found)

    def _fill_causes(self, found: window_data.Causes) -> None:
        ranked, window, baseline = found.ranked, found.window, found.baseline
        text = Text()
        if window:
            text.append(f"Root causes of flows started {cells.clock(window[0])[:8]}–"
                        f"{cells.clock(window[1])[:8]} UTC against {cells.clock(baseline[0])[:8]}–"
                        f"{cells.clock(baseline[1])[:8]}\n", style="bold")
        if not ranked:
            text.append("No clear cause: failures and latencies look like the baseline.\n", style="dim")
        for i, c in enumerate(ranked, 1):
            text.append(f"{i}. ", style="bold")
            text.append(f"{c.service} {c.operation}", style="bold red" if i == 1 else "bold")
            text.append(f"  score {c.score:.2f}\n")
            if c.failure_share:
                text.append(f"   failures start here in {c.failed_flows} flows ({c.failure_share:+.1%} of "
                            f"the window's flows vs the baseline; baseline had {c.baseline_failed_flows})\n")
            if c.slowdown_share:
                text.append(f"   critical-path time {c.baseline_ms:,.1f} → {c.window_ms:,.1f} ms per flow "
                            f"({c.slowdown_share:.0%} of a flow's duration)\n")
            if c.exception_types:
                text.append("   exceptions: " + ", ".join(f"{k} ×{v}" for k, v in c.exception_types.items()) + "\n")
            if c.error_log_flows:
                pattern, count = next(iter(c.error_logs.items()))
                text.append(f"   error logs where the failure starts: {c.error_log_flows} flows, "
                            f"e.g. ×{count} \"{pattern}\"\n")
            if c.exemplars:
                text.append(f"   e.g. flow {c.exemplars[0]}\n", style="dim")
        if found.different:
            text.append("What is different in the failing and slow flows\n", style="bold")
            for d in found.different:
                text.append(f"   {line(d)}\n")
        for limit in found.limits:
            text.append(f"Note: {limit}\n", style="dim")
        self.query_one("#causes", Static).update(text)

    def _fill_flows(self, rows, total) -> None:
        shown = f" (the newest {len(rows):,})" if total > len(rows) else ""
        self.query_one("#failures-note", Static).update(
            f"{total:,} failed flows in the window{shown} · enter opens one · "
            "R writes an incident report")
        table = self.query_one("#failed-flows", DataTable)
        values = [(cells.clock(r.start_ns), cells.right(cells.ms(r.duration_ms)), r.type or "-",
                   r.key if isinstance(r.key, str) else "-", cells.right(str(r.errors), "bold red"),
                   r.flow_id) for r in rows.itertuples()]
        cells.fill_table(table, [(label, label) for label in ("Start (UTC)", "Duration", "Flow type",
                                                               "Key", "Errors", "Flow id")],
                         values, list(rows["flow_id"]))

    @on(DataTable.RowSelected, "#failed-flows")
    def _open(self, event: DataTable.RowSelected) -> None:
        self.post_message(OpenFlow(event.row_key.value))

    def action_report(self) -> None:
        self.post_message(WriteReport(window=self.window))
