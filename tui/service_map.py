"""The service map of the window's flows: services and broker queues, sync calls and async
hops, with calls, error rates and latency."""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.widgets import DataTable, Static

from tui import cells, window_data
from tui.window_view import WindowedView


def node(name: str) -> Text:
    if name.startswith("broker:"):
        return Text(f"⟪{name[7:]}⟫", style="yellow")
    return Text(name, style=f"bold {cells.service_colour(name)}")


class ServiceMapView(WindowedView):
    """Edges of the service graph, grouped by caller."""

    HELP_TITLE = "service map"
    NOTE = "#map-note"

    def compose(self) -> ComposeResult:
        yield Static("Reading the service graph…", id="map-note", classes="note")
        yield DataTable(id="service-map", cursor_type="row", zebra_stripes=True)

    def load(self) -> None:
        self.compute(self.window)

    @work(thread=True, exclusive=True, group="map", exit_on_error=False)
    def compute(self, window) -> None:
        try:
            with self.app.open_store() as store:
                edges = window_data.service_map(store, window)
        except Exception as exc:
            self.failed(exc)
            return
        self.deliver(self._fill, edges)

    def _fill(self, edges) -> None:
        table = self.query_one("#service-map", DataTable)
        values = []
        previous = None
        for e in edges.itertuples():
            arrow = Text(" ──▶ " if e.kind == "sync" else " ┄┄▶ ",
                         style="" if e.kind == "sync" else "yellow")
            source = node(e.src_service) if e.src_service != previous else Text("  ″", style="dim")
            previous = e.src_service
            values.append((source, arrow, node(e.dst_service), cells.right(f"{e.calls:,}"),
                           cells.percent(e.error_rate), cells.right(cells.ms(e.p50_ms)),
                           cells.right(cells.ms(e.p95_ms)), cells.right(cells.ms(e.p99_ms))))
        cells.fill_table(table, [(label, f"c{i}") for i, label in enumerate(
            ("From", "", "To", "Calls", "Errors", "p50", "p95", "p99"))], values)
        services = set(edges["src_service"]) | set(edges["dst_service"])
        brokers = {s for s in services if s.startswith("broker:")}
        self.query_one("#map-note", Static).update(
            f"{len(services) - len(brokers)} services, {len(brokers)} broker destinations, "
            f"{len(edges)} edges · ──▶ synchronous call (latency of the callee)  "
            "┄┄▶ through a broker (latency out of a broker: the wait)")
