"""Size limits apply after decompression, and a gzip bomb costs neither time nor memory."""

from __future__ import annotations

import gzip
import time
import zlib

import grpc
import pytest

from tests.conftest import sql
from tests.otel_clients import pipeline
from tests.otlp_payloads import trace_request
from tests.process_memory import PeakRss
from tests.test_otlp_http import post

GIB = 1 << 30
EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


@pytest.fixture(scope="module")
def bomb() -> bytes:
    """1 GiB of zeros, gzipped (about 1 MiB)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(1 << 20)
    body = b"".join(packer.compress(zeros) for _ in range(GIB >> 20)) + packer.flush()
    assert len(body) < 2 << 20
    return body


def test_http_gzip_bomb_is_refused_with_413_fast_and_without_inflating_it(collector, bomb):
    with PeakRss(collector.process.pid) as memory:
        started = time.monotonic()
        status, _, body = post(collector.http, "/v1/traces", bomb, headers={"Content-Encoding": "gzip"})
        elapsed = time.monotonic() - started
    assert status == 413 and b"limit after decompression" in body
    assert elapsed < 2
    assert memory.peak - memory.start < 64, f"collector grew {memory.peak - memory.start:.0f} MiB"
    ok, _, _ = post(collector.http, "/v1/traces", trace_request(2, service="after-bomb").SerializeToString())
    assert ok == 200


def test_grpc_gzip_bomb_is_resource_exhausted_fast_and_without_inflating_it(collector, bomb):
    with grpc.insecure_channel(collector.grpc) as channel:
        export = channel.unary_unary(EXPORT)
        with PeakRss(collector.process.pid) as memory:
            started = time.monotonic()
            # The gzip stream as the message bytes: what the server receives from a client
            # that compressed 1 GiB, without the test spending seconds compressing it.
            with pytest.raises(grpc.RpcError) as refused:
                export(bomb, timeout=30)
            elapsed = time.monotonic() - started
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert elapsed < 2
        assert memory.peak - memory.start < 64, f"collector grew {memory.peak - memory.start:.0f} MiB"
        # And through gRPC's own message compression (the client gzips 256 MiB of zeros).
        with PeakRss(collector.process.pid) as memory:
            with pytest.raises(grpc.RpcError) as refused:
                export(bytes(256 << 20), compression=grpc.Compression.Gzip, timeout=60)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert memory.peak - memory.start < 64, f"collector grew {memory.peak - memory.start:.0f} MiB"


@pytest.mark.parametrize("transport", ["grpc-gzip", "http-gzip"])
def test_sdk_exports_compressed_with_gzip_are_stored(collector, transport):
    sdk = pipeline(f"gz-{transport}", transport, collector.grpc if transport.startswith("grpc") else collector.http)
    try:
        for i in range(300):
            with sdk.tracer.start_as_current_span(f"op-{i}", attributes={"payload": "x" * 200}):
                pass
        sdk.flush()
    finally:
        sdk.shutdown()
    [row] = sql(collector.db, f"SELECT count(*) AS n FROM spans WHERE service_name = 'gz-{transport}'")
    assert row["n"] == 300


def test_deflate_over_grpc_is_recognised(collector):
    deflated, gzipped = (trace_request(3, service="deflated").SerializeToString() for _ in range(2))
    with grpc.insecure_channel(collector.grpc) as channel:
        channel.unary_unary(EXPORT)(deflated, compression=grpc.Compression.Deflate, timeout=10)
        channel.unary_unary(EXPORT)(gzip.compress(gzipped), timeout=10)
    [row] = sql(collector.db, "SELECT count(*) AS n FROM spans WHERE service_name = 'deflated'")
    assert row["n"] == 6
