"""What an incident report holds: frozen records, every figure with the SQL that reproduces it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Figure:
    """A value the report quotes, the query that gives it (`sql`, values bound as `$name`
    from `params`) and the same query with those values written in (`text`), runnable as is
    with `tracekit sql`. `column` names the result column holding the value (first row), or
    is empty when the value is the whole result (a list of rows)."""

    name: str
    value: Any
    sql: str
    params: dict[str, Any]
    text: str
    column: str = ""


@dataclass(frozen=True)
class Window:
    start_ns: int
    end_ns: int
    how: str            # "given", "detected", "flow", "whole store"

    @property
    def length_ns(self) -> int:
        return self.end_ns - self.start_ns


@dataclass(frozen=True)
class TypeImpact:
    type_id: str
    name: str
    flows: int
    failed: int
    slow: int
    error_rate: float
    baseline_error_rate: float | None
    p95_ms: float | None
    baseline_p95_ms: float | None


@dataclass(frozen=True)
class Impact:
    flows: Figure                 # flows started in the window
    failed: Figure
    slow: Figure                  # not failed, slower than their workflow's baseline p95
    degraded: Figure
    incomplete: Figure
    types: Figure                 # rows: per flow type, window against baseline
    affected_types: tuple[TypeImpact, ...]
    operations: Figure            # rows: failing services and operations
    slowed: Figure                # rows: operations whose critical-path time grew


@dataclass(frozen=True)
class TimelineEvent:
    at_ns: int
    kind: str                     # first_error, error_peak, latency_peak, recovery, window_end
    text: str
    figure: Figure


@dataclass(frozen=True)
class Evidence:
    text: str
    figure: Figure | None = None     # None: the ranking's own (`tracekit causes` shows it)


@dataclass(frozen=True)
class Suspect:
    rank: int
    service: str
    operation: str
    score: float
    failure_share: float
    slowdown_share: float
    failed_flows: int
    baseline_failed_flows: int
    window_ms: float
    baseline_ms: float
    exemplars: tuple[str, ...]
    exception_types: dict[str, int]
    evidence: tuple[Evidence, ...] = ()


@dataclass(frozen=True)
class PathStep:
    service: str
    name: str
    segment: str
    exemplar_ms: float
    healthy_ms: float

    @property
    def delta_ms(self) -> float:
        return self.exemplar_ms - self.healthy_ms


@dataclass(frozen=True)
class PathComparison:
    exemplar_flow: str
    healthy_flow: str | None
    exemplar_status: str
    exemplar_ms: float
    healthy_ms: float | None
    steps: tuple[PathStep, ...]
    grew: PathStep | None          # the step that grew most
    figure: Figure


@dataclass(frozen=True)
class Exemplar:
    flow_id: str
    status: str
    type_name: str | None
    business_key: str | None
    duration_ms: float
    origin: dict | None            # failure origin: service, name, exception, message, cause
    attributes: dict[str, str]     # the origin (or root) span's attributes, as stored
    mermaid: str


@dataclass(frozen=True)
class LogPattern:
    pattern: str
    count: int
    services: tuple[str, ...]
    example: str
    severity: str


@dataclass(frozen=True)
class Limit:
    kind: str                      # orphan_spans, clock_skew, incomplete_flows, dropped_data, ...
    text: str
    figure: Figure | None = None


@dataclass(frozen=True)
class Bucket:
    start_ns: int
    flows: int
    failed: int
    error_rate: float
    p95_ms: float | None


@dataclass(frozen=True)
class Report:
    title: str
    summary: str
    incident: bool
    store: str
    generated_ns: int
    window: Window
    baseline: Window
    flow_type: str | None                     # as asked
    type_ids: tuple[str, ...] | None          # the flow types it matched
    flow_id: str | None
    impact: Impact | None
    timeline: tuple[TimelineEvent, ...]
    buckets: tuple[Bucket, ...]
    bucket_ns: int
    buckets_figure: Figure | None
    suspects: tuple[Suspect, ...]
    causes_command: str
    exceptions: Figure | None
    exemplar: Exemplar | None
    path: PathComparison | None
    logs: tuple[LogPattern, ...]
    logs_figure: Figure | None
    limits: tuple[Limit, ...]
    figures: tuple[Figure, ...] = field(default=())
    other_windows: tuple[Window, ...] = ()     # further shifts found in the range searched
    no_data: bool = False                      # no flow started in the window: nothing to report
    differences: tuple = ()                    # what is different about the failing and slow flows
    differences_figure: Figure | None = None
