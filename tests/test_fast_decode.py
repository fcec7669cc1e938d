"""The compiled decoder (tracekit/otlp/_spans.c) gives the Python decoder's tables, or steps aside.

The Python decoder (`decode_traces`) is the reference. For every request, the compiled one
must either give the same spans, resources and attribute values (same JSON types: 1 is not
1.0), or return None so that the collector runs the reference. Requests come from the real
OpenTelemetry SDK's encoder and from Hypothesis, which also builds the corner cases the
compiled decoder must hand back: bad ids, clamped times, repeated keys, deep nesting,
invalid UTF-8, malformed bytes.
"""

from __future__ import annotations

import math
import os

import orjson
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from collectors.decoding import JSON, PROTOBUF, TRACES, Refusal, decode_payload
from tests.otlp_payloads import otlp_json as otlp_json_document
from tracekit.otlp import json as otlp_json
from tracekit.otlp.columns import DEFAULT_REDACTOR, MAX_TIMESTAMP_NS
from tracekit.otlp.decode import decode_traces
from tracekit.otlp.fast_decode import AVAILABLE, JSON_AVAILABLE, decode_traces_fast, decode_traces_json_fast
from tracekit.otlp.json_decode import decode_traces_json
from tracekit.redaction import Redactor, redactor_for

pytestmark = pytest.mark.skipif(
    not AVAILABLE and not os.environ.get("CI"),
    reason="the compiled decoder was not built (no C compiler at install)")


def test_the_compiled_decoder_is_built_in_ci():
    assert AVAILABLE, "pip install did not build tracekit.otlp._spans"


JSON_COLUMNS = ("attributes",)


def normalized(batch) -> tuple[list[dict], dict]:
    """Rows with every JSON text re-serialized (so 0.1 and 0.1000 compare equal, 1 and 1.0 do
    not), and the resources."""
    def norm(text):
        return orjson.dumps(orjson.loads(text)) if text is not None else None

    rows = batch.spans.to_pylist() if batch.spans is not None else []
    for row in rows:
        row["attributes"] = norm(row["attributes"])
        for item in (row["events"] or []) + (row["links"] or []):
            item["attributes"] = norm(item["attributes"])
    return rows, batch.resources


def reference(data: bytes, redact: Redactor = DEFAULT_REDACTOR):
    return decode_traces(ExportTraceServiceRequest.FromString(data), redact)


def assert_same_tables(fast, ref) -> None:
    if fast.spans is not None:
        assert fast.spans.schema == ref.spans.schema
    assert normalized(fast) == normalized(ref)
    # Both name the top-level attribute keys of the spans they decoded (the store's register).
    in_rows = {key for row in normalized(ref)[0] for key in orjson.loads(row["attributes"])}
    assert fast.attribute_keys == ref.attribute_keys == in_rows


def assert_same_as_reference(data: bytes, redact: Redactor = DEFAULT_REDACTOR, *, fast_required: bool):
    fast = decode_traces_fast(data, redact)
    if fast is None:
        assert not fast_required, "the compiled decoder stepped aside on an ordinary request"
        return None
    assert_same_tables(fast, reference(data, redact))
    return fast


# --- Requests from the OpenTelemetry SDK ------------------------------------------------------

def sdk_request() -> bytes:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({
        "service.name": "checkout", "service.version": "1.2.3", "host.name": "pod-7",
        "deployment.environment.name": "prod"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("shop.checkout", "3.4.1")
    other = provider.get_tracer("opentelemetry.instrumentation.httpx", "0.59b0")
    with tracer.start_as_current_span("POST /orders", kind=trace.SpanKind.SERVER, attributes={
            "http.request.method": "POST", "http.response.status_code": 201, "ratio": 0.25,
            "whole": 2.0, "retry": False, "tags": ["a", "b\n\"quoted\""], "ids": [1, 2, 3],
            "weights": [0.5, 1e300], "flags": [True, False], "ünïcode": "日本語 ✓",
            "http.request.header.authorization": "Bearer s3cr3t", "tab\there": "x"}) as server:
        with other.start_as_current_span("GET", kind=trace.SpanKind.CLIENT) as client:
            client.set_status(trace.Status(trace.StatusCode.OK))
        with tracer.start_as_current_span("publish", kind=trace.SpanKind.PRODUCER) as producer:
            producer.add_event("sent", {"messaging.message.id": "m-1", "size": 512})
        consumer_link = trace.Link(producer.get_span_context(), {"link.kind": "follows", "n": 1})
        with tracer.start_as_current_span("consume", kind=trace.SpanKind.CONSUMER,
                                          links=[consumer_link]) as consumer:
            try:
                raise ValueError("card declined: \x00\x1f control characters")
            except ValueError as exc:
                consumer.record_exception(exc)
                consumer.set_status(trace.Status(trace.StatusCode.ERROR, "declined"))
        server.set_attribute("late", "set after children")
    provider.shutdown()
    return encode_spans(exporter.get_finished_spans()).SerializeToString()


def test_sdk_requests_decode_to_the_same_spans():
    data = sdk_request()
    fast = assert_same_as_reference(data, fast_required=True)
    assert fast.span_count == 4
    server = next(row for row in fast.spans.to_pylist() if row["name"] == "POST /orders")
    attributes = orjson.loads(server["attributes"])
    assert attributes["http.request.header.authorization"] == "[REDACTED]"
    assert attributes["whole"] == 2.0 and isinstance(attributes["whole"], float)
    assert attributes["tags"] == ["a", "b\n\"quoted\""]


def test_secrets_nested_in_maps_and_arrays_are_masked_as_the_reference_masks_them():
    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name = os.urandom(16), os.urandom(8), "login"
    span.start_time_unix_nano, span.end_time_unix_nano = 10, 20
    outer = span.attributes.add(key="request")
    inner = outer.value.kvlist_value.values.add(key="headers")
    inner.value.kvlist_value.values.add(key="Cookie").value.string_value = "session=1"
    inner.value.kvlist_value.values.add(key="accept").value.string_value = "*/*"
    listed = span.attributes.add(key="attempts").value.array_value.values.add()
    listed.kvlist_value.values.add(key="apiKey").value.string_value = "k"
    data = request.SerializeToString()
    for redact in (DEFAULT_REDACTOR, Redactor(()), redactor_for(("accept",))):
        fast = assert_same_as_reference(data, redact, fast_required=True)
    masked = orjson.loads(decode_traces_fast(data, DEFAULT_REDACTOR).spans.column("attributes")[0].as_py())
    assert masked == {"request": {"headers": {"Cookie": "[REDACTED]", "accept": "*/*"}},
                      "attempts": [{"apiKey": "[REDACTED]"}]}
    assert fast is not None


# --- Generated requests -------------------------------------------------------------------------

keys = st.sampled_from(["http.route", "db.system", "order.id", "authorization", "Set-Cookie",
                        "x", "", "ключ", "a\"b", "k\x01"])
scalars = st.one_of(
    st.text(max_size=12).map(lambda s: AnyValue(string_value=s)),
    st.integers(-2**63, 2**63 - 1).map(lambda i: AnyValue(int_value=i)),
    st.floats(allow_nan=True, allow_infinity=True).map(lambda f: AnyValue(double_value=f)),
    st.booleans().map(lambda b: AnyValue(bool_value=b)),
    st.binary(max_size=10).map(lambda b: AnyValue(bytes_value=b)),
    st.just(AnyValue()),
)


def _array(items):
    value = AnyValue()
    value.array_value.SetInParent()
    value.array_value.values.extend(items)
    return value


def _kvlist(pairs):
    value = AnyValue()
    value.kvlist_value.SetInParent()
    value.kvlist_value.values.extend(KeyValue(key=k, value=v) for k, v in pairs)
    return value


def _values(distinct_keys: bool):
    def pairs(inner):
        listed = st.lists(st.tuples(keys, inner), max_size=3)
        return listed.map(lambda p: list(dict(p).items())) if distinct_keys else listed

    return st.recursive(scalars, lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(_array), pairs(inner).map(_kvlist)), max_leaves=8)


values = _values(distinct_keys=True)
wild_values = _values(distinct_keys=False)   # nested maps may repeat a key
attribute_lists = st.lists(st.tuples(keys, values), max_size=5)
wild_attribute_lists = st.lists(st.tuples(keys, wild_values), max_size=5)
ids16 = st.one_of(st.binary(min_size=16, max_size=16), st.sampled_from([b"", bytes(16), b"\x01" * 15]))
ids8 = st.one_of(st.binary(min_size=8, max_size=8), st.sampled_from([b"", bytes(8), b"\x01" * 9]))
times = st.one_of(st.integers(0, 2**64 - 1), st.integers(10**18, 2 * 10**18))


@st.composite
def requests(draw, ordinary: bool = False) -> bytes:
    request = ExportTraceServiceRequest()
    for _ in range(draw(st.integers(1, 2))):
        resource_spans = request.resource_spans.add()
        resource_spans.resource.attributes.extend(
            KeyValue(key=k, value=v) for k, v in draw(attribute_lists))
        for _ in range(draw(st.integers(0, 2))):
            scope_spans = resource_spans.scope_spans.add()
            scope_spans.scope.name = draw(st.text(max_size=8))
            scope_spans.scope.version = draw(st.text(max_size=4))
            for _ in range(draw(st.integers(0, 3))):
                span = scope_spans.spans.add()
                if ordinary:
                    span.trace_id, span.span_id = os.urandom(16), os.urandom(8)
                    span.parent_span_id = draw(st.sampled_from([b"", os.urandom(8)]))
                    span.start_time_unix_nano = draw(st.integers(0, 2 * 10**18))
                    span.end_time_unix_nano = span.start_time_unix_nano + draw(st.integers(0, 10**12))
                    pairs = dict(draw(attribute_lists))   # distinct keys
                else:
                    span.trace_id, span.span_id = draw(ids16), draw(ids8)
                    span.parent_span_id = draw(st.one_of(st.just(b""), ids8))
                    span.start_time_unix_nano, span.end_time_unix_nano = draw(times), draw(times)
                    pairs = draw(wild_attribute_lists)
                    span.kind = draw(st.integers(-3, 9))
                    span.status.code = draw(st.integers(-1, 4))
                span.name = draw(st.text(max_size=10))
                span.trace_state = draw(st.sampled_from(["", "vendor=1"]))
                span.status.message = draw(st.text(max_size=6))
                span.flags = draw(st.integers(0, 2**32 - 1))
                span.dropped_attributes_count = draw(st.integers(0, 3))
                span.attributes.extend(KeyValue(key=k, value=v) for k, v in
                                       (pairs.items() if isinstance(pairs, dict) else pairs))
                for _ in range(draw(st.integers(0, 2))):
                    event = span.events.add(name=draw(st.text(max_size=6)), time_unix_nano=draw(times))
                    event.attributes.extend(KeyValue(key=k, value=v) for k, v in
                                            dict(draw(attribute_lists)).items())
                for _ in range(draw(st.integers(0, 2))):
                    link = span.links.add(trace_id=draw(ids16), span_id=draw(ids8),
                                          flags=draw(st.integers(0, 2**32 - 1)))
                    link.attributes.extend(KeyValue(key=k, value=v) for k, v in
                                           dict(draw(attribute_lists)).items())
    return request.SerializeToString()


settings_ = settings(max_examples=300, derandomize=True, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@settings_
@given(requests(ordinary=True))
def test_ordinary_requests_take_the_compiled_decoder_and_match(data):
    assert_same_as_reference(data, fast_required=True)


@settings_
@given(requests())
def test_any_request_matches_the_reference_or_is_handed_back(data):
    assert_same_as_reference(data, fast_required=False)


@settings_
@given(requests(ordinary=True), st.data())
def test_malformed_bytes_are_handed_back_never_misread(data, draw):
    cut = draw.draw(st.integers(0, max(0, len(data) - 1)))
    flip = draw.draw(st.integers(0, 255))
    for broken in (data[:cut], data[:cut] + bytes([flip]) + data[cut + 1:]):
        try:
            ref = reference(broken)
        except Exception:     # the reference refuses it (a 400): the fast path must step aside
            assert decode_traces_fast(broken, DEFAULT_REDACTOR) is None
            continue
        assert_same_as_reference(broken, fast_required=False)
        assert ref is not None


# --- What the compiled decoder leaves to the reference ---------------------------------------------

def one_span(**fields) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name = b"\x01" * 16, b"\x02" * 8, "op"
    span.start_time_unix_nano, span.end_time_unix_nano = 100, 200
    for name, value in fields.items():
        setattr(span, name, value)
    return request


@pytest.mark.parametrize("fields, note", [
    ({"end_time_unix_nano": 50}, "end_before_start"),
    ({"start_time_unix_nano": 2**64 - 1, "end_time_unix_nano": 2**64 - 1}, "timestamp_clamped"),
    ({"parent_span_id": bytes(8)}, "invalid_parent_span_id"),
])
def test_spans_that_get_a_note_are_left_to_the_reference(fields, note):
    data = one_span(**fields).SerializeToString()
    assert decode_traces_fast(data, DEFAULT_REDACTOR) is None
    batch = decode_payload(TRACES, PROTOBUF, "identity", data, 1 << 20)
    assert note in batch.spans.column("ingest_notes")[0].as_py()


def test_repeated_keys_keep_the_last_value_through_the_reference():
    request = one_span()
    span = request.resource_spans[0].scope_spans[0].spans[0]
    span.attributes.add(key="k").value.int_value = 1
    span.attributes.add(key="k").value.int_value = 2
    data = request.SerializeToString()
    assert decode_traces_fast(data, DEFAULT_REDACTOR) is None
    batch = decode_payload(TRACES, PROTOBUF, "identity", data, 1 << 20)
    assert orjson.loads(batch.spans.column("attributes")[0].as_py()) == {"k": 2}


def test_invalid_utf8_is_repaired_by_the_reference():
    data = one_span(name="op-\u00e9").SerializeToString().replace("op-\u00e9".encode(), b"op-\xff\xfe")
    assert decode_traces_fast(data, DEFAULT_REDACTOR) is None
    batch = decode_payload(TRACES, PROTOBUF, "identity", data, 1 << 20)
    assert batch.spans.column("name")[0].as_py() == "op-\ufffd\ufffd"
    assert "invalid_utf8_replaced" in batch.spans.column("ingest_notes")[0].as_py()


def test_event_times_past_the_latest_storable_time_are_clamped_alike():
    request = one_span()
    request.resource_spans[0].scope_spans[0].spans[0].events.add(name="e", time_unix_nano=2**64 - 1)
    data = request.SerializeToString()
    fast = assert_same_as_reference(data, fast_required=True)
    assert fast.spans.column("events")[0].as_py()[0]["time"].value == MAX_TIMESTAMP_NS


def test_doubles_keep_their_type_and_value():
    request = one_span()
    span = request.resource_spans[0].scope_spans[0].spans[0]
    for i, value in enumerate((1.0, -0.0, 0.1, 1e300, 5e-324, math.pi, float("nan"), float("inf"))):
        span.attributes.add(key=f"d{i}").value.double_value = value
    fast = assert_same_as_reference(request.SerializeToString(), fast_required=True)
    decoded = orjson.loads(fast.spans.column("attributes")[0].as_py())
    assert decoded["d0"] == 1.0 and isinstance(decoded["d0"], float)
    assert decoded["d2"] == 0.1 and decoded["d3"] == 1e300 and decoded["d4"] == 5e-324
    assert decoded["d6"] is None and decoded["d7"] is None   # JSON has no NaN or infinity


# --- OTLP/JSON through the compiled decoders ---------------------------------------------------
# `_otlp_json.c` writes an OTLP/JSON trace request as protobuf for the decoder above; the
# reference is the Python decoder of OTLP/JSON (`decode_traces_json`), and the two must give
# the same tables, or the compiled path must step aside.

def json_reference(data: bytes, redact: Redactor = DEFAULT_REDACTOR):
    return decode_traces_json(otlp_json.parse_document(data), redact)


def assert_json_same_as_reference(data: bytes, redact: Redactor = DEFAULT_REDACTOR, *,
                                  fast_required: bool):
    fast = decode_traces_json_fast(data, redact)
    if fast is None:
        assert not fast_required, "the compiled path stepped aside on an ordinary OTLP/JSON request"
        return None
    assert_same_tables(fast, json_reference(data, redact))
    return fast


def as_json(data: bytes) -> bytes:
    return orjson.dumps(otlp_json_document(ExportTraceServiceRequest.FromString(data)))


def test_sdk_requests_in_otlp_json_take_the_compiled_decoders_and_match():
    assert JSON_AVAILABLE or not os.environ.get("CI"), "pip install did not build tracekit.otlp._otlp_json"
    fast = assert_json_same_as_reference(as_json(sdk_request()), fast_required=True)
    assert fast.span_count == 4


@settings_
@given(requests(ordinary=True))
def test_ordinary_otlp_json_requests_take_the_compiled_decoders_and_match(data):
    assert_json_same_as_reference(as_json(data), fast_required=True)


@settings_
@given(requests())
def test_any_otlp_json_request_matches_the_reference_or_is_handed_back(data):
    assert_json_same_as_reference(as_json(data), fast_required=False)


def one_json_span(**members) -> dict:
    span = {"traceId": "0102030405060708090a0b0c0d0e0f10", "spanId": "0102030405060708",
            "name": "op", "startTimeUnixNano": "100", "endTimeUnixNano": "200", **members}
    return {"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "checkout"}}]},
        "scopeSpans": [{"scope": {"name": "lib", "version": "1"}, "spans": [span]}]}]}


@pytest.mark.parametrize("document", [
    # what the OTLP specification allows beside the protobuf mapping's own output
    one_json_span(kind=2, status={"code": 2, "message": "declined"}, flags=257),
    one_json_span(kind="SPAN_KIND_CLIENT", startTimeUnixNano=100, endTimeUnixNano=200,
                  droppedAttributesCount="3"),
    one_json_span(traceId="0102030405060708090A0B0C0D0E0F10", parentSpanId="",
                  attributes=[{"key": "n", "value": {"intValue": -7}},
                              {"key": "d", "value": {"doubleValue": 3}},
                              {"key": "z", "value": {"doubleValue": -0.0}},
                              {"key": "b", "value": {"bytesValue": "AAEC"}},
                              {"key": "nothing", "value": {}},
                              {"key": "absent"}]),
    # members the reference ignores: unknown names, a scope's attributes, schema URLs
    one_json_span(somethingNew={"nested": [1, 2.5, None, True]}, schemaUrl="https://x"),
    {"resourceSpans": [{"schemaUrl": "s", "resource": {"droppedAttributesCount": 1},
                        "scopeSpans": [{"scope": {"attributes": [], "droppedAttributesCount": 2},
                                        "spans": []}]}], "extra": None},
])
def test_otlp_json_the_specification_allows_takes_the_compiled_decoders_and_matches(document):
    assert_json_same_as_reference(orjson.dumps(document), fast_required=True)


def test_otlp_json_text_with_escapes_and_spacing_takes_the_compiled_decoders_and_matches():
    text = ('{ "resourceSpans" : [ { "scopeSpans" : [ { "spans" : [ {\n'
            '  "\\u0074raceId": "0102030405060708090a0b0c0d0e0f10", "spanId": "0102030405060708",\n'
            '  "name": "caf\\u00e9 \\ud83d\\ude00 \\"q\\" \\\\ \\/ \\b\\f\\n\\r\\t \\u0000",\n'
            '  "startTimeUnixNano": "5", "endTimeUnixNano": "6",\n'
            '  "attributes": [ { "key": "\\u043a\\u043b\\u044e\\u0447", "value": {"stringValue": "\xe6\x97\xa5"} } ]\n'
            '} ] } ] } ] }\t\r\n')
    fast = assert_json_same_as_reference(text.encode("latin-1"), fast_required=True)
    assert fast.spans.column("name")[0].as_py() == "café 😀 \"q\" \\ / \b\f\n\r\t \x00"


@pytest.mark.parametrize("text", [
    orjson.dumps({"resource_spans": []}),                                      # protobuf names
    orjson.dumps(one_json_span(start_time_unix_nano="100")),
    b'{"resourceSpans": [], "resourceSpans": []}',                             # repeated member
    b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": "\\ud800"}]}]}]}',  # lone surrogate
    orjson.dumps(one_json_span(startTimeUnixNano="-1")),                       # out of range
    orjson.dumps(one_json_span(droppedAttributesCount=1.5)),                   # not an integer
    orjson.dumps(one_json_span(attributes=[{"key": "b", "value": {"bytesValue": "AAE"}}])),
    orjson.dumps(one_json_span(attributes=[{"key": "v", "value": {"stringValue": "a", "intValue": 1}}])),
    orjson.dumps(one_json_span(name=5)),                                       # another type
    orjson.dumps(one_json_span(spanId="not hex at all!!")),
    orjson.dumps(one_json_span(kind="SPAN_KIND_SOMETHING")),
    orjson.dumps(one_json_span()) + b" trailing",
    orjson.dumps(one_json_span())[:-3],
])
def test_otlp_json_the_compiled_decoders_do_not_cover_is_left_to_the_reference(text):
    assert decode_traces_json_fast(text, DEFAULT_REDACTOR) is None
    outcome = decode_payload(TRACES, JSON, "identity", text, 1 << 20)
    assert isinstance(outcome, Refusal) or outcome.span_count <= 1


@settings_
@given(requests(ordinary=True), st.data())
def test_malformed_otlp_json_is_handed_back_never_misread(data, draw):
    text = as_json(data)
    cut = draw.draw(st.integers(0, max(0, len(text) - 1)))
    flip = draw.draw(st.integers(0, 255))
    for broken in (text[:cut], text[:cut] + bytes([flip]) + text[cut + 1:]):
        try:
            json_reference(broken)
        except Exception:     # the reference refuses it (a 400): the fast path must step aside
            assert decode_traces_json_fast(broken, DEFAULT_REDACTOR) is None
            continue
        assert_json_same_as_reference(broken, fast_required=False)
