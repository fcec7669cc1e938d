"""`tracekit import`: OTLP/JSON files as the Collector's file exporter writes them, plain or gzip."""

from __future__ import annotations

import gzip
import json

from google.protobuf import json_format

from tests.conftest import sql, tracekit as run
from tests.otlp_payloads import trace_request


def _otlp_json(request) -> dict:
    """The OTLP/JSON form of a request: protobuf JSON mapping with hex ids."""
    document = json_format.MessageToDict(request)
    import base64

    for resource in document["resourceSpans"]:
        for scope in resource["scopeSpans"]:
            for span in scope["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex().upper()
    return document


LOGS = {"resourceLogs": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "filer"}}]},
                          "scopeLogs": [{"logRecords": [{"timeUnixNano": "1544712660300000000",
                                                         "body": {"stringValue": "hello"}}]}]}]}
METRICS = {"resourceMetrics": [{"scopeMetrics": []}]}


def test_jsonl_plain_and_gzip_and_pretty_documents_import_with_a_summary(tmp_path):
    lines = [json.dumps(_otlp_json(trace_request(10, service="filer"))) for _ in range(3)]
    lines += [json.dumps(LOGS), json.dumps(METRICS), "{not json", ""]
    plain = tmp_path / "traces.jsonl"
    plain.write_text("\n".join(lines))
    zipped = tmp_path / "more.json.gz"
    zipped.write_bytes(gzip.compress(json.dumps(_otlp_json(trace_request(10, service="filer"))).encode()))
    pretty = tmp_path / "one.json"
    pretty.write_text(json.dumps(_otlp_json(trace_request(4, service="pretty")), indent=2))
    db = tmp_path / "store.duckdb"

    summary = json.loads(run("import", "--db", str(db), "--json", str(plain), str(zipped), str(pretty)).stdout)
    assert summary["files"] == 3
    assert summary["spans"] == 44 and summary["logs"] == 1
    assert summary["skipped"]["metrics documents (tracekit stores traces and logs)"] == 1
    assert any("traces.jsonl line 6" in reason for reason in summary["skipped"])
    assert sql(db, "SELECT count(*) AS n FROM spans WHERE service_name = 'filer'")[0]["n"] == 40
    assert sql(db, "SELECT body::VARCHAR AS body FROM logs") == [{"body": "hello"}]

    again = json.loads(run("import", "--db", str(db), "--json", str(plain)).stdout)
    assert again["spans"] == 0 and again["duplicate_spans"] == 30
    assert sql(db, "SELECT count(*) AS n FROM spans")[0]["n"] == 44


def test_import_reports_rejected_spans_with_reasons(tmp_path):
    request = trace_request(3, service="bad", bad={0: {"span_id": b"\x01"}})
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(_otlp_json(request)))
    result = run("import", "--db", str(tmp_path / "s.duckdb"), str(path))
    out = result.stdout.decode()
    assert "2 spans" in out and "rejected 1 with an invalid span_id" in out


def test_import_of_a_missing_file_is_a_clear_error(tmp_path):
    result = run("import", "--db", str(tmp_path / "s.duckdb"), str(tmp_path / "nope.json"), check=False)
    assert result.returncode == 1 and "nope.json: no such file" in result.stderr.decode()


def test_stats_reports_counts_time_range_and_size(tmp_path):
    path = tmp_path / "t.json"
    path.write_text(json.dumps(_otlp_json(trace_request(6, service="a"))) + "\n" + json.dumps(LOGS))
    db = tmp_path / "store.duckdb"
    run("import", "--db", str(db), str(path))
    stats = json.loads(run("stats", "--db", str(db), "--json").stdout)
    assert stats["spans"] == 6 and stats["logs"] == 1 and stats["traces"] == 1
    from tracekit import queries

    latest = max(version for version, _, _ in queries.migrations())
    assert stats["services"] == 2 and stats["schema_version"] == latest
    assert stats["first_span"].startswith("2023-11-14") and stats["size_bytes"] > 0
    human = run("stats", "--db", str(db)).stdout.decode()
    assert "spans" in human and "MiB" in human


def test_reading_a_missing_store_says_how_to_make_one(tmp_path):
    result = run("sql", "--db", str(tmp_path / "none.duckdb"), "SELECT 1", check=False)
    assert result.returncode == 1
    assert "tracekit collect" in result.stderr.decode()


def test_import_while_a_collector_holds_the_store_goes_through_the_collector(collector, tmp_path):
    path = tmp_path / "t.jsonl"
    request = trace_request(8, service="forwarded", bad={0: {"trace_id": bytes(16)}})
    path.write_text(json.dumps(_otlp_json(request)) + "\n" + json.dumps(LOGS) + "\n")
    result = run("import", "--db", str(collector.db), "--json", str(path))
    summary = json.loads(result.stdout)
    assert "held by a running collector" in result.stderr.decode()
    assert summary["spans"] == 7 and summary["logs"] == 1
    assert sum(summary["rejected"].values()) == 1
    assert sql(collector.db, "SELECT count(*) AS n FROM spans WHERE service_name = 'forwarded'")[0]["n"] == 7


def test_forwarded_import_skips_what_does_not_decode_and_says_it_was_sent(collector, tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"resourceSpans": [{"scopeSpans": "x"}]}) + "\n"
                    + json.dumps(_otlp_json(trace_request(2, service="fine"))) + "\n")
    result = run("import", "--db", str(collector.db), str(path))
    out = result.stdout.decode()
    assert "sent 1 file," in out and "2 spans" in out and "skipped 1" in out
