"""OTLP/JSON shapes from the specification decode to the same spans as protobuf."""

from __future__ import annotations

import base64
import copy

import pytest

from tracekit.errors import DecodeError
from tracekit.otlp import json as otlp_json
from tracekit.otlp.decode import decode_logs, decode_traces


def _spans(document: dict) -> list[dict]:
    batch = decode_traces(otlp_json.traces_request(copy.deepcopy(document)))
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


def test_upper_and_lower_case_hex_ids_decode_to_lower_case():
    upper = _spans(_document(SPAN))[0]
    lower = _spans(_document({**SPAN, "traceId": SPAN["traceId"].lower(),
                              "spanId": SPAN["spanId"].lower()}))[0]
    assert upper["trace_id"] == lower["trace_id"] == "5b8efff798038103d269b633813fc60c"
    assert upper["span_id"] == "eee19b7ec3c1b174"
    assert upper["parent_span_id"] == "eee19b7ec3c1b173"


def test_64_bit_integers_as_strings_or_numbers_and_enums_as_integers_or_names():
    as_strings = _spans(_document(SPAN))[0]
    as_numbers = _spans(_document({**SPAN, "startTimeUnixNano": 1544712660000000000,
                                   "endTimeUnixNano": 1544712661000000000,
                                   "kind": "SPAN_KIND_SERVER"}))[0]
    for span in (as_strings, as_numbers):
        assert span["duration_ns"] == 1_000_000_000
        assert span["kind"] == "SERVER"
        assert span["start_time"].value == 1544712660000000000


def test_unknown_fields_are_ignored():
    document = _document({**SPAN, "someFutureField": {"x": 1}}, futureResourceField=3)
    document["unknownTopLevel"] = True
    [span] = _spans(document)
    assert span["name"] == "I'm a server span"


def test_attribute_values_of_every_type_decode():
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
    [span] = _spans(_document({**SPAN, "attributes": attributes}))
    import orjson

    assert orjson.loads(span["attributes"]) == {
        "s": "x", "i": 9007199254740993, "d": 2.5, "b": True, "bytes": "AAE=",
        "arr": [1, "two"], "map": {"inner": [False]},
    }


def test_links_and_events_keep_hex_ids_and_attributes():
    span = {**SPAN, "events": [{"timeUnixNano": "1544712660500000000", "name": "ev",
                                "attributes": [{"key": "k", "value": {"intValue": 3}}]}],
            "links": [{"traceId": "0AF7651916CD43DD8448EB211C80319C", "spanId": "B7AD6B7169203331",
                       "attributes": [{"key": "why", "value": {"stringValue": "follows"}}]}]}
    [decoded] = _spans(_document(span))
    import orjson

    assert decoded["links"] == [{
        "trace_id": "0af7651916cd43dd8448eb211c80319c", "span_id": "b7ad6b7169203331",
        "trace_state": None, "attributes": '{"why":"follows"}', "flags": 0,
        "dropped_attributes_count": 0}]
    [event] = decoded["events"]
    assert event["time"].value == 1544712660500000000
    assert orjson.loads(event["attributes"]) == {"k": 3}


def test_ids_that_are_not_hex_reject_the_span_not_the_request():
    good = {**SPAN, "spanId": "EEE19B7EC3C1B175"}
    batch = decode_traces(otlp_json.traces_request(
        {"resourceSpans": [{"scopeSpans": [{"spans": [{**SPAN, "traceId": "not-hex"}, good]}]}]}))
    assert batch.span_count == 1 and batch.rejected_spans.count == 1
    assert batch.spans.column("service_name")[0].as_py() == "unknown_service"


def test_logs_decode_with_trace_context_and_any_value_body():
    document = {"resourceLogs": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "pay"}}]},
        "scopeLogs": [{"logRecords": [{
            "timeUnixNano": "1544712660300000000", "severityNumber": 17, "severityText": "ERROR",
            "traceId": "5B8EFFF798038103D269B633813FC60C", "spanId": "EEE19B7EC3C1B174",
            "body": {"kvlistValue": {"values": [{"key": "msg", "value": {"stringValue": "boom"}}]}},
        }, {"observedTimeUnixNano": 1544712660400000000, "body": {"stringValue": "no context"}}]}]}]}
    logs = decode_logs(otlp_json.logs_request(document)).logs.to_pylist()
    assert logs[0]["trace_id"] == "5b8efff798038103d269b633813fc60c"
    assert logs[0]["span_id"] == "eee19b7ec3c1b174"
    assert logs[0]["severity_number"] == 17 and logs[0]["body"] == '{"msg":"boom"}'
    assert logs[1]["trace_id"] is None
    assert logs[1]["timestamp"] == logs[1]["observed_timestamp"]  # falls back to observed time


@pytest.mark.parametrize("data", [b"{", b"[]", b'"text"'])
def test_documents_that_are_not_objects_are_decode_errors(data):
    with pytest.raises(DecodeError):
        otlp_json.parse_document(data)
