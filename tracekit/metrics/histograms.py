"""Histograms per metric and label set, summed from the rows the metrics SQL aggregates
(tracekit/sql/metrics: one row per metric, label set and bucket)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import pyarrow as pa

from tracekit.metrics.exposition import Exemplar

# Tempo's metrics-generator default (seconds): 2 ms doubling to 16.4 s.
BOUNDS = tuple(0.002 * 2**i for i in range(14))
# New label sets of a metric beyond this go to one overflow series (labelled as the
# OpenTelemetry SDK and span-metrics connector do), so that a span name carrying ids cannot
# grow the collector's memory without bound.
MAX_SERIES = 5_000
OVERFLOW = (("otel_metric_overflow", "true"),)

Labels = tuple[tuple[str, str], ...]


@dataclass
class Series:
    """One label set's histogram: counts per bucket (not cumulative), sum, failures."""

    counts: list[int]
    total: float = 0.0
    failed: int = 0
    exemplars: list[Exemplar | None] = field(default_factory=list)

    @property
    def count(self) -> int:
        return sum(self.counts)


class Histograms:
    """Thread-safe: `add` from one thread, `snapshot` from another."""

    def __init__(self, bounds: tuple[float, ...] = BOUNDS, max_series: int = MAX_SERIES):
        self.bounds = bounds
        self.max_series = max_series
        self._series: dict[str, dict[Labels, Series]] = {}
        self._lock = threading.Lock()

    def add(self, rows: pa.Table) -> None:
        """Add the rows of a metrics query (metric, labels, bucket, n, total, failed,
        exemplar_trace_id, exemplar_value)."""
        with self._lock:
            for row in rows.to_pylist():
                of_metric = self._series.setdefault(row["metric"], {})
                labels: Labels = tuple(sorted((key, value or "") for key, value in row["labels"]))
                series = of_metric.get(labels)
                if series is None:
                    if len(of_metric) >= self.max_series:
                        labels = OVERFLOW
                        series = of_metric.get(labels)
                    if series is None:
                        series = of_metric[labels] = Series(
                            [0] * (len(self.bounds) + 1), exemplars=[None] * (len(self.bounds) + 1))
                bucket = min(int(row["bucket"]), len(self.bounds))
                series.counts[bucket] += int(row["n"])
                series.total += float(row["total"] or 0.0)
                series.failed += int(row["failed"])
                if row["exemplar_trace_id"]:
                    series.exemplars[bucket] = Exemplar(row["exemplar_trace_id"],
                                                        float(row["exemplar_value"]))

    def snapshot(self) -> dict[str, dict[Labels, Series]]:
        """A copy to render from while adding goes on."""
        with self._lock:
            return {metric: {labels: Series(list(s.counts), s.total, s.failed, list(s.exemplars))
                             for labels, s in of_metric.items()}
                    for metric, of_metric in self._series.items()}
