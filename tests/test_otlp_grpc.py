"""OTLP/gRPC answers per the specification and stores what it acknowledges."""

from __future__ import annotations

import grpc
import pytest
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

from tests.conftest import sql
from tests.otlp_payloads import log_request, trace_request


@pytest.fixture
def channel(collector):
    with grpc.insecure_channel(collector.grpc) as ch:
        yield ch


def test_duplicate_export_over_grpc_is_stored_once(collector, channel):
    stub = trace_service_pb2_grpc.TraceServiceStub(channel)
    request = trace_request(4, service="grpc-dup")
    for _ in range(3):
        stub.Export(request, timeout=30)
    assert sql(collector.db, "SELECT count(*) AS n FROM spans WHERE service_name = 'grpc-dup'")[0]["n"] == 4


def test_duplicate_log_export_over_grpc_is_stored_once(collector, channel):
    stub = logs_service_pb2_grpc.LogsServiceStub(channel)
    request = log_request(4, service="grpc-log-dup")
    for _ in range(3):
        stub.Export(request, timeout=30)
    assert sql(collector.db, "SELECT count(*) AS n FROM logs WHERE service_name = 'grpc-log-dup'")[0]["n"] == 4


def test_invalid_spans_get_partial_success_over_grpc(collector, channel):
    stub = trace_service_pb2_grpc.TraceServiceStub(channel)
    request = trace_request(3, service="grpc-partial", bad={0: {"trace_id": bytes(16)}})
    response = stub.Export(request, timeout=30)
    assert response.partial_success.rejected_spans == 1
    assert "trace_id" in response.partial_success.error_message
    assert sql(collector.db, "SELECT count(*) AS n FROM spans WHERE service_name = 'grpc-partial'")[0]["n"] == 2


def test_malformed_protobuf_over_grpc_is_invalid_argument(collector, channel):
    export = channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")
    with pytest.raises(grpc.RpcError) as refused:
        export(b"\x0a\xff\xff\xff\xff\x0f garbage", timeout=30)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert sql(collector.db, "SELECT count(*) AS n FROM spans")[0]["n"] == 0
    trace_service_pb2_grpc.TraceServiceStub(channel).Export(trace_request(1), timeout=30)
    assert sql(collector.db, "SELECT count(*) AS n FROM spans")[0]["n"] == 1


def test_metrics_over_grpc_are_unimplemented(collector, channel):
    stub = metrics_service_pb2_grpc.MetricsServiceStub(channel)
    with pytest.raises(grpc.RpcError) as refused:
        stub.Export(metrics_service_pb2.ExportMetricsServiceRequest(), timeout=30)
    assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "not metrics" in refused.value.details()
