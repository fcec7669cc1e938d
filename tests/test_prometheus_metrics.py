"""Prometheus metrics out: `tracekit metrics` on a store and `GET /metrics` on a collector, in
the text format and OpenMetrics (exemplars naming stored traces), parsed by the Prometheus
client's parsers, and scraped by a real Prometheus server (Debian's `prometheus` package)
while the demo shop sends the collector real OTLP traffic. Without Prometheus the scrape
test skips, except in CI (env CI set), where it fails."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pyarrow as pa
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

from tests.conftest import TRACEKIT, sql, start_collector, tracekit
from tracekit.metrics.exposition import render, wants_openmetrics
from tracekit.metrics.histograms import Histograms
from tracekit.metrics.live import SpanMetrics
from tracekit.metrics.naming import families

SHOP = Path(__file__).parent / "tui_data" / "shop.jsonl"
PROMETHEUS_ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
                     "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")


def wait_for(condition, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


@pytest.fixture(scope="module")
def shop_store(tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("metrics") / "shop.duckdb"
    tracekit("import", "--db", str(db), str(SHOP))
    return db


def _families(text: str, parse) -> dict:
    return {family.name: family for family in parse(text)}


def test_store_metrics_parse_as_prometheus_text_and_count_every_span(shop_store):
    page = tracekit("metrics", "--db", str(shop_store)).stdout.decode()
    families = _families(page, parse_text)
    assert {"traces_spanmetrics_calls", "traces_spanmetrics_latency", "traces_service_graph_request",
            "traces_service_graph_request_failed", "traces_service_graph_request_server_seconds",
            "tracekit_flows", "tracekit_flow_failures", "tracekit_flow_duration_seconds",
            "tracekit_broker_wait_seconds"} <= set(families)
    assert families["traces_spanmetrics_calls"].type == "counter"
    assert families["traces_spanmetrics_latency"].type == "histogram"

    [stored] = sql(shop_store, "SELECT count(*) AS n, count(*) FILTER (status_code = 'ERROR') AS errors, "
                   "count(DISTINCT service_name) AS services FROM spans")
    calls = families["traces_spanmetrics_calls"].samples
    assert sum(s.value for s in calls) == stored["n"]
    assert sum(s.value for s in calls if s.labels["status_code"] == "STATUS_CODE_ERROR") == stored["errors"]
    assert len({s.labels["service"] for s in calls}) == stored["services"]
    assert {s.labels["span_kind"] for s in calls} <= {
        "SPAN_KIND_SERVER", "SPAN_KIND_CLIENT", "SPAN_KIND_PRODUCER", "SPAN_KIND_CONSUMER",
        "SPAN_KIND_INTERNAL"}
    # Histogram buckets are cumulative and end in +Inf = _count.
    latency = families["traces_spanmetrics_latency"].samples
    infinite = sum(s.value for s in latency if s.name.endswith("_bucket") and s.labels["le"] == "+Inf")
    assert infinite == stored["n"]

    [flows] = sql(shop_store, "SELECT count(*) AS n, count(*) FILTER (failed) AS failed FROM flows")
    assert sum(s.value for s in families["tracekit_flows"].samples) == flows["n"]
    assert sum(s.value for s in families["tracekit_flow_failures"].samples) == flows["failed"]
    waits = sql(shop_store, "SELECT DISTINCT destination, dst_service FROM flow_edges "
                "WHERE kind <> 'call' AND wait_ms IS NOT NULL")
    assert {(s.labels["destination"], s.labels["consumer"])
            for s in families["tracekit_broker_wait_seconds"].samples
            if s.name.endswith("_count")} == {(w["destination"], w["dst_service"]) for w in waits}


def test_openmetrics_exemplars_name_traces_the_store_holds(shop_store):
    page = tracekit("metrics", "--db", str(shop_store), "--openmetrics").stdout.decode()
    assert page.endswith("# EOF\n")
    families = _families(page, parse_openmetrics)
    exemplars = [s.exemplar for s in families["traces_spanmetrics_latency"].samples if s.exemplar]
    assert exemplars, "OpenMetrics buckets carry exemplars"
    for exemplar in exemplars[:5]:
        trace_id = exemplar.labels["trace_id"]
        [row] = sql(shop_store, f"SELECT max(duration_ns) / 1e9 AS slowest FROM spans "
                    f"WHERE trace_id = '{trace_id}'")
        assert row["slowest"] is not None, f"exemplar trace {trace_id} is not in the store"
        assert exemplar.value <= row["slowest"] + 1e-9


def test_otel_naming_is_the_span_metrics_connectors(shop_store):
    page = tracekit("metrics", "--db", str(shop_store), "--naming", "otel").stdout.decode()
    families = _families(page, parse_text)
    assert "traces_span_metrics_calls" in families and "traces_spanmetrics_calls" not in families
    assert "traces_span_metrics_duration_seconds" in families
    assert "service_name" in families["traces_span_metrics_calls"].samples[0].labels


def test_since_counts_the_spans_started_in_the_last_stretch_of_data(shop_store):
    [stored] = sql(shop_store, "SELECT count(*) AS n, (SELECT count(*) FROM spans) AS total FROM spans "
                   "WHERE start_time >= (SELECT max(end_time) FROM spans) - INTERVAL 2 SECONDS")
    assert 0 < stored["n"] < stored["total"]
    page = tracekit("metrics", "--db", str(shop_store), "--since", "2s").stdout.decode()
    calls = _families(page, parse_text)["traces_spanmetrics_calls"].samples
    assert sum(s.value for s in calls) == stored["n"]


def test_odd_span_names_survive_both_formats_and_too_many_fold_into_overflow():
    names = ['GET "quoted"', "back\\slash", "two\nlines", "ünïcode ✓"]
    histograms = Histograms(max_series=3)
    spans = SpanMetrics(histograms)
    count = len(names)
    spans.add(pa.table({
        "trace_id": [f"{i + 1:032x}" for i in range(count)], "name": names,
        "kind": ["SERVER"] * count, "start_time": pa.array(range(count), pa.timestamp("ns")),
        "duration_ns": [5_000_000] * count, "status_code": ["OK"] * count,
        "service_name": ["svc"] * count}))
    assert spans.fold() == count
    spans.close()
    for openmetrics, parse in ((False, parse_text), (True, parse_openmetrics)):
        page = render(families(histograms.snapshot(), histograms.bounds), openmetrics)
        calls = _families(page, parse)["traces_spanmetrics_calls"].samples
        assert sum(s.value for s in calls) == count
        named = {s.labels.get("span_name") for s in calls}
        assert len(named & set(names)) == 3
        assert [s.labels for s in calls if "otel_metric_overflow" in s.labels] == [
            {"otel_metric_overflow": "true"}]


def test_prometheus_asks_for_openmetrics_and_curl_gets_text():
    assert wants_openmetrics(PROMETHEUS_ACCEPT)
    assert not wants_openmetrics(None)
    assert not wants_openmetrics("*/*")
    assert not wants_openmetrics("text/plain;version=0.0.4")
    assert not wants_openmetrics("application/openmetrics-text;q=0.2,text/plain;q=0.9")


def _get(url: str, headers: dict | None = None) -> tuple[int, dict, str]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


def test_collector_metrics_page_follows_accept_and_its_bearer_token(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("s3cret\n")
    running = start_collector(tmp_path / "store.duckdb", extra=("--auth-token-file", str(token_file)))
    try:
        url = f"http://{running.http}/metrics"
        status, headers, _ = _get(url)
        assert status == 401 and headers["WWW-Authenticate"] == "Bearer"
        auth = {"Authorization": "Bearer s3cret"}
        status, headers, body = _get(url, auth)
        assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
        families = _families(body, parse_text)
        assert families["tracekit_collector_received_spans"].type == "counter"
        assert families["tracekit_collector_queue_items"].type == "gauge"
        assert families["tracekit_analysis_lag_seconds"].type == "gauge"
        status, headers, body = _get(url, {**auth, "Accept": PROMETHEUS_ACCEPT})
        assert headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
        assert "tracekit_collector_committed_spans" in _families(body, parse_openmetrics)
    finally:
        assert running.stop() == 0, running.process.stderr.read()


# -- A real Prometheus server scraping a collector fed by the demo shop -----------------------

def _prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found is None:
        message = "Prometheus is not installed (Debian: apt-get install prometheus)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI needs it (.ci/run installs it)")
        pytest.skip(message)
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Prometheus:
    def __init__(self, binary: str, folder: Path, target: str):
        self.port = _free_port()
        config = folder / "prometheus.yml"
        config.write_text(f"""
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: tracekit
    static_configs:
      - targets: ["{target}"]
""")
        self.log = (folder / "prometheus.log").open("w")
        self.process = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={folder / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--enable-feature=exemplar-storage",
             "--storage.tsdb.retention.time=1h"],
            stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(self._ready, 60, "Prometheus to be ready")

    def _ready(self) -> bool:
        assert self.process.poll() is None, "Prometheus exited; see its log"
        try:
            return _get(f"http://127.0.0.1:{self.port}/-/ready")[0] == 200
        except OSError:
            return False

    def api(self, path: str, **params) -> list | dict:
        query = urllib.parse.urlencode(params)
        status, _, body = _get(f"http://127.0.0.1:{self.port}/api/v1/{path}?{query}")
        answer = json.loads(body)
        assert status == 200 and answer["status"] == "success", body
        return answer["data"]

    def query(self, promql: str) -> list[dict]:
        return self.api("query", query=promql)["result"]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)
        self.log.close()


def test_prometheus_scrapes_the_collector_while_the_demo_sends_traces(tmp_path):
    binary = _prometheus_binary()
    running = start_collector(tmp_path / "store.duckdb", extra=("--flow-metrics-delay", "1s"))
    prometheus = Prometheus(binary, tmp_path, running.http)
    try:
        up = wait_for(lambda: prometheus.query('up{job="tracekit"} == 1'), 30,
                      "Prometheus to scrape the collector")
        assert up
        demo = subprocess.run([*TRACEKIT, "demo", "--headless", "--otlp-endpoint",
                               f"http://{running.grpc}", "--duration", "12s", "--rate", "5"],
                              capture_output=True, timeout=180)
        assert demo.returncode == 0, demo.stderr.decode()
        services = {row["service"] for row in sql(running.db, "SELECT DISTINCT service_name AS service FROM spans")}
        assert {"frontend", "orders", "payment"} <= services

        def rates_by_service():
            rows = prometheus.query("sum by (service) (rate(traces_spanmetrics_calls_total[1m]))")
            seen = {row["metric"]["service"] for row in rows if float(row["value"][1]) > 0}
            return seen if seen == services else None

        wait_for(rates_by_service, 60, f"span call rates of every service ({sorted(services)})")

        errors = prometheus.query('sum by (service) (traces_spanmetrics_calls_total'
                                  '{status_code="STATUS_CODE_ERROR"})')
        [stored_errors] = sql(running.db, "SELECT count(*) AS n FROM spans WHERE status_code = 'ERROR'")
        assert sum(float(row["value"][1]) for row in errors) == stored_errors["n"]

        p95 = prometheus.query("histogram_quantile(0.95, sum by (le, service) "
                               "(rate(traces_spanmetrics_latency_bucket[1m])))")
        assert {row["metric"]["service"] for row in p95} == services

        # Flows, broker waits and the service graph once the analysis has the flows.
        flow_types = wait_for(lambda: prometheus.query("sum by (flow_type) (tracekit_flows_total) > 0"),
                              90, "flows per type")
        stored_types = {row["name"] for row in sql(running.db, "SELECT DISTINCT name FROM flow_types")}
        assert {row["metric"]["flow_type"] for row in flow_types} <= stored_types
        waits = wait_for(lambda: prometheus.query(
            "sum by (destination, consumer) (tracekit_broker_wait_seconds_count) > 0"), 60, "broker waits")
        assert {"order.placed"} <= {row["metric"]["destination"] for row in waits}
        graph = wait_for(lambda: prometheus.query(
            "sum by (client, server) (traces_service_graph_request_total) > 0"), 60, "service graph")
        assert ("frontend", "orders") in {(r["metric"]["client"], r["metric"]["server"]) for r in graph}

        # `tracekit metrics` reads the same store through the running collector.
        page = tracekit("metrics", "--db", str(running.db)).stdout.decode()
        [stored] = sql(running.db, "SELECT count(*) AS n FROM spans")
        assert sum(s.value for s in _families(page, parse_text)["traces_spanmetrics_calls"].samples) == stored["n"]

        [committed] = prometheus.query("sum(tracekit_collector_committed_spans_total)")
        [stored] = sql(running.db, "SELECT count(*) AS n FROM spans")
        assert float(committed["value"][1]) == stored["n"]
        assert prometheus.query("tracekit_analysis_lag_seconds >= 0")

        # Exemplars: Prometheus kept trace ids from the OpenMetrics page; each is a stored trace.
        now = time.time()
        exemplars = prometheus.api("query_exemplars", query="traces_spanmetrics_latency_bucket",
                                   start=now - 600, end=now + 60)
        trace_ids = {e["labels"]["trace_id"] for series in exemplars for e in series["exemplars"]}
        assert trace_ids, "Prometheus stored no exemplars"
        listed = "', '".join(sorted(trace_ids)[:20])
        [found] = sql(running.db, f"SELECT count(DISTINCT trace_id) AS n FROM spans "
                      f"WHERE trace_id IN ('{listed}')")
        assert found["n"] == min(20, len(trace_ids))
    finally:
        prometheus.stop()
        assert running.stop() == 0, running.process.stderr.read()
