"""With --auth-token-file, both receivers refuse exports without the bearer token, store
nothing from them, and never log the token."""

from __future__ import annotations

import json

import pytest
from opentelemetry.sdk.trace.export import SpanExportResult

from tests.conftest import sql, start_collector, tracekit as run
from tests.otel_clients import exporters
from tests.otlp_payloads import trace_request
from tests.test_otlp_http import post

TOKEN = "s3cret-token-value"


@pytest.fixture
def guarded(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    running = start_collector(tmp_path / "store.duckdb", extra=("--auth-token-file", str(token_file)))
    yield running
    assert running.stop() == 0
    assert TOKEN not in running.process.stderr.read()


def _spans(n: int):
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    for i in range(n):
        provider.get_tracer("t").start_span(f"op-{i}").end()
    return memory.get_finished_spans()


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_sdk_exporters_need_the_token(guarded, transport):
    address = guarded.grpc if transport == "grpc" else guarded.http
    with_token, _ = exporters(transport, address, headers={"authorization": f"Bearer {TOKEN}"})
    wrong, _ = exporters(transport, address, headers={"authorization": "Bearer nope"})
    missing, _ = exporters(transport, address)
    for exporter in (wrong, missing):
        assert exporter.export(_spans(2)) == SpanExportResult.FAILURE
    assert with_token.export(_spans(3)) == SpanExportResult.SUCCESS
    assert sql(guarded.db, "SELECT count(*) AS n FROM spans")[0]["n"] == 3


def test_http_without_token_gets_401_before_the_body_is_read(guarded):
    status, headers, body = post(guarded.http, "/v1/traces", b"not even protobuf")
    assert status == 401 and headers["WWW-Authenticate"] == "Bearer"
    status, _, _ = post(guarded.http, "/v1/traces", trace_request(2).SerializeToString(),
                        headers={"Authorization": "Bearer " + TOKEN})
    assert status == 200


def test_import_into_a_guarded_collector_uses_its_token(guarded, tmp_path):
    from tests.test_import import _otlp_json

    path = tmp_path / "t.json"
    path.write_text(json.dumps(_otlp_json(trace_request(4, service="imported"))))
    summary = json.loads(run("import", "--db", str(guarded.db), "--json", str(path)).stdout)
    assert summary["spans"] == 4
