"""Metric names and labels: Tempo's metrics-generator (the default) or the OpenTelemetry
Collector's span-metrics connector, as Prometheus sees them; tracekit's own for flows and
broker waits. One set of histograms renders in either naming."""

from __future__ import annotations

from dataclasses import dataclass

from tracekit.metrics.exposition import Family, Sample, bound
from tracekit.metrics.histograms import Labels, Series


@dataclass(frozen=True)
class Naming:
    name: str
    calls: str              # span counter (family name, without _total)
    duration: str           # span duration histogram
    service_label: str


# Tempo's names are what Grafana's Tempo data source queries for its service graph and RED
# table; its service-graph names (traces_service_graph_*) are the connector's too.
TEMPO = Naming("tempo", "traces_spanmetrics_calls", "traces_spanmetrics_latency", "service")
# The span-metrics connector with its `traces.span.metrics` namespace and seconds as the unit,
# as Jaeger's Monitor tab (SPM) reads it.
OTEL = Naming("otel", "traces_span_metrics_calls", "traces_span_metrics_duration_seconds",
              "service_name")
NAMINGS = {n.name: n for n in (TEMPO, OTEL)}


def families(series: dict[str, dict[Labels, Series]], bounds: tuple[float, ...],
             naming: Naming = TEMPO) -> list[Family]:
    """The span, flow, broker and service-graph families of a histograms snapshot."""
    spans = {_rename(labels, "service", naming.service_label): s
             for labels, s in series.get("span", {}).items()}
    flows = series.get("flow", {})
    waits = series.get("broker_wait", {})
    graph = series.get("graph_server", {})
    out = [
        _counter(naming.calls, "Spans per service, span name, kind and status code "
                 "(errors: status_code=\"STATUS_CODE_ERROR\")", spans, lambda s: s.count),
        _histogram(naming.duration, "Span duration in seconds", spans, bounds),
        _counter("traces_service_graph_request", "Requests between two services (and "
                 "messages, connection_type=\"messaging_system\")", graph, lambda s: s.count),
        _counter("traces_service_graph_request_failed", "Failed requests between two services",
                 graph, lambda s: s.failed, exemplars=False),
        _histogram("traces_service_graph_request_server_seconds",
                   "Duration of the request as the server saw it, in seconds", graph, bounds),
        _histogram("traces_service_graph_request_messaging_system_seconds",
                   "Time messages waited in the broker between producer and consumer, in seconds",
                   series.get("graph_messaging", {}), bounds),
        _counter("tracekit_flows", "Flows (workflows across traces) per flow type, counted "
                 "once ended", flows, lambda s: s.count),
        _counter("tracekit_flow_failures", "Failed flows per flow type", flows,
                 lambda s: s.failed, exemplars=False),
        _histogram("tracekit_flow_duration_seconds", "Flow duration in seconds", flows, bounds),
        _histogram("tracekit_broker_wait_seconds", "Broker wait (consumer start - producer end) "
                   "per destination and consumer, in seconds", waits, bounds),
    ]
    return [family for family in out if family.samples]


def _rename(labels: Labels, old: str, new: str) -> Labels:
    return tuple(sorted((new if key == old else key, value) for key, value in labels))


def _counter(name: str, help_text: str, series: dict[Labels, Series], value,
             exemplars: bool = True) -> Family:
    """A counter per label set; its exemplar, the slowest bucket's (the exemplars kept are
    not known to have failed, hence none on failure counters)."""
    samples = []
    for labels, s in sorted(series.items()):
        exemplar = next((e for e in reversed(s.exemplars) if e is not None), None) if exemplars else None
        samples.append(Sample("_total", labels, value(s), exemplar))
    return Family(name, "counter", help_text, tuple(samples))


def _histogram(name: str, help_text: str, series: dict[Labels, Series],
               bounds: tuple[float, ...]) -> Family:
    samples = []
    for labels, s in sorted(series.items()):
        cumulative = 0
        for i, le in enumerate((*bounds, float("inf"))):
            cumulative += s.counts[i]
            samples.append(Sample("_bucket", (*labels, ("le", bound(le))), cumulative,
                                  s.exemplars[i]))
        samples.append(Sample("_sum", labels, s.total))
        samples.append(Sample("_count", labels, s.count))
    return Family(name, "histogram", help_text, tuple(samples))
