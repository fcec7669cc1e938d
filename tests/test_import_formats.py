"""`tracekit import` of Jaeger JSON and JSON-lines logs, the format told by content or --format,
and the exit code that says a file could not be imported."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from tests.conftest import sql, tracekit as run

SAMPLES = Path(__file__).parent / "foreign_formats"
# A Jaeger UI download ("Trace JSON", the /api/traces/{id} answer) of a HotROD trace, Jaeger's
# own demo: frontend → customer → mysql, frontend → driver (gRPC) → redis with one timeout,
# frontend → route. Its shape mirrors a real download of jaeger-all-in-one traces (Hubert-bor/
# my-vue-app src/jaeger/mock/mockTraces.ts): typed tags, `span.kind` and `otel.*` tags from
# the OTLP translation, a `processes` map with process tags, logs as {timestamp, fields}.
JAEGER_SAMPLE = SAMPLES / "jaeger_hotrod_download.json"
TRACE = "3d8a2f7b61c04e9a8b5f1c2d3e4f5a6b"


def test_jaeger_ui_download_keeps_parents_links_processes_logs_and_status(tmp_path):
    db = tmp_path / "store.duckdb"
    summary = json.loads(run("import", "--db", str(db), "--json", str(JAEGER_SAMPLE)).stdout)
    assert summary["spans"] == 10 and summary["failed"] == {}
    rows = {r["span_id"]: r for r in sql(db, (
        "SELECT span_id, parent_span_id, service_name, kind, status_code, status_message, "
        "resource_attributes['host.name']::VARCHAR AS host, attributes['http.status_code']::BIGINT AS http, "
        "list_transform(events, lambda e: e.name) AS events, "
        "list_transform(links, lambda l: l.trace_id || '/' || l.span_id) AS links FROM spans"))}
    dispatch = rows["a1b2c3d4e5f60718"]
    assert dispatch["parent_span_id"] is None and dispatch["kind"] == "SERVER" and dispatch["http"] == 200
    assert dispatch["host"] == "hotrod-7f9c" and dispatch["service_name"] == "frontend"
    assert dispatch["events"] == ["HTTP request received", "Getting customer", "Dispatch successful"]
    assert rows["c3d4e5f60718293a"]["parent_span_id"] == "b2c3d4e5f6071829"    # CHILD_OF
    assert rows["18293a4b5c6d7e8f"]["status_code"] == "ERROR"                  # error=true
    driver = rows["f60718293a4b5c6d"]                                           # otel.status_code
    assert (driver["status_code"], driver["status_message"]) == ("ERROR", "redis timeout on 1 of 10 drivers")
    history = rows["3a4b5c6d7e8f9001"]                                          # FOLLOWS_FROM only
    assert history["parent_span_id"] is None and history["kind"] == "INTERNAL"
    assert history["links"] == [f"{TRACE}/a1b2c3d4e5f60718",
                                "7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a29/9f8e7d6c5b4a3928"]
    edges = json.loads(run("services", "--db", str(db), "--json").stdout)
    assert {("frontend", "customer"), ("customer", "mysql"), ("frontend", "driver"),
            ("driver", "redis-manual"), ("frontend", "route")} <= {
        (e["src_service"], e["dst_service"]) for e in edges}


def test_jaeger_api_answer_with_several_traces_and_a_bare_trace_import_alike(tmp_path):
    download = json.loads(JAEGER_SAMPLE.read_text())
    trace = download["data"][0]
    other = json.loads(json.dumps(trace).replace(TRACE, "0" * 31 + "1"))
    for span in other["spans"]:     # the API's answer may embed each span's process
        span["process"] = other["processes"][span.pop("processID")]
    answer = tmp_path / "api-traces.json"
    answer.write_text(json.dumps({"data": [trace, other], "total": 2, "limit": 0, "offset": 0, "errors": None}))
    bare = tmp_path / "bare.json.gz"
    bare.write_bytes(gzip.compress(json.dumps(trace).encode()))
    db = tmp_path / "store.duckdb"
    summary = json.loads(run("import", "--db", str(db), "--json", str(answer), str(bare)).stdout)
    assert summary["spans"] == 20 and summary["duplicate_spans"] == 10
    assert sql(db, "SELECT count(DISTINCT trace_id) AS n, count(DISTINCT service_name) AS s FROM spans") == [
        {"n": 2, "s": 6}]


def test_json_lines_logs_in_elk_and_fluent_bit_spellings_join_their_spans(tmp_path):
    db = tmp_path / "store.duckdb"
    run("import", "--db", str(db), str(JAEGER_SAMPLE))
    lines = [
        # Elastic Common Schema, as Filebeat or an ECS logger writes it: nested trace/span ids.
        {"@timestamp": "2025-12-07T09:16:40.315100Z", "log": {"level": "ERROR", "logger": "redis"},
         "message": "redis timeout", "service": {"name": "redis-manual"},
         "trace": {"id": TRACE}, "span": {"id": "18293a4b5c6d7e8f"}, "host": {"name": "hotrod-7f9c"}},
        # Fluent Bit's JSON output of a container's JSON log: `date` in seconds, `log`, camelCase ids.
        {"date": 1765099000.0012, "log": "Loading customer", "level": "info", "traceId": TRACE,
         "spanId": "c3d4e5f60718293a", "service": "customer", "kubernetes": {"pod_name": "customer-7d9f"}},
        # A structured logger's dotted keys and a timestamp with nanoseconds and an offset.
        {"time": "2025-12-07T10:16:40.000296789+01:00", "severity": "WARNING", "msg": "slow query",
         "trace.id": TRACE, "span.id": "d4e5f60718293a4b", "db.rows": 1},
        # No trace context: stored, joined to nothing.
        {"timestamp": 1765099000500, "level": 30, "msg": "pino says hi"},
    ]
    path = tmp_path / "app.log.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n\n")
    summary = json.loads(run("import", "--db", str(db), "--json", str(path)).stdout)
    assert summary["logs"] == 4 and summary["skipped"] == {} and summary["failed"] == {}

    joined = sql(db, "SELECT s.name AS span, l.severity_number AS severity, l.severity_text AS level, "
                     "l.body::VARCHAR AS body, l.service_name AS service, epoch_ns(l.timestamp) AS ns "
                     "FROM logs AS l LEFT JOIN spans AS s USING (trace_id, span_id) ORDER BY l.timestamp")
    assert [(r["span"], r["severity"], r["body"]) for r in joined] == [
        ("SQL SELECT", 13, "slow query"),
        ("HTTP GET /customer", 9, "Loading customer"),
        ("GetDriver", 17, "redis timeout"),
        (None, 9, "pino says hi"),
    ]
    assert joined[0]["ns"] == 1765099000_000296789      # 10:16:40+01:00 is 09:16:40 UTC
    assert joined[2]["service"] == "redis-manual" and joined[2]["level"] == "ERROR"
    attributes = sql(db, "SELECT attributes['log.logger']::VARCHAR AS logger, "
                         "attributes['host.name']::VARCHAR AS host FROM logs WHERE severity_number = 17")
    assert attributes == [{"logger": "redis", "host": "hotrod-7f9c"}]


def test_a_file_that_cannot_be_imported_exits_1_naming_it_and_why(tmp_path):
    good = tmp_path / "good.json"
    good.write_text(JAEGER_SAMPLE.read_text())
    unknown = tmp_path / "unknown.json"
    unknown.write_text(json.dumps({"hello": "world"}))
    broken = tmp_path / "broken.json"
    broken.write_text('[{"traceId": "1", "id": ')
    result = run("import", "--db", str(tmp_path / "s.duckdb"), str(good), str(unknown), str(broken), check=False)
    err = result.stderr.decode()
    assert result.returncode == 1
    assert f"could not import {unknown}: not a format tracekit imports" in err
    assert f"could not import {broken}: malformed JSON" in err
    assert "good.json" not in err
    assert sql(tmp_path / "s.duckdb", "SELECT count(*) AS n FROM spans") == [{"n": 10}]


def test_format_is_told_by_content_not_extension_and_can_be_forced(tmp_path):
    zipkin = [{"traceId": "a1", "id": "b2", "name": "op", "timestamp": 1_765_000_000_000_000,
               "duration": 5, "localEndpoint": {"serviceName": "zipkin-svc"}}]
    misnamed = tmp_path / "spans.log"            # Zipkin JSON under a log's name
    misnamed.write_text(json.dumps(zipkin))
    db = tmp_path / "s.duckdb"
    assert json.loads(run("import", "--db", str(db), "--json", str(misnamed)).stdout)["spans"] == 1

    # A JSON-lines file whose first record has no message is not recognised as logs, until said.
    records = tmp_path / "records.jsonl"
    records.write_text(json.dumps({"ts": "2025-12-07T09:00:00Z", "event_type": "login"}) + "\n")
    refused = run("import", "--db", str(db), str(records), check=False)
    assert refused.returncode == 1 and "--format" in refused.stderr.decode()
    forced = json.loads(run("import", "--db", str(db), "--json", "--format", "logs", str(records)).stdout)
    assert forced["logs"] == 1

    # Forcing the wrong format says why each document does not fit.
    wrong = run("import", "--db", str(db), "--format", "jaeger", str(misnamed), check=False)
    assert wrong.returncode == 1 and "not Jaeger JSON" in wrong.stderr.decode()


def test_a_jaeger_file_goes_through_a_running_collector(collector, tmp_path):
    result = run("import", "--db", str(collector.db), "--json", str(JAEGER_SAMPLE))
    assert json.loads(result.stdout)["spans"] == 10
    assert sql(collector.db, f"SELECT count(*) AS n FROM spans WHERE trace_id = '{TRACE}'") == [{"n": 10}]
