"""OTLP/HTTP answers per the specification, stores what it acknowledges, and keeps serving."""

from __future__ import annotations

import gzip
import json
import urllib.error
import urllib.request

import pytest
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from tests.conftest import sql
from tests.otlp_payloads import log_request, trace_request

PROTOBUF = "application/x-protobuf"


def post(address: str, path: str, body: bytes, content_type: str = PROTOBUF,
         method: str = "POST", headers: dict | None = None) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(f"http://{address}{path}", data=body, method=method,
                                     headers={"Content-Type": content_type, **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def span_count(collector, service: str) -> int:
    return sql(collector.db, f"SELECT count(*) AS n FROM spans WHERE service_name = '{service}'")[0]["n"]


def test_duplicate_export_is_stored_once(collector):
    body = trace_request(5, service="dup").SerializeToString()
    for _ in range(3):
        status, _, _ = post(collector.http, "/v1/traces", body)
        assert status == 200
    assert span_count(collector, "dup") == 5


def test_duplicate_log_export_is_stored_once(collector):
    body = log_request(5, service="log-dup").SerializeToString()
    for _ in range(3):
        status, _, _ = post(collector.http, "/v1/logs", body)
        assert status == 200
    assert sql(collector.db, "SELECT count(*) AS n FROM logs WHERE service_name = 'log-dup'")[0]["n"] == 5


def test_batch_with_invalid_spans_gets_partial_success_and_stores_the_rest(collector):
    request = trace_request(5, service="partial", bad={1: {"trace_id": b"\x01" * 15},
                                                       3: {"span_id": bytes(8)}})
    status, headers, body = post(collector.http, "/v1/traces", request.SerializeToString())
    assert status == 200 and headers["Content-Type"].startswith(PROTOBUF)
    response = ExportTraceServiceResponse.FromString(body)
    assert response.partial_success.rejected_spans == 2
    assert "trace_id" in response.partial_success.error_message
    assert "span_id" in response.partial_success.error_message
    assert span_count(collector, "partial") == 3


@pytest.mark.parametrize("content_type,body", [
    (PROTOBUF, b"\x0a\xff\xff\xff\xff\x0f garbage"),
    ("application/json", b'{"resourceSpans": [ {"scopeSpans": '),
    ("application/json", b'{"resourceSpans": "not a list"}'),
    ("application/json", b"[1, 2]"),
])
def test_malformed_body_gets_400_stores_nothing_and_collector_keeps_serving(collector, content_type, body):
    status, headers, answer = post(collector.http, "/v1/traces", body, content_type)
    assert status == 400
    if content_type == PROTOBUF:
        assert status_pb2.Status.FromString(answer).message
    else:
        assert json.loads(answer)["message"]
    assert sql(collector.db, "SELECT count(*) AS n FROM spans")[0]["n"] == 0
    ok, _, _ = post(collector.http, "/v1/traces", trace_request(2, service="after").SerializeToString())
    assert ok == 200 and span_count(collector, "after") == 2


def test_wrong_method_content_type_and_encoding_are_refused(collector):
    body = trace_request(1).SerializeToString()
    status, headers, answer = post(collector.http, "/v1/traces", b"", method="GET")
    assert status == 405 and headers["Allow"] == "POST"
    assert "POST" in status_pb2.Status.FromString(answer).message
    assert post(collector.http, "/v1/traces", body, content_type="text/plain")[0] == 415
    assert post(collector.http, "/v1/traces", body, headers={"Content-Encoding": "br"})[0] == 415
    assert post(collector.http, "/v1/nothing", body)[0] == 404


def test_metrics_are_answered_not_supported(collector):
    status, _, body = post(collector.http, "/v1/metrics", b"{}", "application/json")
    assert status == 404
    assert "not metrics" in json.loads(body)["message"]


def test_gzip_body_over_limit_after_decompression_gets_413(collector):
    # 65 MiB of zeros compresses to ~65 KiB: the limit applies to what it inflates to.
    bomb = gzip.compress(bytes(65 * 1024 * 1024), compresslevel=9)
    assert len(bomb) < 1024 * 1024
    status, _, body = post(collector.http, "/v1/traces", bomb, headers={"Content-Encoding": "gzip"})
    assert status == 413
    assert b"limit" in body
    ok, _, _ = post(collector.http, "/v1/traces", gzip.compress(trace_request(3, service="gz").SerializeToString()),
                    headers={"Content-Encoding": "gzip"})
    assert ok == 200 and span_count(collector, "gz") == 3


def test_json_success_response_is_json(collector):
    document = {"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "json-svc"}}]},
        "scopeSpans": [{"spans": [
            {"traceId": "5B8EFFF798038103D269B633813FC60C", "spanId": "EEE19B7EC3C1B174",
             "name": "ok", "startTimeUnixNano": "1544712660000000000", "endTimeUnixNano": "1544712661000000000"},
            {"traceId": "", "spanId": "EEE19B7EC3C1B175", "name": "no trace id"}]}]}]}
    status, headers, body = post(collector.http, "/v1/traces", json.dumps(document).encode(), "application/json")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    assert json.loads(body)["partialSuccess"]["rejectedSpans"] in ("1", 1)
    assert sql(collector.db, "SELECT trace_id FROM spans WHERE service_name = 'json-svc'") == [
        {"trace_id": "5b8efff798038103d269b633813fc60c"}]


def test_gzip_with_several_members_is_read_whole_and_truncated_gzip_is_refused(collector):
    import zlib

    first = trace_request(2, service="members").SerializeToString()
    second = trace_request(3, service="members").SerializeToString()
    # Protobuf messages concatenate: two gzip members inflate to one request of 5 spans.
    status, _, _ = post(collector.http, "/v1/traces", gzip.compress(first) + gzip.compress(second),
                        headers={"Content-Encoding": "gzip"})
    assert status == 200 and span_count(collector, "members") == 5
    compressor = zlib.compressobj(wbits=16 + zlib.MAX_WBITS)
    cut = compressor.compress(trace_request(4, service="cut").SerializeToString()) + compressor.flush(zlib.Z_SYNC_FLUSH)
    status, _, _ = post(collector.http, "/v1/traces", cut, headers={"Content-Encoding": "gzip"})
    assert status == 400 and span_count(collector, "cut") == 0
