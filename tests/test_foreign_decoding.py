"""The Zipkin, Jaeger and JSON-lines log decoders, fed hostile values in every field (Hypothesis,
derandomized): each answers with rows or with a reason (a 400 for the Zipkin receiver), never
another exception, which a receiver would turn into a retry (503) of a body that can never
decode."""

from __future__ import annotations

import gzip

import orjson
from hypothesis import HealthCheck, given, settings, strategies as st

from collectors.decoding import JSON, PROTOBUF, Refusal, decode_zipkin_payload
from tracekit.errors import DecodeError
from tracekit.formats import detect, json_logs
from tracekit.otlp.batches import DecodedBatch
from tracekit.otlp.json_decode import decode_logs_json, decode_traces_json
from tracekit.formats.otlp_document import logs_document

FUZZ = settings(max_examples=250, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                    st.floats(allow_nan=False), st.text(max_size=20),
                    st.sampled_from(["", "0", "zz", "5af7183fb1d4cf5f", "CLIENT", "SERVER", "true",
                                     "2025-12-07T09:16:40Z", "ERROR"]))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)


def _maybe(keys: list[str]):
    return st.fixed_dictionaries({}, optional={key: VALUES for key in keys})


ZIPKIN_SPAN = st.fixed_dictionaries(
    {"traceId": VALUES, "id": VALUES},
    optional={key: VALUES for key in ("parentId", "kind", "name", "timestamp", "duration", "shared",
                                      "localEndpoint", "remoteEndpoint", "annotations", "tags")})
JAEGER_SPAN = _maybe(["traceID", "spanID", "operationName", "references", "startTime", "duration",
                      "tags", "logs", "processID", "process"])
LOG_RECORD = st.fixed_dictionaries(
    {"@timestamp": VALUES, "message": VALUES},
    optional={key: VALUES for key in ("level", "trace_id", "spanId", "span", "service", "log")})


@FUZZ
@given(spans=st.lists(ZIPKIN_SPAN, max_size=4), gzipped=st.booleans())
def test_any_zipkin_json_body_decodes_or_is_refused_with_400(spans, gzipped):
    body = orjson.dumps(spans, option=orjson.OPT_NON_STR_KEYS) if _dumpable(spans) else b"[1"
    answer = decode_zipkin_payload(JSON, "gzip" if gzipped else "identity",
                                   gzip.compress(body) if gzipped else body, 1 << 20)
    assert isinstance(answer, DecodedBatch) or (isinstance(answer, Refusal) and answer.http_status == 400)


@FUZZ
@given(data=st.binary(max_size=200))
def test_any_protobuf_body_decodes_or_is_refused_with_400(data):
    answer = decode_zipkin_payload(PROTOBUF, "identity", data, 1 << 20)
    assert isinstance(answer, DecodedBatch) or (isinstance(answer, Refusal) and answer.http_status == 400)


@FUZZ
@given(spans=st.lists(JAEGER_SPAN, max_size=4), processes=VALUES)
def test_any_jaeger_trace_converts_or_says_why(spans, processes):
    document = {"data": [{"traceID": "1", "spans": spans, "processes": processes}]}
    try:
        kind, converted = detect.convert(detect.JAEGER, document)
        decode_traces_json(converted)
    except DecodeError:
        pass


@FUZZ
@given(record=LOG_RECORD)
def test_any_log_line_converts_or_says_why(record):
    try:
        decode_logs_json(logs_document([json_logs.to_record(record)]))
    except DecodeError:
        pass


def _dumpable(value) -> bool:
    try:
        orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
        return True
    except (TypeError, orjson.JSONEncodeError):
        return False
