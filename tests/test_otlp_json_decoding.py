"""OTLP/JSON shapes from the specification decode right, through the direct JSON decoder and
through the protobuf JSON mapping alike."""

from __future__ import annotations

import base64
import copy

import pytest

from tracekit.errors import DecodeError
from tracekit.otlp import json as otlp_json
from tracekit.otlp.decode import decode_logs, decode_traces
from tracekit.otlp.json_decode import decode_logs_json, decode_traces_json


DECODERS = {
    "direct": decode_traces_json,
    "protobuf-mapping": lambda document: decode_traces(otlp_json.traces_request(document)),
}


@pytest.fixture(params=sorted(DECODERS))
def traces_decoder(request):
    return DECODERS[request.param]


def _spans(document: dict, decoder=decode_traces_json) -> list[dict]:
    batch = decoder(copy.deepcopy(document))
    return batch.spans.to_pylist() if batch.spans is not None else []


def _document(span: dict, **resource_span: object) -> dict:
    return {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "cart"}}]},
        "scopeSpans": [{"scope": {"name": "lib", "version": "2"}, "spans": [span]}],
        **resource_span,
    }]}


SPAN = {
    "traceId": "5B8EFFF798038103D269B633813FC60C",
    "spanId": "EEE19B7EC3C1B174",
    "parentSpanId": "EEE19B7EC3C1B173",
    "name": "I'm a server span",
    "startTimeUnixNano": "1544712660000000000",
    "endTimeUnixNano": "1544712661000000000",
    "kind": 2,
    "attributes": [{"key": "my.span.attr", "value": {"stringValue": "some value"}}],
}


def test_upper_and_lower_case_hex_ids_decode_to_lower_case(traces_decoder):
    upper = _spans(_document(SPAN), traces_decoder)[0]
    lower = _spans(_document({**SPAN, "traceId": SPAN["traceId"].lower(),
                              "spanId": SPAN["spanId"].lower()}), traces_decoder)[0]
    assert upper["trace_id"] == lower["trace_id"] == "5b8efff798038103d269b633813fc60c"
    assert upper["span_id"] == "eee19b7ec3c1b174"
    assert upper["parent_span_id"] == "eee19b7ec3c1b173"


def test_64_bit_integers_as_strings_or_numbers_and_enums_as_integers_or_names(traces_decoder):
    as_strings = _spans(_document(SPAN), traces_decoder)[0]
    as_numbers = _spans(_document({**SPAN, "startTimeUnixNano": 1544712660000000000,
                                   "endTimeUnixNano": 1544712661000000000,
                                   "kind": "SPAN_KIND_SERVER",
                                   "status": {"code": "STATUS_CODE_ERROR", "message": "boom"}}),
                        traces_decoder)[0]
    assert as_numbers["status_code"] == "ERROR" and as_numbers["status_message"] == "boom"
    for span in (as_strings, as_numbers):
        assert span["duration_ns"] == 1_000_000_000
        assert span["kind"] == "SERVER"
        assert span["start_time"].value == 1544712660000000000


def test_unknown_fields_are_ignored(traces_decoder):
    document = _document({**SPAN, "someFutureField": {"x": 1}}, futureResourceField=3)
    document["unknownTopLevel"] = True
    [span] = _spans(document, traces_decoder)
    assert span["name"] == "I'm a server span"


def test_attribute_values_of_every_type_decode(traces_decoder):
    attributes = [
        {"key": "s", "value": {"stringValue": "x"}},
        {"key": "i", "value": {"intValue": "9007199254740993"}},
        {"key": "d", "value": {"doubleValue": 2.5}},
        {"key": "b", "value": {"boolValue": True}},
        {"key": "bytes", "value": {"bytesValue": base64.b64encode(b"\x00\x01").decode()}},
        {"key": "arr", "value": {"arrayValue": {"values": [{"intValue": 1}, {"stringValue": "two"}]}}},
        {"key": "map", "value": {"kvlistValue": {"values": [
            {"key": "inner", "value": {"arrayValue": {"values": [{"boolValue": False}]}}}]}}},
    ]
    [span] = _spans(_document({**SPAN, "attributes": attributes}), traces_decoder)
    import orjson

    assert orjson.loads(span["attributes"]) == {
        "s": "x", "i": 9007199254740993, "d": 2.5, "b": True, "bytes": "AAE=",
        "arr": [1, "two"], "map": {"inner": [False]},
    }


def test_links_and_events_keep_hex_ids_and_attributes(traces_decoder):
    span = {**SPAN, "events": [{"timeUnixNano": "1544712660500000000", "name": "ev",
                                "attributes": [{"key": "k", "value": {"intValue": 3}}]}],
            "links": [{"traceId": "0AF7651916CD43DD8448EB211C80319C", "spanId": "B7AD6B7169203331",
                       "attributes": [{"key": "why", "value": {"stringValue": "follows"}}]}]}
    [decoded] = _spans(_document(span), traces_decoder)
    import orjson

    assert decoded["links"] == [{
        "trace_id": "0af7651916cd43dd8448eb211c80319c", "span_id": "b7ad6b7169203331",
        "trace_state": None, "attributes": '{"why":"follows"}', "flags": 0,
        "dropped_attributes_count": 0}]
    [event] = decoded["events"]
    assert event["time"].value == 1544712660500000000
    assert orjson.loads(event["attributes"]) == {"k": 3}


def test_ids_that_are_not_hex_reject_the_span_not_the_request(traces_decoder):
    good = {**SPAN, "spanId": "EEE19B7EC3C1B175"}
    batch = traces_decoder(
        {"resourceSpans": [{"scopeSpans": [{"spans": [{**SPAN, "traceId": "not-hex"}, good]}]}]})
    assert batch.span_count == 1 and batch.rejected_spans.count == 1
    assert batch.spans.column("service_name")[0].as_py() == "unknown_service"


@pytest.mark.parametrize("decoder", [decode_logs_json, lambda d: decode_logs(otlp_json.logs_request(d))],
                         ids=["direct", "protobuf-mapping"])
def test_logs_decode_with_trace_context_and_any_value_body(decoder):
    document = {"resourceLogs": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "pay"}}]},
        "scopeLogs": [{"logRecords": [{
            "timeUnixNano": "1544712660300000000", "severityNumber": 17, "severityText": "ERROR",
            "traceId": "5B8EFFF798038103D269B633813FC60C", "spanId": "EEE19B7EC3C1B174",
            "body": {"kvlistValue": {"values": [{"key": "msg", "value": {"stringValue": "boom"}}]}},
        }, {"observedTimeUnixNano": 1544712660400000000, "body": {"stringValue": "no context"}}]}]}]}
    logs = decoder(document).logs.to_pylist()
    assert logs[0]["trace_id"] == "5b8efff798038103d269b633813fc60c"
    assert logs[0]["span_id"] == "eee19b7ec3c1b174"
    assert logs[0]["severity_number"] == 17 and logs[0]["body"] == '{"msg":"boom"}'
    assert logs[1]["trace_id"] is None
    assert logs[1]["timestamp"] == logs[1]["observed_timestamp"]  # falls back to observed time


@pytest.mark.parametrize("data", [b"{", b"[]", b'"text"'])
def test_documents_that_are_not_objects_are_decode_errors(data):
    with pytest.raises(DecodeError):
        otlp_json.parse_document(data)


def test_snake_case_documents_decode_like_camel_case_ones():
    snake = {"resource_spans": [{"scope_spans": [{"spans": [{
        "trace_id": SPAN["traceId"], "span_id": SPAN["spanId"], "name": "snake",
        "start_time_unix_nano": "1544712660000000000", "end_time_unix_nano": "1544712661000000000",
        "attributes": [{"key": "n", "value": {"int_value": "3"}}]}]}]}]}
    [span] = _spans(snake)
    assert span["trace_id"] == SPAN["traceId"].lower() and span["duration_ns"] == 1_000_000_000
    assert span["attributes"] == '{"n":3}'


def test_direct_and_protobuf_mapping_decoders_give_identical_tables():
    document = _document({**SPAN, "events": [{"timeUnixNano": "1544712660500000000", "name": "e"}],
                          "links": [{"traceId": SPAN["traceId"], "spanId": "B7AD6B7169203331"}],
                          "status": {"code": 2}, "flags": 257, "droppedAttributesCount": 1})
    direct = decode_traces_json(copy.deepcopy(document))
    mapped = decode_traces(otlp_json.traces_request(copy.deepcopy(document)))
    assert direct.spans.equals(mapped.spans)
    assert direct.resources == mapped.resources


def _with_attribute(value: dict) -> dict:
    return _document({**SPAN, "attributes": [{"key": "k", "value": value}]})


@pytest.mark.parametrize("document", [
    _with_attribute({"boolValue": "false"}),
    _with_attribute({"stringValue": 123}),
    _with_attribute({"intValue": 12.7}),
    _with_attribute({"intValue": "18446744073709551615"}),
    {"resourceSpans": "not a list"},
    {"resourceSpans": [{"scopeSpans": [{"spans": ["not an object"]}]}]},
    {"resourceSpans": [{"scopeSpans": [{"spans": [{**SPAN, "startTimeUnixNano": "soon"}]}]}]},
])
def test_malformed_structures_are_decode_errors(document):
    with pytest.raises(DecodeError):
        decode_traces_json(document)
