"""The analyzer's SQL tables on stores with little in them."""

from __future__ import annotations

import tracekit
from tests.otlp_payloads import trace_request
from tracekit.analysis.critical_paths import critical_paths
from tracekit.analysis.run import analyze
from tracekit.analysis.tables import build
from tracekit.otlp.decode import decode_traces
from tracekit.writable import WritableStore


def test_a_store_of_single_span_traces_gives_tables_with_no_edges(tmp_path):
    store = WritableStore.open(tmp_path / "store.duckdb")
    for _ in range(3):
        store.append(decode_traces(trace_request(1, service="alone")), "test")
    store.close()
    with tracekit.open(tmp_path / "store.duckdb") as reader:
        analysis = analyze(reader)
    tables = build(analysis, critical_paths(analysis))
    assert len(tables["flows"]) == 3 and tables["flow_edges"].empty
    assert len(tables["critical_path"]) == 3          # each span is its flow's whole path
    assert set(tables["critical_path"]["trace_id"]) == set(tables["flows"]["flow_id"])


def test_every_publish_counts_once_into_the_broker(rabbitmq_demo_run):
    with tracekit.open(rabbitmq_demo_run["db"]) as reader:
        analysis = analyze(reader)
        [published] = reader.arrow(
            "SELECT count(*) AS n FROM spans WHERE kind = 'PRODUCER' "
            "AND attributes['messaging.message.id'] IS NOT NULL").to_pylist()
    edges = build(analysis, critical_paths(analysis))["service_edges"]
    into_brokers = edges[edges["dst_service"].str.startswith("broker:")]["calls"].sum()
    # Every stored publish whose message someone consumed is one hop into a broker.
    consumed = analysis.edges[analysis.edges["kind"] != "call"]["src"].nunique()
    assert into_brokers == consumed <= published["n"]
