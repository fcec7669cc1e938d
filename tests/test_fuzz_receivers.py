"""Bounded property-based fuzzing (Hypothesis) of both receivers of one running collector:
random bytes, mutated valid protobuf and OTLP/JSON payloads (bit flips, truncation, splices),
OTLP-shaped JSON with values of every type, random content types, encodings, methods and
paths. Every answer is one of the statuses the receivers specify, never a 500 or an unhandled
exception; the collector stays up and stores the next normal export.

Derandomized (the same examples on every run), so CI is reproducible."""

from __future__ import annotations

import gzip
import json
import subprocess
import urllib.error
import urllib.request
import zlib

import grpc
import pytest
from hypothesis import HealthCheck, event, given, settings, strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.conftest import TRACEKIT, RunningCollector, sql
from tests.otlp_payloads import log_request, otlp_json, trace_request

HTTP_ALLOWED = {200, 400, 401, 404, 405, 413, 415, 429, 503}
GRPC_ALLOWED = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.UNAVAILABLE,
                grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNIMPLEMENTED,
                grpc.StatusCode.UNAUTHENTICATED}
FUZZ = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    """One collector for the module; its stderr goes to a file (a pipe could fill and block)."""
    folder = tmp_path_factory.mktemp("fuzz")
    stderr_path = folder / "stderr.log"
    with open(stderr_path, "w") as stderr:
        process = subprocess.Popen(
            [*TRACEKIT, "collect", "--db", str(folder / "store.duckdb"), "--grpc", "127.0.0.1:0",
             "--http", "127.0.0.1:0"], stdout=subprocess.PIPE, stderr=stderr, text=True)
    addresses = {}
    for line in process.stdout:
        kind, _, value = line.strip().partition(" ")
        addresses[kind] = value
        if kind == "ready":
            break
    else:
        raise AssertionError(f"collector exited before ready: {stderr_path.read_text()}")
    running = RunningCollector(folder / "store.duckdb", addresses["otlp-grpc"], addresses["otlp-http"], process)
    channel = grpc.insecure_channel(running.grpc)
    yield running, channel
    try:
        # Still up, and a normal export is stored.
        assert process.poll() is None, "the collector exited under fuzzing"
        export = channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")
        export(trace_request(3, service="after-fuzz").SerializeToString(), timeout=60)
        assert sql(running.db, "SELECT count(*) AS n FROM spans WHERE service_name = 'after-fuzz'")[0]["n"] == 3
    finally:
        channel.close()
        code = running.stop()
    log = stderr_path.read_text()
    assert code == 0, log
    # A decoder that raised would have answered 503 "decoding failed" and logged it.
    assert "Traceback" not in log and "decoding failed" not in log, log[-5000:]


def _rich_traces() -> bytes:
    """A valid request using every field the decoders read: events, links, parents, every
    AnyValue type, status, flags, dropped counts, trace state."""
    request = trace_request(3, service="seed")
    spans = request.resource_spans[0].scope_spans[0].spans
    request.resource_spans[0].scope_spans[0].scope.name = "seed.scope"
    request.resource_spans[0].scope_spans[0].scope.version = "1.0"
    spans[1].parent_span_id = spans[0].span_id
    spans[1].status.code, spans[1].status.message = 2, "boom"
    spans[1].trace_state = "k=v"
    spans[1].flags, spans[1].dropped_attributes_count = 257, 2
    event = spans[1].events.add()
    event.time_unix_nano, event.name = spans[1].start_time_unix_nano + 5, "exception"
    kv = event.attributes.add()
    kv.key, kv.value.string_value = "exception.type", "ValueError"
    link = spans[2].links.add()
    link.trace_id, link.span_id, link.flags = spans[0].trace_id, spans[0].span_id, 1
    values = spans[2].attributes
    for key, setter in (("s", lambda v: setattr(v, "string_value", "text")),
                        ("b", lambda v: setattr(v, "bool_value", True)),
                        ("d", lambda v: setattr(v, "double_value", 1.5)),
                        ("raw", lambda v: setattr(v, "bytes_value", b"\x00\x01")),
                        ("http.request.header.authorization", lambda v: setattr(v, "string_value", "secret"))):
        kv = values.add()
        kv.key = key
        setter(kv.value)
    kv = values.add()
    kv.key = "list"
    kv.value.array_value.values.add().int_value = 7
    nested = kv.value.array_value.values.add().kvlist_value.values.add()
    nested.key, nested.value.string_value = "inner", "x"
    return request.SerializeToString()


def _rich_logs() -> bytes:
    request = log_request(2, service="seed-logs")
    record = request.resource_logs[0].scope_logs[0].log_records[0]
    record.trace_id, record.span_id = bytes(range(1, 17)), bytes(range(1, 9))
    record.severity_number, record.severity_text, record.event_name = 17, "ERROR", "order.failed"
    kv = record.body.kvlist_value.values.add()
    kv.key, kv.value.int_value = "n", 3
    return request.SerializeToString()


SEEDS = {
    ("traces", "application/x-protobuf"): _rich_traces(),
    ("logs", "application/x-protobuf"): _rich_logs(),
    ("traces", "application/json"): json.dumps(otlp_json(ExportTraceServiceRequest.FromString(_rich_traces()))).encode(),
}
SEEDS[("logs", "application/json")] = json.dumps(otlp_json(
    __import__("opentelemetry.proto.collector.logs.v1.logs_service_pb2", fromlist=["x"])
    .ExportLogsServiceRequest.FromString(_rich_logs()))).encode()


@st.composite
def mutated(draw, seed: bytes) -> bytes:
    """`seed` after a few bit flips, byte overwrites, truncations, splices or duplications."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        kind = draw(st.sampled_from(["flip", "byte", "truncate", "splice", "duplicate", "delete"]))
        at = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "byte":
            data[at] = draw(st.sampled_from([0x00, 0xFF, 0x7F, 0x80, 0x22, 0x5C, 0x7B, 0x5D, 0x0A]))
        elif kind == "truncate":
            del data[at:]
        elif kind == "splice":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "duplicate":
            end = draw(st.integers(at, min(len(data), at + 64)))
            data[at:at] = data[at:end]
        else:
            end = draw(st.integers(at, min(len(data), at + 16)))
            del data[at:end]
    return bytes(data)


OTLP_KEYS = [
    "resourceSpans", "resourceLogs", "resource", "attributes", "scopeSpans", "scopeLogs", "scope",
    "spans", "logRecords", "traceId", "spanId", "parentSpanId", "name", "version", "kind",
    "startTimeUnixNano", "endTimeUnixNano", "status", "code", "message", "events", "links",
    "timeUnixNano", "observedTimeUnixNano", "key", "value", "stringValue", "intValue", "boolValue",
    "doubleValue", "bytesValue", "arrayValue", "kvlistValue", "values", "flags", "traceState",
    "droppedAttributesCount", "droppedEventsCount", "droppedLinksCount", "body", "severityNumber",
    "severityText", "eventName", "resource_spans", "scope_spans", "trace_id", "start_time_unix_nano",
]
SCALARS = (st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False)
           | st.text(max_size=12)
           | st.sampled_from(["5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174", "SPAN_KIND_SERVER",
                              "STATUS_CODE_ERROR", "SEVERITY_NUMBER_WARN", "18446744073709551615", "-1",
                              "1e3", "AAE=", "", "service.name"]))
JSON_VALUES = st.recursive(
    SCALARS, lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(OTLP_KEYS) | st.text(max_size=4), children, max_size=5),
    max_leaves=25)


def _otlp_shaped(kind: str) -> st.SearchStrategy:
    """OTLP/JSON's skeleton (resource → scope → items → attributes) with any JSON at the leaves
    and in place of any part: reaches every branch of the JSON decoder."""
    item_key, scope_key, resource_key = (("spans", "scopeSpans", "resourceSpans") if kind == "traces"
                                         else ("logRecords", "scopeLogs", "resourceLogs"))
    attribute = st.fixed_dictionaries({"key": st.text(max_size=6) | SCALARS, "value": JSON_VALUES}) | JSON_VALUES
    # Mostly valid ids, so that items get past validation into the column builders.
    trace_id = st.one_of(st.just("5b8efff798038103d269b633813fc60c"), st.just("0af7651916cd43dd8448eb211c80319c"),
                         JSON_VALUES)
    span_id = st.one_of(st.just("eee19b7ec3c1b174"), st.just("b7ad6b7169203331"), JSON_VALUES)
    item = st.dictionaries(st.sampled_from(OTLP_KEYS), JSON_VALUES, max_size=6).flatmap(
        lambda fields: st.fixed_dictionaries({"traceId": trace_id, "spanId": span_id,
                                              "attributes": st.lists(attribute, max_size=3)}).map(
            lambda extra: {**fields, **extra}))
    scope = st.fixed_dictionaries({item_key: st.lists(item, max_size=3) | JSON_VALUES},
                                  optional={"scope": JSON_VALUES})
    resource = st.fixed_dictionaries({scope_key: st.lists(scope, max_size=2) | JSON_VALUES},
                                     optional={"resource": st.fixed_dictionaries(
                                         {"attributes": st.lists(attribute, max_size=3)})})
    return st.fixed_dictionaries({resource_key: st.lists(resource, max_size=2) | JSON_VALUES}).map(
        lambda document: json.dumps(document).encode())


def _payloads(kind: str, content_type: str) -> st.SearchStrategy:
    choices = [st.binary(max_size=512), mutated(SEEDS[(kind, content_type)])]
    if content_type == "application/json":
        choices.append(_otlp_shaped(kind))
    return st.one_of(*choices)


@st.composite
def http_requests(draw) -> tuple[str, str, dict, bytes]:
    kind = draw(st.sampled_from(["traces", "logs"]))
    content_type = draw(st.sampled_from(["application/x-protobuf", "application/json"]))
    body = draw(_payloads(kind, content_type))
    encoding = draw(st.sampled_from(["identity", "identity", "gzip", "deflate", "gzip-garbage", "br", "GZIP ", None]))
    headers = {}
    if encoding == "gzip":
        body, headers["Content-Encoding"] = gzip.compress(body), "gzip"
    elif encoding == "deflate":
        body, headers["Content-Encoding"] = zlib.compress(body), "deflate"
    elif encoding == "gzip-garbage":
        headers["Content-Encoding"] = "gzip"   # says gzip, is not
    elif encoding is not None:
        headers["Content-Encoding"] = encoding
    headers["Content-Type"] = draw(st.sampled_from([
        *[content_type] * 10, f"{content_type}; charset=utf-8",
        "APPLICATION/JSON", "text/plain", "", "application/x-protobuf; proto=x", "multipart/form-data"]))
    path = draw(st.sampled_from([f"/v1/{kind}"] * 16 + ["/v1/metrics", "/", "/v1/traces/", "/v1/%ff"]))
    method = draw(st.sampled_from(["POST"] * 17 + ["GET", "PUT", "DELETE"]))
    return method, path, headers, body


@FUZZ
@given(request=http_requests())
def test_http_receiver_answers_every_fuzzed_request_with_a_specified_status(target, request):
    collector, _ = target
    method, path, headers, body = request
    http = urllib.request.Request(f"http://{collector.http}{path}", data=body if method != "GET" else None,
                                  method=method, headers=headers)
    try:
        with urllib.request.urlopen(http, timeout=60) as response:
            status, answer = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, answer = error.code, error.read()
    event(f"HTTP {status}")   # the spread shows with --hypothesis-show-statistics
    assert status in HTTP_ALLOWED, (status, method, path, headers, body[:200])
    # A decoder that raised answers 503 "decoding failed": allowed on the wire, a bug here.
    assert b"decoding failed" not in answer, (method, path, headers, body[:200])


@st.composite
def grpc_requests(draw) -> tuple[str, bytes, grpc.Compression]:
    service = draw(st.sampled_from(["trace", "trace", "logs", "logs", "metrics"]))
    kind = "logs" if service == "logs" else "traces"
    body = draw(st.one_of(st.binary(max_size=512), mutated(SEEDS[(kind, "application/x-protobuf")])))
    name = {"trace": "TraceService", "logs": "LogsService", "metrics": "MetricsService"}[service]
    compression = draw(st.sampled_from([grpc.Compression.NoCompression, grpc.Compression.Gzip]))
    return f"/opentelemetry.proto.collector.{service}.v1.{name}/Export", body, compression


@FUZZ
@given(request=grpc_requests())
def test_grpc_receiver_answers_every_fuzzed_message_with_a_specified_status(target, request):
    _, channel = target
    method, body, compression = request
    try:
        channel.unary_unary(method)(body, timeout=60, compression=compression)
        code, details = grpc.StatusCode.OK, ""
    except grpc.RpcError as error:
        code, details = error.code(), error.details() or ""
    event(f"gRPC {code.name}")
    assert code in GRPC_ALLOWED, (code, method, body[:200])
    assert "decoding failed" not in details, (method, body[:200])
