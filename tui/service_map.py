"""The service map: services and broker queues, sync calls and async hops, with calls,
error rates and latency."""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.reactive import reactive
from textual.widgets import DataTable, Static

from tui import cells, data


def node(name: str) -> Text:
    if name.startswith("broker:"):
        return Text(f"⟪{name[7:]}⟫", style="yellow")
    return Text(name, style=f"bold {cells.service_colour(name)}")


class ServiceMapView(Vertical):
    """Edges of the service graph, grouped by caller."""

    snapshot: reactive[data.Snapshot | None] = reactive(None)
    window: reactive[tuple | None] = reactive(None)

    def compose(self) -> ComposeResult:
        yield Static("Waiting for the analysis…", id="map-note", classes="note")
        yield DataTable(id="service-map", cursor_type="row", zebra_stripes=True)

    def watch_snapshot(self, snap) -> None:
        # The graph takes seconds on a large store: only while this view is on screen.
        pane = self.parent
        if snap is not None and pane is not None and self.app.query_one("#views").active == pane.id:
            self.compute(snap)
            self._shown = snap

    def shown(self) -> None:
        """The user switched to this view."""
        if getattr(self, "_shown", None) is not self.snapshot:
            self.watch_snapshot(self.snapshot)

    @work(thread=True, exclusive=True, group="map", exit_on_error=False)
    def compute(self, snap) -> None:
        edges = data.service_map(snap)
        self.app.call_from_thread(self._fill, edges)

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
