"""Zipkin v2 in: the receiver fed by a real Zipkin reporter (py_zipkin), shared spans folded into
a call, Istio/Envoy sidecar spans folded into their service, and `tracekit import` of the same."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from py_zipkin import Kind
from py_zipkin.encoding import Encoding
from py_zipkin.request_helpers import create_http_headers
from py_zipkin.transport import BaseTransportHandler, SimpleHTTPTransport
from py_zipkin.zipkin import ZipkinAttrs, zipkin_span

from tests.conftest import pid_alive, sql, start_collector, tracekit as run

SAMPLES = Path(__file__).parent / "foreign_formats"
# Istio's Bookinfo behind an ingress gateway, as Envoy sidecars report it to Zipkin with the
# shared span context Envoy's Zipkin tracer uses by default: each hop a CLIENT span in the
# caller's sidecar and a SERVER span with the same id in the callee's. The tags are those
# Istio's proxies set: `component: proxy`, `node_id` ("sidecar~IP~POD.NAMESPACE~NAMESPACE.svc.
# cluster.local", as in xishengcai/k8s-learn istio/istio-proxy.md), `upstream_cluster`
# ("outbound|PORT||HOST" / "inbound|PORT||"), `istio.canonical_service`, `istio.mesh_id` and
# `istio.namespace` (listed in honeycombio/opentelemetry-oteps text/0000-service-mesh-
# attributes.md and rnsasg/infrastructure Istio/.../distrubuted_tracing_zepkin.md), response
# flags and `error: "true"` on a 5xx. A sidecar's localEndpoint is "<service>.<namespace>".
ISTIO_SAMPLE = SAMPLES / "istio_bookinfo_zipkin.json"


@pytest.fixture
def zipkin_collector(tmp_path):
    running = start_collector(tmp_path / "store.duckdb", extra=("--zipkin", "127.0.0.1:0"))
    yield running
    if running.process.poll() is None:
        assert running.stop() == 0, running.process.stderr.read()


def post(address: str, body: bytes, content_type: str = "application/json",
         headers: dict | None = None) -> tuple[int, dict, str]:
    request = urllib.request.Request(f"http://{address}/api/v2/spans", data=body, method="POST",
                                     headers={"Content-Type": content_type, **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


class GzipTransport(BaseTransportHandler):
    """py_zipkin's HTTP transport, gzipping the body as Brave's and zipkin-go's reporters can."""

    def __init__(self, address: str) -> None:
        self.address = address

    def get_max_payload_bytes(self):
        return None

    def send(self, payload) -> None:
        content_type = "application/x-protobuf" if isinstance(payload, bytes) else "application/json"
        body = gzip.compress(payload if isinstance(payload, bytes) else payload.encode())
        status, _, text = post(self.address, body, content_type, {"Content-Encoding": "gzip"})
        assert status == 202, text


def checkout_calls_inventory(transport, encoding: Encoding, order: str) -> str:
    """checkout's POST /orders calls inventory over HTTP with B3 headers; inventory, in another
    thread as another process would, joins the client's span as Zipkin servers do (shared).
    Returns the trace id."""
    with zipkin_span(service_name="checkout", span_name="POST /orders", kind=Kind.SERVER,
                     transport_handler=transport, sample_rate=100.0, encoding=encoding) as root:
        root.update_binary_annotations({"order.id": order, "http.method": "POST"})
        with zipkin_span(service_name="checkout", span_name="GET /stock", kind=Kind.CLIENT) as call:
            call.add_sa_binary_annotation(port=8080, service_name="inventory", host="10.0.0.7")
            headers = create_http_headers()

            def inventory() -> None:
                attrs = ZipkinAttrs(trace_id=headers["X-B3-TraceId"], span_id=headers["X-B3-SpanId"],
                                    parent_span_id=headers["X-B3-ParentSpanId"],
                                    flags=headers["X-B3-Flags"], is_sampled=True)
                with zipkin_span(service_name="inventory", span_name="GET /stock", kind=Kind.SERVER,
                                 zipkin_attrs=attrs, transport_handler=transport,
                                 encoding=encoding) as server:
                    server.add_annotation("stock.checked")
                    server.update_binary_annotations({"error": "out of stock"})
                    with zipkin_span(service_name="inventory", span_name="SELECT stock"):
                        pass

            thread = threading.Thread(target=inventory)
            thread.start()
            thread.join()
    return headers["X-B3-TraceId"].rjust(32, "0")


@pytest.mark.parametrize("encoding", [Encoding.V2_JSON, Encoding.V2_PROTO3], ids=["json", "protobuf"])
def test_py_zipkin_reporter_spans_are_stored_with_the_shared_span_as_a_call(zipkin_collector, encoding):
    host, port = zipkin_collector.zipkin.rsplit(":", 1)
    trace_id = checkout_calls_inventory(SimpleHTTPTransport(host, int(port)), encoding, "o-1")

    # py_zipkin's transport asserts the 202, which the receiver answers once committed.
    rows = sql(zipkin_collector.db, "SELECT service_name, name, kind, status_code, status_message, "
               "span_id, parent_span_id, attributes['network.peer.address']::VARCHAR AS peer, "
               "attributes['peer.service']::VARCHAR AS peer_service, "
               "list_transform(events, lambda e: e.name) AS events FROM spans "
               f"WHERE trace_id = '{trace_id}' ORDER BY start_time")
    by_name = {(r["service_name"], r["kind"]): r for r in rows}
    assert len(rows) == 4
    client, server = by_name[("checkout", "CLIENT")], by_name[("inventory", "SERVER")]
    assert server["parent_span_id"] == client["span_id"] != server["span_id"]
    assert server["status_code"] == "ERROR" and server["status_message"] == "out of stock"
    assert client["peer"] == "10.0.0.7" and client["peer_service"] == "inventory"
    assert server["events"] == ["stock.checked"]
    select = next(r for r in rows if r["name"] == "SELECT stock")
    assert select["parent_span_id"] == server["span_id"]   # the server's own work follows it

    edges = json.loads(run("services", "--db", str(zipkin_collector.db), "--json").stdout)
    assert {(e["src_service"], e["dst_service"], e["errors"]) for e in edges} == {("checkout", "inventory", 1)}


def test_gzipped_reports_are_taken_and_a_resent_report_is_stored_once(zipkin_collector):
    transport = GzipTransport(zipkin_collector.zipkin)
    trace_id = checkout_calls_inventory(transport, Encoding.V2_JSON, "o-2")
    body = json.dumps([{"traceId": trace_id[16:], "id": "00000000000000aa", "kind": "SERVER",
                        "shared": True, "name": "again", "timestamp": 1_765_000_000_000_000,
                        "duration": 10, "localEndpoint": {"serviceName": "resent"}}]).encode()
    for _ in range(3):
        status, _, _ = post(zipkin_collector.zipkin, gzip.compress(body), headers={"Content-Encoding": "gzip"})
        assert status == 202
    assert sql(zipkin_collector.db, "SELECT count(*) AS n FROM spans WHERE service_name = 'resent'") == [{"n": 1}]
    assert sql(zipkin_collector.db, f"SELECT count(*) AS n FROM spans WHERE trace_id = '{trace_id}'") == [{"n": 5}]


@pytest.mark.parametrize("content_type, encoding, body, says", [
    ("application/json", "identity", b"[{\"traceId\": ", "malformed JSON"),
    ("application/json", "identity", b"{\"traceId\": \"1\", \"id\": \"2\"}", "JSON list of spans"),
    ("application/json", "identity", b"[{\"name\": \"no ids\"}]", "needs traceId and id"),
    ("application/x-protobuf", "identity", b"\x0a\x05\xff\xff", "zipkin.proto3.ListOfSpans"),
    ("application/json", "gzip", b"not gzip at all", "not valid gzip"),
], ids=["truncated-json", "object", "no-ids", "bad-protobuf", "bad-gzip"])
def test_malformed_body_gets_400_with_the_reason_and_the_collector_keeps_serving(
        zipkin_collector, content_type, encoding, body, says):
    status, _, text = post(zipkin_collector.zipkin, body, content_type, {"Content-Encoding": encoding})
    assert status == 400 and says in text
    assert pid_alive(zipkin_collector.process.pid)
    fine = json.dumps([{"traceId": "1", "id": "2", "name": "fine", "timestamp": 1_765_000_000_000_000,
                        "localEndpoint": {"serviceName": "after"}}]).encode()
    assert post(zipkin_collector.zipkin, fine)[0] == 202
    assert sql(zipkin_collector.db, "SELECT count(*) AS n FROM spans WHERE service_name = 'after'") == [{"n": 1}]


def test_other_content_types_and_methods_are_refused(zipkin_collector):
    assert post(zipkin_collector.zipkin, b"x", "application/x-thrift")[0] == 415
    request = urllib.request.Request(f"http://{zipkin_collector.zipkin}/api/v2/spans", method="GET")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 405


def test_a_stalled_store_answers_503_retry_after_and_the_retry_is_stored_once(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.stallable_collector", "--db", str(tmp_path / "s.duckdb"),
         "--grpc", "127.0.0.1:0", "--http", "127.0.0.1:0", "--zipkin", "127.0.0.1:0"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    addresses = {}
    for line in process.stdout:
        kind, _, value = line.strip().partition(" ")
        addresses[kind] = value
        if kind == "ready":
            break

    def command(word: str, answer: str) -> None:
        process.stdin.write(word + "\n")
        process.stdin.flush()
        assert process.stdout.readline().strip() == answer

    body = json.dumps([{"traceId": "5", "id": "6", "name": "held", "timestamp": 1_765_000_000_000_000,
                        "localEndpoint": {"serviceName": "stalled"}}]).encode()
    try:
        command("stall", "stalled")
        status, headers, text = post(addresses["zipkin"], body)   # waits out the commit bound
        assert status == 503 and int(headers["Retry-After"]) >= 1 and "retry" in text
        command("resume", "resumed")
        assert post(addresses["zipkin"], body)[0] == 202
    finally:
        process.terminate()
        assert process.wait(30) == 0, process.stderr.read()
    assert sql(tmp_path / "s.duckdb", "SELECT count(*) AS n FROM spans WHERE service_name = 'stalled'") == [{"n": 1}]


def test_istio_sidecar_hops_are_part_of_the_calls_they_carry(zipkin_collector):
    assert post(zipkin_collector.zipkin, ISTIO_SAMPLE.read_bytes())[0] == 202
    services = {r["service_name"] for r in sql(zipkin_collector.db, "SELECT DISTINCT service_name FROM spans")}
    assert services == {"istio-ingressgateway.istio-system", "productpage", "details", "reviews", "ratings"}
    proxies = sql(zipkin_collector.db, "SELECT count(*) AS n FROM spans "
                  "WHERE attributes['tracekit.proxy']::VARCHAR = 'sidecar'")
    assert proxies == [{"n": 7}]      # every span but the gateway's
    edges = json.loads(run("services", "--db", str(zipkin_collector.db), "--json").stdout)
    assert {(e["src_service"], e["dst_service"], e["errors"]) for e in edges} == {
        ("istio-ingressgateway.istio-system", "productpage", 0), ("productpage", "details", 0),
        ("productpage", "reviews", 0), ("reviews", "ratings", 1)}


def test_import_of_the_istio_sample_keeps_proxy_services_when_asked(tmp_path):
    folded, kept = tmp_path / "folded.duckdb", tmp_path / "kept.duckdb"
    run("import", "--db", str(folded), str(ISTIO_SAMPLE))
    run("import", "--db", str(kept), "--keep-proxy-spans", str(ISTIO_SAMPLE))
    query = "SELECT DISTINCT service_name FROM spans ORDER BY 1"
    assert [r["service_name"] for r in sql(folded, query)] == [
        "details", "istio-ingressgateway.istio-system", "productpage", "ratings", "reviews"]
    assert [r["service_name"] for r in sql(kept, query)] == [
        "details.default", "istio-ingressgateway.istio-system", "productpage.default",
        "ratings.default", "reviews.default"]
    # The trace id is Envoy's 64-bit one, padded to 128 bits as the OpenTelemetry Collector does.
    assert sql(folded, "SELECT DISTINCT trace_id FROM spans") == [{"trace_id": "00000000000000004e1f6a3c2f0c9d1b"}]


def test_the_bearer_token_guards_the_zipkin_receiver_too(tmp_path):
    token = tmp_path / "token"
    token.write_text("s3cret-token\n")
    guarded = start_collector(tmp_path / "store.duckdb",
                              extra=("--zipkin", "127.0.0.1:0", "--auth-token-file", str(token)))
    body = json.dumps([{"traceId": "7", "id": "8", "name": "guarded", "timestamp": 1_765_000_000_000_000,
                        "localEndpoint": {"serviceName": "guarded"}}]).encode()
    try:
        status, headers, _ = post(guarded.zipkin, body)
        assert status == 401 and headers["WWW-Authenticate"] == "Bearer"
        assert post(guarded.zipkin, body, headers={"Authorization": "Bearer s3cret-token"})[0] == 202
    finally:
        assert guarded.stop() == 0, guarded.process.stderr.read()
    assert sql(tmp_path / "store.duckdb", "SELECT count(*) AS n FROM spans") == [{"n": 1}]
