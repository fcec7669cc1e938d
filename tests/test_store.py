"""The store: migrations, versions, one writer, and the core's import hygiene."""

from __future__ import annotations

import subprocess
import sys

import duckdb
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

import tracekit
from tracekit import queries
from tests.otlp_payloads import BASE_NS, log_request, trace_request
from tracekit.errors import Overloaded, StoreLocked, StoreTooNew, WriterStopped
from tracekit.otlp.decode import decode_logs, decode_traces
from tracekit.checkpoints import ROW_GROUP_ROWS
from tracekit.writable import WritableStore
from tracekit.writer import Writer, WriterLimits


def test_importing_tracekit_loads_no_collector_ui_or_grpc():
    code = ("import sys, tracekit, tracekit.cli, tracekit.store, tracekit.writer, tracekit.importer, "
            "tracekit.remote, tracekit.otlp.decode, tracekit.otlp.json, tracekit.output, "
            "tracekit.metrics.live, tracekit.metrics.window, tracekit.metrics.naming; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'collectors', 'tui', 'textual', 'grpc', 'aiohttp'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_new_store_gets_the_latest_schema_once(tmp_path):
    path = tmp_path / "s.duckdb"
    tracekit.open(path, write=True).close()
    tracekit.open(path, write=True).close()
    with tracekit.open(path) as store:
        versions = store.df("SELECT version FROM schema_version ORDER BY version")["version"]
        assert versions.tolist() == [v for v, _, _ in queries.migrations()]   # each once
        tables = set(store.df("SHOW TABLES")["name"])
    assert {"spans", "logs", "ingest_batches", "otel_traces", "otel_logs"} <= tables


def test_store_from_a_newer_tracekit_is_refused_with_advice(tmp_path):
    path = tmp_path / "s.duckdb"
    tracekit.open(path, write=True).close()
    with duckdb.connect(str(path)) as conn:
        conn.execute("INSERT INTO schema_version VALUES (99, 'future', now())")
    with pytest.raises(StoreTooNew, match="Upgrade tracekit"):
        tracekit.open(path)
    with pytest.raises(StoreTooNew):
        tracekit.open(path, write=True)


def test_second_writer_is_refused_naming_the_holder(tmp_path):
    path = tmp_path / "s.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import tracekit, sys; s = tracekit.open({str(path)!r}, write=True); "
         "print('held', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(StoreLocked, match=f"process {holder.pid}"):
            tracekit.open(path, write=True)
    finally:
        holder.stdin.close()
        holder.wait(30)


def test_writer_refuses_with_retry_advice_when_its_queue_is_full(tmp_path):
    store = tracekit.open(tmp_path / "s.duckdb", write=True)
    writer = Writer(store, WriterLimits(max_pending_items=25, retry_after_s=2))
    first = writer.submit(decode_traces(trace_request(20)), "test")  # not started: it waits
    with pytest.raises(Overloaded) as refused:
        writer.submit(decode_traces(trace_request(10)), "test")
    assert refused.value.retry_after_s == 2
    writer.start()
    assert first.result(timeout=30).spans == 20
    assert writer.submit(decode_traces(trace_request(10)), "test").result(timeout=30).spans == 10
    assert writer.shutdown() and writer.shutdown()
    with pytest.raises(WriterStopped):
        writer.submit(decode_traces(trace_request(1)), "test")
    with tracekit.open(tmp_path / "s.duckdb") as reader:
        assert reader.scalar("SELECT count(*) FROM spans") == 30


def test_queued_batches_are_committed_by_shutdown(tmp_path):
    store = tracekit.open(tmp_path / "s.duckdb", write=True)
    writer = Writer(store).start()
    futures = [writer.submit(decode_traces(trace_request(100)), "test") for _ in range(20)]
    assert writer.shutdown()
    transactions = {f.result(timeout=0) for f in futures}  # every future resolved, none failed
    assert sum(t.spans for t in transactions) == 2000
    with tracekit.open(tmp_path / "s.duckdb") as reader:
        assert reader.scalar("SELECT count(*) FROM spans") == 2000


def test_a_resource_is_stored_once_and_joined_back_to_every_span(tmp_path):
    store = tracekit.open(tmp_path / "s.duckdb", write=True)
    for _ in range(3):
        store.append(decode_traces(trace_request(5, service="orders")), "test")
    store.append(decode_traces(trace_request(5, service="payment")), "test")
    store.close()
    with tracekit.open(tmp_path / "s.duckdb") as reader:
        assert reader.scalar("SELECT count(*) FROM resources") == 2
        rows = reader.df("SELECT service_name, resource_attributes['service.name']::VARCHAR AS res "
                         "FROM spans").drop_duplicates().sort_values("res").to_dict("records")
    assert rows == [{"service_name": "orders", "res": "orders"},
                    {"service_name": "payment", "res": "payment"}]


def test_a_span_sent_twice_in_one_batch_is_stored_once(tmp_path):
    request = trace_request(3, service="twice")
    copy = request.resource_spans[0].scope_spans[0].spans.add()
    copy.CopyFrom(request.resource_spans[0].scope_spans[0].spans[0])
    store = tracekit.open(tmp_path / "s.duckdb", write=True)
    result = store.append(decode_traces(request), "test")
    store.close()
    assert (result.spans, result.duplicates) == (3, 1)


def test_a_commit_waits_for_requests_still_being_decoded(tmp_path):
    store = tracekit.open(tmp_path / "s.duckdb", write=True)
    writer = Writer(store, WriterLimits(commit_delay_s=30)).start()
    with writer.incoming():      # a second request is being decoded...
        first = writer.submit(decode_traces(trace_request(3)), "test")
        second = writer.submit(decode_traces(trace_request(4)), "test")
    # ...so the first did not commit alone: both share one transaction.
    assert first.result(timeout=30) == second.result(timeout=30)
    assert first.result().spans == 7
    alone = writer.submit(decode_traces(trace_request(2)), "test")  # nothing incoming: no wait
    assert alone.result(timeout=5).spans == 2
    assert writer.shutdown()


def test_a_caller_giving_up_does_not_stop_the_writer(tmp_path):
    store = tracekit.open(tmp_path / "s.duckdb", write=True)
    writer = Writer(store)
    abandoned = writer.submit(decode_traces(trace_request(3)), "test")
    assert abandoned.cancel()
    writer.start()
    assert writer.submit(decode_traces(trace_request(2)), "test").result(timeout=30).spans >= 2
    assert writer.shutdown()
    with tracekit.open(tmp_path / "s.duckdb") as reader:
        assert reader.scalar("SELECT count(*) FROM spans") == 5  # the abandoned batch too


def append_one_after_the_other(path, first, second):
    """Commit `first`, then `second`, to a new store; what the second commit wrote."""
    store = tracekit.open(path, write=True)
    try:
        store.append(decode_traces(first), "test")
        return store.append(decode_traces(second), "test")
    finally:
        store.close()


def test_a_batch_that_repeats_some_stored_spans_stores_only_the_new_ones(tmp_path):
    sent = trace_request(3, service="resent")
    again = trace_request(2, service="resent", trace_id=sent.resource_spans[0].scope_spans[0].spans[0].trace_id)
    again.resource_spans[0].scope_spans[0].spans.extend(sent.resource_spans[0].scope_spans[0].spans)
    result = append_one_after_the_other(tmp_path / "s.duckdb", sent, again)
    assert (result.spans, result.duplicates) == (2, 3)
    with tracekit.open(tmp_path / "s.duckdb") as reader:
        assert reader.scalar("SELECT count(DISTINCT span_id) FROM spans") == 5
        assert reader.scalar("SELECT count(*) FROM spans") == 5


def test_spans_starting_at_the_same_nanosecond_as_stored_ones_are_not_taken_for_resent(tmp_path):
    # Coarse clocks give many spans the same start time; only the same trace and span id
    # makes a span a re-sent one.
    first, second = trace_request(3, service="clock"), trace_request(3, service="clock")
    assert ([s.start_time_unix_nano for s in first.resource_spans[0].scope_spans[0].spans]
            == [s.start_time_unix_nano for s in second.resource_spans[0].scope_spans[0].spans])
    result = append_one_after_the_other(tmp_path / "s.duckdb", first, second)
    assert (result.spans, result.duplicates) == (3, 0)
    with tracekit.open(tmp_path / "s.duckdb") as reader:
        assert reader.scalar("SELECT count(*) FROM spans") == 6


def test_the_writer_checkpoints_each_whole_row_group_of_spans_once(tmp_path):
    # Uncheckpointed rows live in the writer's memory (128 MiB in a collector); DuckDB's own
    # trigger, by log size, let them fill it and cut row groups short. The writer folds the
    # log as soon as a row group's worth of spans is committed: the row group is written whole,
    # its attribute maps shredded into typed columns (what makes attribute lookups fast).
    path = tmp_path / "s.duckdb"
    store = tracekit.open(path, write=True)
    batch = 4096
    try:
        appended = 0
        while appended < ROW_GROUP_ROWS - batch:
            appended += store.append(decode_traces(trace_request(batch)), "test").spans
        assert store.conn.execute(STORED_ROW_GROUPS).fetchall() == []   # all still in the log
        assert store.checkpoints == 0
        appended += store.append(decode_traces(trace_request(batch)), "test").spans
        assert appended >= ROW_GROUP_ROWS
        assert store.conn.execute(STORED_ROW_GROUPS).fetchall() == [(0, ROW_GROUP_ROWS, True)]
        # counted, with its time, for the collector's closing line and the ingest benchmark
        assert store.checkpoints == 1 and store.checkpoint_s > 0
        assert not path.with_name("s.duckdb.wal").exists() or path.with_name("s.duckdb.wal").stat().st_size < 2**20
    finally:
        store.close()


STORED_ROW_GROUPS = """
SELECT row_group_id, max(count) FILTER (column_name = 'span_id'),
       bool_or(column_name = 'attributes' AND segment_type LIKE '%BIGINT')   -- "i", shredded
FROM pragma_storage_info('span_rows') WHERE persistent
GROUP BY row_group_id ORDER BY row_group_id
"""


def spans_as_an_sdk_sends_them(n: int, payload: int = 0) -> ExportTraceServiceRequest:
    """`n` spans with six attributes, an exception event and a link, each with attributes of
    its own, as instrumented services send them; `payload` adds a string of that many bytes."""
    request = trace_request(n)
    for k, span in enumerate(request.resource_spans[0].scope_spans[0].spans):
        for key, value in (("http.route", "/api/orders"), ("http.request.method", "POST"),
                           ("server.address", "orders.shop.svc"), ("order.id", f"ord-{k}"),
                           ("payload", "x" * payload)):
            if value:
                kv = span.attributes.add()
                kv.key, kv.value.string_value = key, value
        event = span.events.add(name="exception", time_unix_nano=span.start_time_unix_nano)
        kv = event.attributes.add()
        kv.key, kv.value.string_value = "exception.type", "TimeoutError"
        link = span.links.add(trace_id=span.trace_id, span_id=span.span_id)
        kv = link.attributes.add()
        kv.key, kv.value.int_value = "messaging.batch.message_count", k
    return request


def test_an_sdks_small_batches_are_checkpointed_in_whole_row_groups(tmp_path):
    # DuckDB logs a fixed ~17 KiB per commit for each VARIANT column, so 512-span commits (an
    # SDK's batch, each export its own commit while the collector keeps up) log ~1.1 KB a
    # span: its own trigger, by log size, fired before a row group was whole, cut it short
    # and rewrote it at the next checkpoint, leaving the file half free blocks.
    store = WritableStore.open(tmp_path / "s.duckdb", memory_limit_mib=128)
    try:
        appended = 0
        while appended < ROW_GROUP_ROWS - 512:
            appended += store.append(decode_traces(spans_as_an_sdk_sends_them(512)), "test").spans
        assert store.conn.execute(STORED_ROW_GROUPS).fetchall() == []   # all still in the log
        appended += store.append(decode_traces(spans_as_an_sdk_sends_them(512)), "test").spans
        assert appended == ROW_GROUP_ROWS
        assert store.conn.execute(STORED_ROW_GROUPS).fetchall() == [(0, ROW_GROUP_ROWS, True)]
    finally:
        store.close()


IN_MEMORY_ROWS_BYTES = "SELECT sum(memory_usage_bytes) FROM duckdb_memory() WHERE tag = 'IN_MEMORY_TABLE'"


def test_rows_larger_than_usual_are_checkpointed_before_they_fill_the_writers_memory(tmp_path):
    # Spans with a 2 KiB attribute: a row group of them would take ~350 MiB of the 128 MiB a
    # collector gives DuckDB. The writer checkpoints once 64 MiB of them (as decoded) waits.
    store = WritableStore.open(tmp_path / "s.duckdb", memory_limit_mib=128)
    try:
        peak = appended = 0
        while appended < 64 * 1024:
            appended += store.append(decode_traces(spans_as_an_sdk_sends_them(1024, payload=2048)),
                                     "test").spans
            peak = max(peak, store.conn.execute(IN_MEMORY_ROWS_BYTES).fetchall()[0][0] or 0)
        assert store.checkpoints >= 1
        assert peak < 112 * 2**20
        assert store.conn.execute("SELECT count(*) FROM span_rows").fetchall()[0][0] == appended
    finally:
        store.close()


def spans_with_many_keys(n: int, keys: int) -> ExportTraceServiceRequest:
    """`n` spans, each with 20 attributes (ints, doubles, strings) drawn from `keys` keys."""
    request = trace_request(n)
    for k, span in enumerate(request.resource_spans[0].scope_spans[0].spans):
        for a in range(20):
            kv = span.attributes.add()
            kv.key = f"attr.{(k * 7 + a * 13) % keys}"
            if a % 3 == 0:
                kv.value.int_value = k * a
            elif a % 3 == 1:
                kv.value.double_value = k / (a + 1)
            else:
                kv.value.string_value = f"value {k % 97} of {a}"
    return request


def test_spans_with_more_attribute_keys_than_duckdb_can_shred_are_stored_unshredded(tmp_path, caplog):
    # A row group of spans with 140 distinct keys could not be shredded in the 128 MiB a
    # collector gives DuckDB: the checkpoint failed and DuckDB invalidated the database,
    # refusing every later write. The writer now stores such rows unshredded, and says so.
    path = tmp_path / "s.duckdb"
    store = WritableStore.open(path, memory_limit_mib=128)
    try:
        appended = 0
        while appended < ROW_GROUP_ROWS:
            appended += store.append(decode_traces(spans_with_many_keys(4096, keys=1000)), "test").spans
        stored = store.conn.execute(STORED_ROW_GROUPS).fetchall()   # checkpointed, not shredded
        assert stored and not any(shredded for _, _, shredded in stored)
        assert "stored unshredded" in caplog.text
        store.append(decode_traces(trace_request(10)), "test")   # the store still writes
        assert store.conn.execute("SELECT count(*) FROM span_rows").fetchall()[0][0] == appended + 10
    finally:
        store.close()


def test_after_duckdb_gives_up_the_database_the_writer_reopens_it_and_keeps_every_commit(tmp_path, caplog):
    # Force the failure the shredding limit prevents: shred spans with 1,000 distinct keys in
    # 128 MiB. The checkpoint fails and DuckDB refuses every statement from then on; before,
    # the collector answered 503 to every export until restarted.
    path = tmp_path / "s.duckdb"
    store = WritableStore.open(path, memory_limit_mib=128)
    store.policy.max_shredded_keys = None
    committed = 0

    def count(where: str = "true") -> int:
        return store.conn.execute(f"SELECT count(*) FROM span_rows WHERE {where}").fetchall()[0][0]

    try:
        # Small commits, as a collector's: the writer's own checkpoint after a commit fails.
        # The commit stands (its export is acknowledged); the store is reopened.
        while "reopening it" not in caplog.text:
            assert committed < 2 * ROW_GROUP_ROWS, "the checkpoint never failed"
            committed += store.append(decode_traces(spans_with_many_keys(4096, keys=1000)), "test").spans
        assert count() == committed
        store.append(decode_traces(trace_request(10, service="after")), "test")
        assert count("service_name = 'after'") == 10
        committed += 10
        caplog.clear()
        # Large commits, as an import's: DuckDB checkpoints inside the COMMIT, which fails, so
        # the append raises (a collector answers with a retryable error); nothing committed
        # before it is lost, and the store takes the next batch.
        with pytest.raises(duckdb.FatalException):
            while committed < 6 * ROW_GROUP_ROWS:
                committed += store.append(decode_traces(spans_with_many_keys(16_384, keys=1000)), "test").spans
        assert "reopening it" in caplog.text
        assert count() >= committed
        store.append(decode_traces(trace_request(10, service="after large")), "test")
        assert count("service_name = 'after large'") == 10
    finally:
        store.close()
    with tracekit.open(path) as reader:   # and all of it is in the file
        assert reader.scalar("SELECT count(*) FROM spans") >= committed + 10


def test_a_log_record_resent_in_a_later_batch_is_stored_once(tmp_path):
    store = tracekit.open(tmp_path / "s.duckdb", write=True)
    try:
        assert store.append(decode_logs(log_request(3, service="resent")), "test").logs == 3
        again = log_request(2, service="resent")   # the first two records, as sent before...
        record = again.resource_logs[0].scope_logs[0].log_records.add()
        record.time_unix_nano, record.body.string_value = BASE_NS + 7, "line 7"   # ...and a new one
        assert store.append(decode_logs(again), "test").logs == 1
    finally:
        store.close()
    with tracekit.open(tmp_path / "s.duckdb") as reader:
        assert reader.df("SELECT body::VARCHAR AS body FROM logs ORDER BY timestamp")["body"].tolist() == [
            "line 0", "line 1", "line 2", "line 7"]


def test_a_log_record_sent_twice_in_one_batch_is_stored_once(tmp_path):
    request = log_request(2, service="twice")
    records = request.resource_logs[0].scope_logs[0].log_records
    records.add().CopyFrom(records[0])
    store = tracekit.open(tmp_path / "s.duckdb", write=True)
    try:
        assert store.append(decode_logs(request), "test").logs == 2
    finally:
        store.close()


@pytest.mark.parametrize("change", [
    lambda r: setattr(r.body, "string_value", "another line"),
    lambda r: setattr(r, "severity_number", 17),
    lambda r: setattr(r, "observed_time_unix_nano", r.observed_time_unix_nano + 1),
    lambda r: setattr(r, "span_id", b"\x02" * 8),
    lambda r: r.attributes.add(key="attempt").value.CopyFrom(AnyValue(int_value=2)),
], ids=["body", "severity", "observed_time", "span_id", "attributes"])
def test_log_records_at_the_same_time_that_differ_in_anything_are_not_taken_for_resent(tmp_path, change):
    first, second = log_request(1, service="clock"), log_request(1, service="clock")
    change(second.resource_logs[0].scope_logs[0].log_records[0])
    store = tracekit.open(tmp_path / "s.duckdb", write=True)
    try:
        store.append(decode_logs(first), "test")
        assert store.append(decode_logs(second), "test").logs == 1
    finally:
        store.close()


def test_a_store_written_before_log_record_keys_migrates_and_keys_its_new_logs(tmp_path):
    path = tmp_path / "s.duckdb"
    store = tracekit.open(path, write=True)
    store.append(decode_logs(log_request(2, service="old")), "test")
    # Back to schema version 5, as an older tracekit left it.
    store.conn.execute("ALTER TABLE log_rows DROP COLUMN record_key")
    store.conn.execute("DELETE FROM schema_version WHERE version >= 6")
    store.close()
    store = tracekit.open(path, write=True)   # the writer migrates
    try:
        assert store.append(decode_logs(log_request(2, service="new")), "test").logs == 2
        assert store.append(decode_logs(log_request(2, service="new")), "test").logs == 0
    finally:
        store.close()
    with tracekit.open(path) as reader:
        rows = reader.df("SELECT service_name, count(*) AS n, count(record_key) AS keyed "
                         "FROM log_rows GROUP BY ALL ORDER BY ALL")
        assert rows.to_dict("records") == [{"service_name": "new", "n": 2, "keyed": 2},
                                           {"service_name": "old", "n": 2, "keyed": 0}]
