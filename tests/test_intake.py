"""The intake: exports are acknowledged once synced to its log, and moved into the store after."""

from __future__ import annotations

import shutil
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa

import pytest

import tracekit
from tests.conftest import sql, start_collector
from tests.otlp_payloads import log_request, trace_request
from tracekit import intake
from tracekit.intake import SUFFIX, IntakeCorrupt
from tracekit.otlp.decode import decode_logs, decode_traces
from tracekit.writable import WritableStore
from tracekit.writer import Writer, WriterLimits


def test_exports_are_acknowledged_while_the_store_checkpoints(tmp_path):
    store = WritableStore.open(tmp_path / "s.duckdb")
    writer = Writer(store).start()
    writer.submit(decode_traces(trace_request(500)), "test").result(timeout=30)
    assert writer.flush(30)
    # DuckDB's debug setting holds a checkpoint of the store 0.15 s after writing each table's
    # rows (~3 s in all for its ~20 tables), during which DuckDB takes no commit into the store.
    store.conn.execute("SET debug_checkpoint_scan_sleep_ms = 150")
    checkpoint = threading.Thread(target=lambda: store.conn.cursor().execute("CHECKPOINT"))
    checkpoint_started = time.monotonic()
    checkpoint.start()
    latencies, during = [], 0
    while checkpoint.is_alive():
        started = time.monotonic()
        writer.submit(decode_traces(trace_request(50)), "test").result(timeout=30)
        latencies.append(time.monotonic() - started)
        during += checkpoint.is_alive()
    checkpoint_s = time.monotonic() - checkpoint_started
    store.conn.execute("SET debug_checkpoint_scan_sleep_ms = 0")
    assert during >= 5, f"only {during} exports acknowledged during a checkpoint: {latencies}"
    # None waited for the checkpoint: each is acknowledged once its intake log is synced
    # (milliseconds; a busy disk's sync once took 1.1 s in CI), not when the store is free.
    assert max(latencies) < checkpoint_s / 2, (checkpoint_s, sorted(latencies)[-5:])
    assert writer.shutdown()
    with tracekit.open(tmp_path / "s.duckdb") as reader:
        assert reader.scalar("SELECT count(*) FROM spans") == 500 + 50 * len(latencies)


def test_a_flush_waits_until_every_acknowledged_export_is_in_the_store(tmp_path):
    store = WritableStore.open(tmp_path / "s.duckdb")
    writer = Writer(store).start()
    acknowledged = [writer.submit(decode_traces(trace_request(100)), "test") for _ in range(30)]
    assert sum(a.spans for a in {f.result(timeout=30) for f in acknowledged}) == 3000
    assert writer.flush(30)
    assert store.conn.execute("SELECT count(*) FROM span_rows").fetchall()[0][0] == 3000
    assert writer.shutdown()


def test_exports_acknowledged_before_a_crash_are_stored_when_the_store_is_next_opened(tmp_path, caplog):
    path = tmp_path / "s.duckdb"
    store = WritableStore.open(path)
    store.accept([(decode_traces(trace_request(40, service="crashed")), "otlp-http")])
    store.accept([(decode_traces(trace_request(60, service="crashed")), "otlp-grpc")])
    store.conn.close()   # as a crash leaves it: acknowledged, never moved
    with caplog.at_level("WARNING"), tracekit.open(path) as reader:
        assert reader.scalar("SELECT count(*) FROM spans") == 0
    assert f"2 exports a collector acknowledged wait in {path}{SUFFIX}" in caplog.text

    reopened = WritableStore.open(path)
    assert reopened.conn.execute("SELECT count(*) FROM span_rows WHERE service_name = 'crashed'"
                                 ).fetchall()[0][0] == 100
    reopened.close()
    assert not (tmp_path / f"s.duckdb{SUFFIX}").exists(), "an empty intake is removed at close"
    with tracekit.open(path) as reader:
        assert reader.scalar("SELECT count(*) FROM spans") == 100


def test_exports_moved_just_before_a_crash_are_not_moved_again(tmp_path):
    path, intake_dir = tmp_path / "s.duckdb", tmp_path / f"s.duckdb{SUFFIX}"
    store = WritableStore.open(path)
    store.accept([(decode_traces(trace_request(70)), "test")])
    shutil.copytree(intake_dir, tmp_path / "intake.before")   # the intake before its cleanup
    assert store.move(store.intake.waiting()).spans == 70
    store.close()
    assert not intake_dir.exists()
    shutil.copytree(tmp_path / "intake.before", intake_dir)   # the crash came before the cleanup

    reopened = WritableStore.open(path)
    reopened.close()
    assert not intake_dir.exists()
    with tracekit.open(path) as reader:
        assert reader.scalar("SELECT count(*) FROM spans") == 70
        assert reader.scalar("SELECT sum(duplicates) FROM ingest_batches") == 0


def test_an_export_cut_short_by_a_crash_is_dropped_and_those_before_it_are_stored(tmp_path, caplog):
    path = tmp_path / "s.duckdb"
    store = WritableStore.open(path)
    store.accept([(decode_traces(trace_request(40, service="synced")), "test")])
    store.accept([(decode_traces(trace_request(30, service="synced")), "test")])
    [segment] = (tmp_path / f"s.duckdb{SUFFIX}").glob("*.log")
    whole = segment.read_bytes()
    store.accept([(decode_traces(trace_request(50, service="torn")), "test")])
    torn = segment.read_bytes()[len(whole):]
    store.conn.close()
    # The crash came while the third record was being written: it was never acknowledged.
    segment.write_bytes(whole + torn[:len(torn) // 2])
    with caplog.at_level("WARNING"), tracekit.open(path):
        assert "2 exports a collector acknowledged wait" in caplog.text
    caplog.clear()

    with caplog.at_level("WARNING"):
        reopened = WritableStore.open(path)
    assert "dropped" in caplog.text and "never acknowledged" in caplog.text
    assert dict(reopened.conn.execute(
        "SELECT service_name, count(*) FROM span_rows GROUP BY ALL").fetchall()) == {"synced": 70}
    # The intake goes on after the records it kept.
    reopened.accept([(decode_traces(trace_request(5, service="after")), "test")])
    reopened.conn.close()
    again = WritableStore.open(path)
    assert again.conn.execute("SELECT count(*) FROM span_rows").fetchall()[0][0] == 75
    again.close()


def test_a_store_whose_intake_is_damaged_before_its_end_is_not_opened(tmp_path):
    path = tmp_path / "s.duckdb"
    store = WritableStore.open(path)
    for _ in range(2):
        store.accept([(decode_traces(trace_request(10)), "test")])
    [segment] = (tmp_path / f"s.duckdb{SUFFIX}").glob("*.log")
    store.conn.close()
    data = bytearray(segment.read_bytes())
    data[intake.HEADER.size + 100] ^= 0xFF    # a flipped byte in the first of two records
    segment.write_bytes(bytes(data))
    with pytest.raises(IntakeCorrupt, match="Move the intake directory .* away"):
        WritableStore.open(path)


def test_the_intake_deletes_its_segments_once_the_store_holds_them(tmp_path, monkeypatch):
    monkeypatch.setattr(intake, "SEGMENT_BYTES", 1)    # a segment for each record
    path, intake_dir = tmp_path / "s.duckdb", tmp_path / f"s.duckdb{SUFFIX}"
    store = WritableStore.open(path)
    for _ in range(4):
        store.accept([(decode_traces(trace_request(10)), "test")])
    assert len(list(intake_dir.glob("*.log"))) == 4
    exports = store.intake.waiting()
    store.move(exports[:3])
    # The first three are stored: their segments go; the fourth's stays, and so does the
    # segment being appended to.
    assert sorted(p.name for p in intake_dir.glob("*.log")) == [f"{4:020d}.log"]
    store.conn.close()   # a crash: the fourth is moved on the next open
    reopened = WritableStore.open(path)
    assert reopened.conn.execute("SELECT count(*) FROM span_rows").fetchall()[0][0] == 40
    reopened.close()
    assert not intake_dir.exists()


def test_a_query_through_the_collector_sees_every_export_acknowledged_before_it(tmp_path):
    db = tmp_path / "store.duckdb"
    collector = start_collector(db)
    bodies = [trace_request(200, service=f"svc{k % 3}").SerializeToString() for k in range(40)]

    def export(body: bytes) -> int:
        with urllib.request.urlopen(urllib.request.Request(
                f"http://{collector.http}/v1/traces", data=body,
                headers={"Content-Type": "application/x-protobuf"}), timeout=30) as response:
            return response.status

    try:
        with ThreadPoolExecutor(8) as pool:
            assert set(pool.map(export, bodies)) == {200}
        [row] = sql(db, "SELECT count(*) AS spans FROM spans")
        assert row["spans"] == 40 * 200
    finally:
        assert collector.stop() == 0


def test_an_export_the_store_refuses_is_set_aside_and_the_exports_after_it_are_stored(tmp_path, caplog):
    store = WritableStore.open(tmp_path / "s.duckdb")
    writer = Writer(store, WriterLimits(mover_retry_s=0.05)).start()
    broken = decode_traces(trace_request(10, service="broken"))
    # Rows no decoder makes: attribute maps that are not JSON (a decoder bug, say).
    broken.spans = broken.spans.set_column(
        broken.spans.schema.get_field_index("attributes"), "attributes",
        pa.array(["{not json"] * 10, pa.string()))
    for batch in (decode_traces(trace_request(20, service="before")), broken,
                  decode_traces(trace_request(30, service="after"))):
        writer.submit(batch, "test").result(timeout=30)
    assert writer.flush(30)
    assert writer.refused_exports == 1
    stored = dict(store.conn.execute(
        "SELECT service_name, count(*) FROM span_rows GROUP BY ALL").fetchall())
    assert stored == {"before": 20, "after": 30}
    assert "the store refused the rows of an acknowledged export" in caplog.text
    assert writer.shutdown()
    with tracekit.open(tmp_path / "s.duckdb") as reader:
        assert reader.scalar("SELECT count(*) FROM ingest_batches WHERE source = 'refused'") == 1


def test_a_move_keeps_each_exports_spans_logs_resources_and_attribute_keys(tmp_path):
    store = WritableStore.open(tmp_path / "s.duckdb")
    store.accept([(decode_traces(trace_request(5, service="orders")), "otlp-grpc"),
                  (decode_logs(log_request(3, service="payments")), "otlp-http")])
    result = store.move(store.intake.waiting())
    assert (result.spans, result.logs) == (5, 3)
    conn = store.conn
    assert conn.execute("SELECT source, intake_through FROM ingest_batches").fetchall() == [("mixed", 2)]
    assert sorted(conn.execute("SELECT service_name FROM resources").fetchall()) == [
        ("orders",), ("payments",)]
    assert conn.execute("SELECT count(*) FROM span_attribute_keys").fetchall()[0][0] > 0
    assert store.move_all() == 0, "nothing acknowledged is left to move"
    store.close()


def test_a_record_of_thousands_of_small_exports_is_written_and_read_back_whole(tmp_path):
    path = tmp_path / "s.duckdb"
    store = WritableStore.open(path)
    # 4 parts an export: more than one writev takes (IOV_MAX, 1024).
    accepted = store.accept([(decode_traces(trace_request(1, service=f"s{k % 5}")), "test")
                             for k in range(600)])
    assert (accepted.first_seq, accepted.last_seq, accepted.spans) == (1, 600, 600)
    store.conn.close()   # a crash: the record is read back at the next open
    reopened = WritableStore.open(path)
    assert reopened.conn.execute("SELECT count(*) FROM span_rows").fetchall()[0][0] == 600
    reopened.close()


def test_a_tail_of_zero_bytes_left_by_a_crash_is_dropped(tmp_path, caplog):
    # A file system may extend the file before it writes the record's bytes: after a crash
    # the unwritten record reads as zeros. It was never acknowledged.
    path = tmp_path / "s.duckdb"
    store = WritableStore.open(path)
    store.accept([(decode_traces(trace_request(12)), "test")])
    [segment] = (tmp_path / f"s.duckdb{SUFFIX}").glob("*.log")
    store.conn.close()
    with segment.open("ab") as log_file:
        log_file.write(bytes(5000))
    with caplog.at_level("WARNING"):
        reopened = WritableStore.open(path)
    assert "dropped 5000 bytes" in caplog.text
    assert reopened.conn.execute("SELECT count(*) FROM span_rows").fetchall()[0][0] == 12
    reopened.close()
