"""What the collector counts for `GET /metrics`: span RED as exports commit, flows as its
analysis finishes them, and its own health (docs/guides/metrics.md).

A scrape costs the same on a store of any size: span RED is kept in memory as exports are
acknowledged (tracekit.metrics.live); flows, broker waits and the service graph are read
from the analysis tables only for the flows that ended since the previous scrape, once they
have been quiet for `flow_delay_s` (late spans may still join a flow until then); the health
figures are the writer's, the admission's and the analyst's own counters.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter

from tracekit import queries
from tracekit.metrics.exposition import OPENMETRICS, TEXT, Family, Sample, render
from tracekit.metrics.histograms import Histograms
from tracekit.metrics.live import SpanMetrics
from tracekit.metrics.naming import NAMINGS, TEMPO, families
from tracekit.metrics.window import add_flows
from tracekit.otlp.batches import DecodedBatch
from tracekit.threads import name_os_thread

log = logging.getLogger("tracekit.collector")

FOLD_EVERY_S = 1.0
FLOW_DELAY_S = 30.0


class Telemetry:
    """Counters the receivers bump (`received`, `refused`, `committed`) and the page a scrape
    reads (`scrape`); `attach` the collector's parts before the first scrape."""

    def __init__(self, naming: str = TEMPO.name, flow_delay_s: float = FLOW_DELAY_S):
        self.naming = NAMINGS[naming]
        self.flow_delay_s = flow_delay_s
        self.histograms = Histograms()
        self.spans = SpanMetrics(self.histograms)
        self.started_s = time.time()
        self._counts: Counter[tuple[str, str, str]] = Counter()   # (what, signal, transport)
        self._lock = threading.Lock()
        self._flows_lock = threading.Lock()
        self._flows_from_ns = time.time_ns()    # flows that ended before the start: not counted
        self._lag_s = 0.0
        self.writer = self.admission = self.analyst = self.memory = self.store = None
        self._stop = threading.Event()
        self._folder = threading.Thread(target=self._fold_loop, name="tracekit-metrics", daemon=True)

    def attach(self, store, writer, admission, memory, analyst=None) -> Telemetry:
        """The parts whose figures a scrape reports; `analyst` None: no flow metrics."""
        self.store, self.writer, self.admission, self.memory = store, writer, admission, memory
        self.analyst = analyst
        return self

    def start(self) -> Telemetry:
        self._folder.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._folder.ident is not None:
            self._folder.join(5)
        self.spans.close()

    # The receivers' hooks (collectors/ingest.py).
    def received(self, batch: DecodedBatch, transport: str) -> None:
        with self._lock:
            self._counts["received", "spans", transport] += batch.span_count
            self._counts["received", "logs", transport] += batch.log_count
            self._counts["rejected", "spans", transport] += batch.rejected_spans.count
            self._counts["rejected", "logs", transport] += batch.rejected_logs.count

    def refused(self, batch: DecodedBatch, transport: str) -> None:
        with self._lock:
            self._counts["refused", "spans", transport] += batch.span_count
            self._counts["refused", "logs", transport] += batch.log_count

    def committed(self, batch: DecodedBatch, transport: str) -> None:
        with self._lock:
            self._counts["committed", "spans", transport] += batch.span_count
            self._counts["committed", "logs", transport] += batch.log_count
        self.spans.add(batch.spans)

    def _fold_loop(self) -> None:
        name_os_thread()
        while not self._stop.is_set():
            self.spans.wait_full(FOLD_EVERY_S)
            try:
                self.spans.fold()
            except Exception as exc:  # noqa: BLE001 - those spans go uncounted; the next fold goes on
                log.error("span metrics: folding spans failed: %s", exc)

    def scrape(self, openmetrics: bool) -> tuple[str, str]:
        """(body, content type) of the metrics page; blocking (runs a small query)."""
        self.spans.fold()
        self._refresh_flows()
        page = families(self.histograms.snapshot(), self.histograms.bounds, self.naming)
        page += self._health()
        return render(page, openmetrics), OPENMETRICS if openmetrics else TEXT

    def _refresh_flows(self) -> None:
        """Count the flows that ended since the last refresh and have been quiet long enough,
        up to where the analysis has read and typed: a flow whose spans it has yet to read, or
        whose type it has yet to name, waits."""
        if self.analyst is None or self.store is None:
            return
        with self._flows_lock:
            cursor = self.store.conn.cursor()
            try:
                waiting = queries.load("metrics/waiting")
                [(unanalyzed,)] = cursor.execute(
                    waiting, {"through": self.analyst.analyzed_through}).fetchall()
                [(untyped,)] = cursor.execute(
                    waiting, {"through": self.analyst.typed_through}).fetchall()
                now = time.time_ns()
                self._lag_s = 0.0 if unanalyzed is None else max(0.0, (now - unanalyzed) / 1e9)
                until = min(now, now if untyped is None else untyped) - int(self.flow_delay_s * 1e9)
                if until <= self._flows_from_ns:
                    return
                add_flows(self.histograms,
                          lambda sql, params: cursor.sql(sql, params=params).to_arrow_table(),
                          self._flows_from_ns, until)
                self._flows_from_ns = until
            finally:
                cursor.close()

    def _health(self) -> list[Family]:
        with self._lock:
            counts = dict(self._counts)
        out = []
        for what, help_text in (
                ("received", "decoded from exports"),
                ("rejected", "left out of exports as invalid (OTLP partial success)"),
                ("refused", "refused with a retryable answer: the writer's queue was full"),
                ("committed", "acknowledged: on disk in the intake")):
            for signal in ("spans", "logs"):
                samples = tuple(Sample("_total", (("transport", transport),), n)
                                for (w, s, transport), n in sorted(counts.items())
                                if w == what and s == signal)
                out.append(Family(f"tracekit_collector_{what}_{signal}", "counter",
                                  f"{signal.capitalize()} {help_text}",
                                  samples or (Sample("_total", (), 0),)))
        if self.admission is not None:
            out.append(_single("tracekit_collector_refused_requests", "counter",
                               "Exports refused before decoding (queue full or memory near "
                               "its limit)", self.admission.refused))
        if self.writer is not None:
            items, queued_bytes, intake_bytes = self.writer.backlog()
            out += [
                _single("tracekit_collector_stored_spans", "counter",
                        "Spans moved into the store's tables", self.writer.committed_spans),
                _single("tracekit_collector_stored_logs", "counter",
                        "Logs moved into the store's tables", self.writer.committed_logs),
                _single("tracekit_collector_duplicate_spans", "counter",
                        "Re-sent spans the store already held", self.writer.duplicate_spans),
                _single("tracekit_collector_queue_items", "gauge",
                        "Spans and logs waiting for the writer", items),
                _single("tracekit_collector_queue_bytes", "gauge",
                        "Decoded bytes waiting for the writer", queued_bytes),
                _single("tracekit_collector_intake_bytes", "gauge",
                        "Bytes acknowledged and not yet in the store's tables", intake_bytes),
            ]
        if self.memory is not None:
            out.append(_single("tracekit_collector_memory_bytes", "gauge",
                               "Memory of the collector and its workers (PSS)",
                               int(self.memory.resident_mib * 2**20)))
        if self.analyst is not None:
            out += [
                _single("tracekit_analysis_lag_seconds", "gauge",
                        "How long the oldest stored batch has waited for the analysis "
                        "(0: caught up)", round(self._lag_s, 3)),
                _single("tracekit_analysis_spans", "counter",
                        "Spans the analysis has read", self.analyst.analyzed_spans),
            ]
        out.append(_single("tracekit_collector_start_time_seconds", "gauge",
                           "When the collector started (seconds since the epoch)",
                           round(self.started_s, 3)))
        return out


def _single(name: str, kind: str, help_text: str, value: float) -> Family:
    return Family(name, kind, help_text, (Sample("_total" if kind == "counter" else "", (), value),))
