"""Hand-built OTLP requests for protocol tests."""

from __future__ import annotations

import os

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

BASE_NS = 1_700_000_000_000_000_000


def trace_request(n: int, service: str = "svc", trace_id: bytes | None = None,
                  bad: dict[int, dict] | None = None) -> ExportTraceServiceRequest:
    """`n` spans with fresh ids; `bad` overrides fields of span i (e.g. {2: {"trace_id": b""}})."""
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    attr = resource_spans.resource.attributes.add()
    attr.key, attr.value.string_value = "service.name", service
    scope_spans = resource_spans.scope_spans.add()
    trace_id = trace_id or os.urandom(16)
    for i in range(n):
        span = scope_spans.spans.add()
        span.trace_id = trace_id
        span.span_id = os.urandom(8)
        span.name = f"op-{i}"
        span.kind = 2
        # Nanoseconds that are not whole microseconds, as SDKs send them.
        span.start_time_unix_nano = BASE_NS + i * 1001 + 1
        span.end_time_unix_nano = BASE_NS + i * 1001 + 501
        kv = span.attributes.add()
        kv.key, kv.value.int_value = "i", i
        for field, value in (bad or {}).get(i, {}).items():
            setattr(span, field, value)
    return request
