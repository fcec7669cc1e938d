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


def otlp_json(request) -> dict:
    """The OTLP/JSON form of a trace or logs request: the protobuf JSON mapping, hex ids."""
    import base64

    from google.protobuf import json_format

    document = json_format.MessageToDict(request)
    for resource in document.get("resourceSpans", []) + document.get("resourceLogs", []):
        for scope in resource.get("scopeSpans", []) + resource.get("scopeLogs", []):
            for item in scope.get("spans", []) + scope.get("logRecords", []):
                for holder in [item, *item.get("links", [])]:
                    for key in ("traceId", "spanId", "parentSpanId"):
                        if key in holder:
                            holder[key] = base64.b64decode(holder[key]).hex()
    return document


def _field(number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field (tag, length, payload)."""
    from google.protobuf.internal.encoder import _VarintBytes

    return _VarintBytes(number << 3 | 2) + _VarintBytes(len(payload)) + payload


def deep_attribute_request(depth: int, service: str) -> bytes:
    """A serialized one-span trace request whose attribute "deep" is an AnyValue array nested
    `depth` levels deep, encoded field by field (Python's protobuf cannot build one that deep)."""
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue

    request = trace_request(1, service=service)
    resource_spans = request.resource_spans[0]
    scope_spans = resource_spans.scope_spans[0]
    span = scope_spans.spans[0]
    value = AnyValue(string_value="leaf").SerializeToString()
    for _ in range(depth):
        value = _field(5, _field(1, value))   # AnyValue.array_value { values: [value] }
    span_bytes = span.SerializeToString() + _field(9, _field(1, b"deep") + _field(2, value))
    scope_spans.ClearField("spans")
    scope_bytes = scope_spans.SerializeToString() + _field(2, span_bytes)
    resource_spans.ClearField("scope_spans")
    return _field(1, resource_spans.SerializeToString() + _field(2, scope_bytes))


def deep_json_value(depth: int) -> str:
    """The text of an OTLP/JSON AnyValue array nested `depth` levels deep (JSON encoders
    refuse to write one that deep)."""
    return '{"arrayValue":{"values":[' * depth + '{"stringValue":"leaf"}' + "]}}" * depth


def log_request(n: int, service: str = "svc"):
    """`n` log records with a string body each."""
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    request = ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    attr = resource_logs.resource.attributes.add()
    attr.key, attr.value.string_value = "service.name", service
    scope_logs = resource_logs.scope_logs.add()
    for i in range(n):
        record = scope_logs.log_records.add()
        record.time_unix_nano = BASE_NS + i
        record.body.string_value = f"line {i}"
    return request
