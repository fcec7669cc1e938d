"""Span RED kept as exports commit: the spans' few columns wait in memory and are folded
into the histograms with the same SQL `tracekit metrics` runs on a store, at most a second
later (or sooner when many wait), so a scrape never reads the store for them."""

from __future__ import annotations

import threading

import duckdb
import pyarrow as pa

from tracekit.metrics.histograms import Histograms
from tracekit.metrics.window import EARLIEST_NS, LATEST_NS, add_spans
from tracekit.readonly import SAFE_CONFIG

COLUMNS = ["trace_id", "name", "kind", "start_time", "duration_ns", "status_code", "service_name"]
FOLD_AT_ROWS = 50_000       # spans waiting beyond this are folded at once


class SpanMetrics:
    """`add` the spans of committed exports from any thread; `fold` from one."""

    def __init__(self, histograms: Histograms):
        self.histograms = histograms
        self._waiting: list[pa.Table] = []
        self._rows = 0
        self._lock = threading.Lock()
        self._fold_lock = threading.Lock()
        self._full = threading.Event()       # set when FOLD_AT_ROWS wait
        self._conn = duckdb.connect(config=dict(SAFE_CONFIG, threads=1))

    def add(self, spans: pa.Table | None) -> None:
        if spans is None or not spans.num_rows:
            return
        with self._lock:
            self._waiting.append(spans.select(COLUMNS))
            self._rows += spans.num_rows
            if self._rows >= FOLD_AT_ROWS:
                self._full.set()

    def wait_full(self, timeout_s: float) -> bool:
        """Wait until enough spans wait to fold them now, or `timeout_s`."""
        return self._full.wait(timeout_s)

    def fold(self) -> int:
        """Add the waiting spans to the histograms; how many there were."""
        with self._fold_lock:
            with self._lock:
                waiting, self._waiting, self._rows = self._waiting, [], 0
                self._full.clear()
            if not waiting:
                return 0
            spans = pa.concat_tables(waiting, promote_options="permissive")
            cursor = self._conn.cursor()
            try:
                cursor.register("spans", spans)
                add_spans(self.histograms,
                          lambda sql, params: cursor.sql(sql, params=params).to_arrow_table(),
                          EARLIEST_NS, LATEST_NS)
            finally:
                cursor.close()
            return spans.num_rows

    def close(self) -> None:
        self._conn.close()
