"""Hostile values through a real `tracekit collect`, over OTLP/HTTP protobuf, OTLP/HTTP JSON and
OTLP/gRPC: each gets its documented outcome (docs/guides/collector.md, "Hostile values"), never a
5xx, and the collector goes on storing the next normal export."""

from __future__ import annotations

import json
import time
import uuid

import grpc
import pytest

from tests.conftest import sql, start_collector
from tests.otlp_payloads import (
    BASE_NS,
    deep_attribute_request,
    deep_json_value,
    log_request,
    otlp_json,
    trace_request,
)
from tests.test_otlp_http import post

TRANSPORTS = ["http-protobuf", "http-json", "grpc"]
ACCEPTED = {"200", "OK"}
REFUSED = {"400", "INVALID_ARGUMENT"}
RETRYABLE = {"429", "503", "UNAVAILABLE", "RESOURCE_EXHAUSTED"}
MAX_VALUE_CHARS = 1_048_576
MAX_ATTRIBUTES = 1_000


@pytest.fixture
def hostile(tmp_path):
    running = start_collector(tmp_path / "store.duckdb")
    yield running
    code = running.stop()
    stderr = running.process.stderr.read()
    assert code == 0, stderr
    # Every hostile value was handled, none crashed a decode worker or a handler.
    assert "Traceback" not in stderr and "decoding failed" not in stderr, stderr


def send(collector, transport: str, kind: str, request=None, body: bytes | None = None) -> tuple[str, str]:
    """Export a request (or a raw body in the transport's encoding) as an exporter does,
    retrying what the collector says to retry (backpressure), with backoff, for a bounded
    time; (status, message): the HTTP status as text or the gRPC code's name."""
    for attempt in range(7):   # 0.25 s doubling: 32 s in all
        answer = _send_once(collector, transport, kind, request, body)
        if answer[0] not in RETRYABLE:
            return answer
        time.sleep(0.25 * 2**attempt)
    return answer


def _send_once(collector, transport: str, kind: str, request, body: bytes | None) -> tuple[str, str]:
    if body is None:
        body = (json.dumps(otlp_json(request)).encode() if transport == "http-json"
                else request.SerializeToString())
    if transport == "grpc":
        service = "TraceService" if kind == "traces" else "LogsService"
        method = f"/opentelemetry.proto.collector.{kind[:-1] if kind == 'traces' else kind}.v1.{service}/Export"
        with grpc.insecure_channel(collector.grpc, options=[("grpc.max_send_message_length", 64 << 20)]) as channel:
            try:
                channel.unary_unary(method)(body, timeout=120)
                return "OK", ""
            except grpc.RpcError as error:
                return error.code().name, error.details() or ""
    content_type = "application/json" if transport == "http-json" else "application/x-protobuf"
    status, _, answer = post(collector.http, f"/v1/{kind}", body, content_type)
    assert status < 500 or status == 503, (status, answer[:300])
    return str(status), answer.decode(errors="replace")


def still_serving(collector, transport: str) -> None:
    service = f"after-{uuid.uuid4().hex[:8]}"
    answer = send(collector, transport, "traces", trace_request(2, service=service))
    assert answer[0] in ACCEPTED, answer
    assert rows(collector, service, "count(*) AS n")[0]["n"] == 2


def rows(collector, service: str, columns: str, table: str = "spans") -> list[dict]:
    return sql(collector.db, f"SELECT {columns} FROM {table} WHERE service_name = '{service}' "
                             "ORDER BY 1")


def _json_with_deep_attribute(service: str, depth: int) -> bytes:
    document = json.dumps(otlp_json(trace_request(1, service=service)))
    span_attributes = '"attributes": [{"key": "i"'   # the span's, not the resource's
    assert document.count(span_attributes) == 1
    return document.replace(span_attributes, '"attributes": [{"key": "deep", "value": '
                            + deep_json_value(depth) + '}, {"key": "i"').encode()


def _service(case: str, transport: str) -> str:
    return f"{case}-{transport}-{uuid.uuid4().hex[:6]}"


@pytest.mark.parametrize("transport", ["http-protobuf", "grpc"])
def test_non_utf8_protobuf_strings_are_stored_with_replacement_characters_and_a_note(hostile, transport):
    service = _service("utf8", transport)
    request = trace_request(3, service=service)
    spans = request.resource_spans[0].scope_spans[0].spans
    kv = spans[1].attributes.add()
    kv.key, kv.value.string_value = "text", "PLACEHOLDER"
    spans[2].name = "NAMEHOLDER"
    body = (request.SerializeToString().replace(b"PLACEHOLDER", b"ok\xff\xfeHOLDER!")
            .replace(b"NAMEHOLDER", b"na\xc3me-hold"))
    assert send(hostile, transport, "traces", body=body)[0] in ACCEPTED
    got = rows(hostile, service, "name, attributes['text']::VARCHAR AS text, ingest_notes")
    assert got == [{"name": "na\ufffdme-hold", "text": None, "ingest_notes": ["invalid_utf8_replaced"]},
                   {"name": "op-0", "text": None, "ingest_notes": None},
                   {"name": "op-1", "text": "ok\ufffd\ufffdHOLDER!", "ingest_notes": ["invalid_utf8_replaced"]}]
    logs = log_request(1, service=service)
    logs.resource_logs[0].scope_logs[0].log_records[0].body.string_value = "PLACEHOLDER"
    body = logs.SerializeToString().replace(b"PLACEHOLDER", b"\xffLACEHOLDER")
    assert send(hostile, transport, "logs", body=body)[0] in ACCEPTED
    assert rows(hostile, service, "body::VARCHAR AS body", table="logs") == [{"body": "\ufffdLACEHOLDER"}]
    still_serving(hostile, transport)


def test_non_utf8_json_is_refused_and_stores_nothing(hostile):
    service = _service("utf8", "json")
    request = trace_request(3, service=service)
    kv = request.resource_spans[0].scope_spans[0].spans[1].attributes.add()
    kv.key, kv.value.string_value = "text", "PLACEHOLDER"
    document = json.dumps(otlp_json(request)).encode()
    for bad in (b"\xffLACEHOLDER",
                b"\\ud800"):   # a lone surrogate escape: valid JSON syntax, not a Unicode string
        status, message = send(hostile, "http-json", "traces", body=document.replace(b"PLACEHOLDER", bad))
        assert status == "400" and ("UTF-8" in message or "surrogate" in message), (status, message)
    assert rows(hostile, service, "count(*) AS n")[0]["n"] == 0
    still_serving(hostile, "http-json")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_any_value_nested_10000_deep_is_refused(hostile, transport):
    service = _service("deep", transport)
    if transport == "http-json":
        body = _json_with_deep_attribute(service, 10_000)
    else:
        body = deep_attribute_request(10_000, service)
    status, message = send(hostile, transport, "traces", body=body)
    assert status in REFUSED, (status, message)
    assert "depth" in message.lower(), message
    assert rows(hostile, service, "count(*) AS n")[0]["n"] == 0
    still_serving(hostile, transport)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_any_value_nested_past_32_levels_is_cut_there_with_a_note(hostile, transport):
    service = _service("nested", transport)
    depth = 40   # within protobuf's own limit (100 messages, 2 per AnyValue level)
    if transport == "http-json":
        body = _json_with_deep_attribute(service, depth)
    else:
        body = deep_attribute_request(depth, service)
    assert send(hostile, transport, "traces", body=body)[0] in ACCEPTED
    [row] = rows(hostile, service, "attributes['deep']::JSON AS deep, ingest_notes")
    value = json.loads(row["deep"]) if isinstance(row["deep"], str) else row["deep"]
    for _ in range(32):
        assert isinstance(value, list) and len(value) == 1
        value = value[0]
    assert value == "<truncated: nested deeper than 32 levels>"
    assert row["ingest_notes"] == ["value_nested_too_deep"]
    still_serving(hostile, transport)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_20_mib_attribute_is_cut_to_1_mi_characters_with_a_note(hostile, transport):
    service = _service("big", transport)
    request = trace_request(2, service=service)
    kv = request.resource_spans[0].scope_spans[0].spans[0].attributes.add()
    kv.key, kv.value.string_value = "big", "é" + "x" * (20 * 1024 * 1024)
    assert send(hostile, transport, "traces", request)[0] in ACCEPTED
    got = rows(hostile, service, "name, length(attributes['big']::VARCHAR) AS chars, "
                                 "left(attributes['big']::VARCHAR, 2) AS head, ingest_notes")
    assert got == [{"name": "op-0", "chars": MAX_VALUE_CHARS, "head": "éx",
                    "ingest_notes": ["attribute_truncated"]},
                   {"name": "op-1", "chars": None, "head": None, "ingest_notes": None}]
    still_serving(hostile, transport)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_100k_attributes_keep_the_first_1000_and_count_the_rest_as_dropped(hostile, transport):
    service = _service("wide", transport)
    request = trace_request(1, service=service)   # its span has one attribute, "i"
    span = request.resource_spans[0].scope_spans[0].spans[0]
    span.dropped_attributes_count = 5   # dropped by the SDK already
    for i in range(100_000):
        kv = span.attributes.add()
        kv.key, kv.value.int_value = f"k{i}", i
    assert send(hostile, transport, "traces", request)[0] in ACCEPTED
    [row] = rows(hostile, service, "len(json_keys(attributes::JSON)) AS kept, "
                                   "attributes['k998']::INT AS last_kept, attributes['k999'] IS NULL AS cut, "
                                   "dropped_attributes_count, ingest_notes")
    assert row == {"kept": MAX_ATTRIBUTES, "last_kept": 998, "cut": True,
                   "dropped_attributes_count": 5 + 100_001 - MAX_ATTRIBUTES,
                   "ingest_notes": ["attributes_dropped"]}
    still_serving(hostile, transport)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_log_with_a_20_mib_body_and_100k_attributes_is_capped(hostile, transport):
    service = _service("log", transport)
    request = log_request(2, service=service)
    record = request.resource_logs[0].scope_logs[0].log_records[0]
    record.body.string_value = "y" * (20 * 1024 * 1024)
    for i in range(100_000):
        kv = record.attributes.add()
        kv.key, kv.value.bool_value = f"a{i}", True
    assert send(hostile, transport, "logs", request)[0] in ACCEPTED
    got = rows(hostile, service, "timestamp, length(body::VARCHAR) AS chars, "
                                 "len(json_keys(attributes::JSON)) AS kept, dropped_attributes_count",
               table="logs")
    assert [(r["chars"], r["kept"], r["dropped_attributes_count"]) for r in got] == [
        (MAX_VALUE_CHARS, MAX_ATTRIBUTES, 100_000 - MAX_ATTRIBUTES), (6, 0, 0)]
    still_serving(hostile, transport)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_timestamps_0_and_2_64_minus_1_and_end_before_start_are_stored_with_notes(hostile, transport):
    service = _service("time", transport)
    request = trace_request(3, service=service, bad={
        0: {"start_time_unix_nano": 0, "end_time_unix_nano": 0},
        1: {"start_time_unix_nano": BASE_NS, "end_time_unix_nano": 2**64 - 1},
        2: {"start_time_unix_nano": BASE_NS + 1000, "end_time_unix_nano": BASE_NS}})
    assert send(hostile, transport, "traces", request)[0] in ACCEPTED
    got = rows(hostile, service, "name, epoch_ns(start_time) AS start_ns, epoch_ns(end_time) AS end_ns, "
                                 "duration_ns, ingest_notes")
    assert got == [
        {"name": "op-0", "start_ns": 0, "end_ns": 0, "duration_ns": 0, "ingest_notes": None},
        {"name": "op-1", "start_ns": BASE_NS, "end_ns": 2**63 - 2, "duration_ns": 2**63 - 2 - BASE_NS,
         "ingest_notes": ["timestamp_clamped"]},
        {"name": "op-2", "start_ns": BASE_NS + 1000, "end_ns": BASE_NS, "duration_ns": -1000,
         "ingest_notes": ["end_before_start"]}]
    still_serving(hostile, transport)
