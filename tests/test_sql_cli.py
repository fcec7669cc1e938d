"""`tracekit sql`: readable tables, script formats, read-only, clear errors — on a file and
through a running collector."""

from __future__ import annotations

import csv
import io
import json

import pyarrow.parquet as pq
import pytest

import tracekit
from tests.conftest import sql, tracekit as run
from tests.otlp_payloads import trace_request
from tracekit.errors import QueryError, ReadOnlyViolation
from tracekit.otlp.decode import decode_traces


@pytest.fixture
def store_path(tmp_path):
    path = tmp_path / "store.duckdb"
    writable = tracekit.open(path, write=True)
    writable.append(decode_traces(trace_request(25, service="catalog")), "test")
    writable.close()
    return path


def test_table_format_shows_columns_and_values(store_path):
    out = run("sql", "--db", str(store_path), "SELECT service_name, count(*) AS spans FROM spans GROUP BY 1").stdout.decode()
    assert "service_name" in out and "catalog" in out and "25" in out


def test_csv_json_and_parquet_formats_for_scripts(store_path, tmp_path):
    query = "SELECT span_id, attributes, duration_ns FROM spans ORDER BY attributes['i']::INT"
    rows = list(csv.DictReader(io.StringIO(run("sql", "--db", str(store_path), "--format", "csv", query).stdout.decode())))
    assert len(rows) == 25 and json.loads(rows[3]["attributes"]) == {"i": 3}
    as_json = json.loads(run("sql", "--db", str(store_path), "--format", "json", query).stdout)
    assert as_json[3]["attributes"] == {"i": 3} and as_json[3]["duration_ns"] == 500
    parquet = run("sql", "--db", str(store_path), "--format", "parquet", query).stdout
    table = pq.read_table(io.BytesIO(parquet))
    assert table.num_rows == 25 and table.column("duration_ns")[0].as_py() == 500


def test_bad_sql_exits_1_with_duckdbs_message_and_position(store_path):
    result = run("sql", "--db", str(store_path), "SELEC count(*) FROM spans", check=False)
    assert result.returncode == 1
    err = result.stderr.decode()
    assert "syntax error" in err and "LINE 1" in err and "^" in err


REFUSED = [
    "DELETE FROM spans",
    "DROP TABLE spans",
    "INSERT INTO ingest_batches VALUES (99, now(), 'x', 0, 0, 0)",
    "UPDATE spans SET name = 'x'",
    "SET enable_external_access = true",
    "ATTACH '/tmp/other.duckdb'",
    "COPY spans TO '/tmp/spans.csv'",
    "INSTALL httpfs",
    "SELECT * FROM read_csv('/etc/passwd')",
    "CREATE TABLE t AS SELECT 1",
    "EXPLAIN ANALYZE DELETE FROM span_rows",
    "EXPLAIN ANALYZE DROP VIEW otel_logs",
    "EXPLAIN ANALYZE CREATE TABLE t AS SELECT 1",
]


@pytest.mark.parametrize("query", REFUSED)
def test_writes_settings_and_file_access_are_refused_and_change_nothing(store_path, query):
    result = run("sql", "--db", str(store_path), query, check=False)
    assert result.returncode == 1
    assert result.stderr.decode().startswith("tracekit: ")
    assert sql(store_path, "SELECT count(*) AS n FROM spans")[0]["n"] == 25


def test_python_api_gives_dataframes_and_relations(store_path):
    with tracekit.open(store_path) as store:
        frame = store.df("SELECT service_name, count(*) AS n FROM spans GROUP BY 1")
        assert frame.to_dict("records") == [{"service_name": "catalog", "n": 25}]
        relation = store.sql("SELECT * FROM spans")
        assert relation.filter("attributes['i'] >= 20").count("*").fetchall() == [(5,)]
        assert store.sql("SELECT count(*) FROM spans WHERE attributes['i'] < $n", {"n": 10}).fetchall() == [(10,)]
        with pytest.raises(ReadOnlyViolation):
            store.df("DELETE FROM spans")


def test_reads_go_through_a_running_collector_with_the_same_rules(collector):
    import urllib.request

    body = trace_request(7, service="live").SerializeToString()
    with urllib.request.urlopen(urllib.request.Request(
            f"http://{collector.http}/v1/traces", data=body,
            headers={"Content-Type": "application/x-protobuf"}), timeout=30) as response:
        assert response.status == 200
    with tracekit.open(collector.db) as store:
        assert type(store).__name__ == "RemoteStore"
        assert store.df("SELECT count(*) AS n FROM spans WHERE service_name = 'live'")["n"][0] == 7
        assert store.arrow("SELECT * FROM spans", max_rows=3).num_rows == 3
        relation = store.sql("SELECT attributes FROM spans WHERE service_name = ?", ["live"])
        assert relation.filter("attributes['i'] >= 5").count("*").fetchall() == [(2,)]
        for query in REFUSED:
            with pytest.raises(QueryError):
                store.df(query)
        with pytest.raises(QueryError, match="syntax error"):
            store.df("SELEC 1")
    result = run("sql", "--db", str(collector.db), "DROP TABLE spans", check=False)
    assert result.returncode == 1 and "read-only" in result.stderr.decode()
    assert sql(collector.db, "SELECT count(*) AS n FROM spans")[0]["n"] == 7
    assert sql(collector.db, "SELECT count(*) AS n FROM otel_logs")[0]["n"] == 0  # still there
    assert {"t"}.isdisjoint(row["name"] for row in sql(collector.db, "SHOW TABLES"))


def test_runaway_query_is_stopped_at_the_timeout(store_path):
    result = run("sql", "--db", str(store_path), "--timeout", "1",
                 "SELECT count(*) FROM range(1000000000000) a", check=False)
    assert result.returncode == 1
    assert "timeout" in result.stderr.decode()


def test_json_format_keeps_every_column_whatever_its_name(store_path):
    out = json.loads(run("sql", "--db", str(store_path), "--format", "json",
                         'SELECT 1 AS a, 2 AS r, 3 AS "result", 4 AS "we""ird"').stdout)
    assert out == [{"a": 1, "r": 2, "result": 3, 'we"ird': 4}]


def test_terminal_table_fetches_only_the_rows_it_shows(store_path):
    result = run("sql", "--db", str(store_path), "--max-rows", "5", "SELECT span_id FROM spans")
    shown = [line for line in result.stdout.decode().splitlines() if line.startswith("│") and "span_id" not in line and "varchar" not in line]
    assert len(shown) == 5
    assert "more rows not shown" in result.stderr.decode()
    everything = json.loads(run("sql", "--db", str(store_path), "--format", "json", "--max-rows", "5",
                                "SELECT span_id FROM spans").stdout)
    assert len(everything) == 25  # scripts always get the whole result


def test_explain_prints_the_plan_as_drawn(store_path):
    out = run("sql", "--db", str(store_path), "EXPLAIN SELECT count(*) FROM spans").stdout.decode()
    assert "\\n" not in out and "SEQ_SCAN" in out.upper().replace(" ", "_")


def test_a_store_opened_twice_in_one_process_reads_with_the_same_rules(store_path):
    import tracekit

    with tracekit.open(store_path) as first, tracekit.open(store_path) as second:
        assert first.df("SELECT count(*) AS n FROM spans")["n"][0] == second.df("SELECT count(*) AS n FROM spans")["n"][0]
        with pytest.raises(tracekit.errors.QueryError):
            second.sql("SELECT * FROM read_csv('/etc/passwd')")
