"""Retention: data past its age or beyond the store's size cap leaves in the background, and
ingest goes on meanwhile."""

from __future__ import annotations

import threading
import time
import urllib.request

import duckdb

from tests.conftest import sql, start_collector
from tests.otlp_payloads import trace_request


def export(address: str, service: str, spans: int = 500) -> tuple[list[str], float]:
    request = trace_request(spans, service=service)
    started = time.monotonic()
    with urllib.request.urlopen(urllib.request.Request(
            f"http://{address}/v1/traces", data=request.SerializeToString(),
            headers={"Content-Type": "application/x-protobuf"}), timeout=30) as response:
        assert response.status == 200
    return [s.span_id.hex() for s in request.resource_spans[0].scope_spans[0].spans], time.monotonic() - started


class Ingest:
    """Exports `service` spans in a thread until stopped, keeping ids and latencies."""

    def __init__(self, address: str, service: str) -> None:
        self.address, self.service = address, service
        self.acknowledged: list[str] = []
        self.latencies: list[float] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        while not self.stop.is_set():
            ids, took = export(self.address, self.service)
            self.acknowledged += ids
            self.latencies.append(took)

    def __enter__(self) -> "Ingest":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(60)


def wait_for(condition, timeout_s: float = 60, every_s: float = 0.2):
    deadline = time.monotonic() + timeout_s
    while not (result := condition()):
        assert time.monotonic() < deadline, "timed out"
        threading.Event().wait(every_s)
    return result


def count(db, service: str) -> int:
    return sql(db, f"SELECT count(*) AS n FROM spans WHERE service_name = '{service}'")[0]["n"]


def test_spans_received_before_the_retention_are_deleted_while_ingest_goes_on(tmp_path):
    db = tmp_path / "store.duckdb"
    collector = start_collector(db)
    for _ in range(20):
        export(collector.http, "old")
    assert collector.stop() == 0
    with duckdb.connect(str(db)) as conn:    # as if those batches had arrived ten days ago
        conn.execute("UPDATE ingest_batches SET received_at = received_at - INTERVAL 10 DAY")

    collector = start_collector(db, extra=("--retention", "7d", "--retention-check", "0.2s"))
    try:
        with Ingest(collector.http, "new") as ingest:
            wait_for(lambda: count(db, "old") == 0)
            wait_for(lambda: len(ingest.acknowledged) >= 5000)
        stored = {r["span_id"] for r in sql(db, "SELECT span_id FROM spans WHERE service_name = 'new'")}
        assert set(ingest.acknowledged) <= stored
        assert max(ingest.latencies) < 2, f"an export waited {max(ingest.latencies):.1f} s"
    finally:
        assert collector.stop() == 0
    assert "retention: deleted 10000 spans" in collector.process.stderr.read()


USED_BYTES = ("SELECT (total_blocks - free_blocks) * block_size AS used "
              "FROM pragma_database_size() WHERE database_name = current_database()")


def test_the_oldest_spans_go_while_the_store_is_over_its_size_cap(tmp_path):
    # The cap is the size the store reached with 600 exports (written into the file
    # compressed, a row group at a time); 20 more put it over, and the oldest must go. DuckDB
    # frees the blocks of deleted rows a row group at a time.
    db = tmp_path / "store.duckdb"
    collector = start_collector(db)
    try:
        first, _ = export(collector.http, "sized")
        for _ in range(600):
            export(collector.http, "sized")
    finally:
        assert collector.stop() == 0
    cap = sql(db, USED_BYTES)[0]["used"]
    collector = start_collector(db, extra=("--max-size", f"{cap}B", "--retention-check", "0.2s"))
    try:
        for _ in range(20):   # the newest, exported while retention runs
            last, _ = export(collector.http, "sized")

        def oldest_gone_and_within_cap() -> bool:
            ids = {r["span_id"] for r in sql(db, "SELECT span_id FROM spans")}
            return not set(first) & ids and sql(db, USED_BYTES)[0]["used"] <= cap

        wait_for(oldest_gone_and_within_cap)
        ids = {r["span_id"] for r in sql(db, "SELECT span_id FROM spans")}
        assert set(last) <= ids                      # the newest stay
        assert 0 < len(ids) < 621 * 500
    finally:
        assert collector.stop() == 0


def test_bad_retention_values_are_usage_errors(tmp_path):
    from tests.conftest import tracekit
    result = tracekit("collect", "--db", str(tmp_path / "s.duckdb"), "--retention", "a week",
                      check=False)
    assert result.returncode == 2 and b"bad duration" in result.stderr
