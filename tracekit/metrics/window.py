"""The metrics of a store over a window, read from its tables (`tracekit metrics`), and of
the flows the collector's analysis finished since it last looked (collectors/telemetry.py)."""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa

from tracekit import queries
from tracekit.metrics.histograms import BOUNDS, Histograms

# Every TIMESTAMP_NS: an open side of a window.
EARLIEST_NS, LATEST_NS = -9223372036854775806, 9223372036854775806

Run = Callable[[str, dict], pa.Table]      # (SQL, named parameters) -> the result


def params(start_ns: int, end_ns: int, bounds: tuple[float, ...] = BOUNDS) -> dict:
    return {"start_ns": int(start_ns), "end_ns": int(end_ns), "bounds": list(bounds)}


def add_flows(histograms: Histograms, run: Run, start_ns: int, end_ns: int) -> None:
    """Flows per type, broker waits and the service graph of the flows that ended in
    [start_ns, end_ns)."""
    for name in ("metrics/flows", "metrics/edges"):
        histograms.add(run(queries.load(name), params(start_ns, end_ns, histograms.bounds)))


def add_spans(histograms: Histograms, run: Run, start_ns: int, end_ns: int) -> None:
    """Span RED of the spans started in [start_ns, end_ns)."""
    histograms.add(run(queries.load("metrics/spans"), params(start_ns, end_ns, histograms.bounds)))


def of_store(store, start_ns: int = EARLIEST_NS, end_ns: int = LATEST_NS) -> Histograms:
    """Every metric of a store (read-only, tracekit.open) over [start_ns, end_ns)."""
    histograms = Histograms()
    add_spans(histograms, store.arrow, start_ns, end_ns)
    add_flows(histograms, store.arrow, start_ns, end_ns)
    return histograms
