"""Moves: acknowledged exports go into the store a row group at a time, straight into the file."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import tracekit
from tests.otlp_payloads import log_request, trace_request
from tests.test_store import STORED_ROW_GROUPS, spans_as_an_sdk_sends_them
from tracekit.checkpoints import ROW_GROUP_ROWS, wal_path
from tracekit.intake import Export
from tracekit.otlp.batches import split
from tracekit.otlp.decode import decode_logs, decode_traces
from tracekit.writable import WritableStore
from tracekit.writer import Writer


def test_the_mover_writes_whole_row_groups_into_the_file_without_checkpointing_them(tmp_path):
    # Moves fill one open transaction, committed at each row group's end: DuckDB then writes
    # the row group straight into the file, compressed and its attribute maps shredded, where
    # small commits logged every row first and a checkpoint rewrote them (half the mover's
    # time, and exports waited for it).
    path = tmp_path / "s.duckdb"
    store = WritableStore.open(path, memory_limit_mib=128)
    writer = Writer(store).start()
    try:
        batch = 4096
        for _ in range(2 * ROW_GROUP_ROWS // batch + 1):   # two row groups and a part
            writer.submit(decode_traces(spans_as_an_sdk_sends_them(batch)), "test").result(timeout=60)
        assert writer.flush(60)
        groups = store.conn.execute(STORED_ROW_GROUPS).fetchall()
        assert groups == [(0, ROW_GROUP_ROWS, True), (1, ROW_GROUP_ROWS, True)]
        assert store.checkpoints == 0
        # Only the part after the second row group went through DuckDB's log (~700 B a span).
        assert wal_path(path).stat().st_size < 4 * batch * 1024
        assert store.conn.execute("SELECT count(*) FROM span_rows").fetchall()[0][0] == (
            (2 * ROW_GROUP_ROWS // batch + 1) * batch)
    finally:
        assert writer.shutdown()


def _stage_then_crash(path: str, exports: int, batch: int) -> None:
    """In a child process: acknowledge `exports` exports, stage them all (the last crosses a
    row group's end), wait for the row group's commit, then die without another word."""
    store = WritableStore.open(Path(path))
    for _ in range(exports):
        store.accept([(decode_traces(trace_request(batch)), "test")])
    staged = store.intake.waiting()
    store.stage(staged)
    store.settle()
    # The export cut at the row group's end is not whole in the store yet.
    os._exit(0 if store.moved_through == staged[-2].seq else 3)


def test_an_export_cut_at_a_row_groups_end_is_stored_once_after_a_crash_between_its_parts(tmp_path):
    path = tmp_path / "s.duckdb"
    batch = 5000
    exports = ROW_GROUP_ROWS // batch + 1   # 25 exports of 5,000: the last crosses the end
    child = multiprocessing.get_context("spawn").Process(
        target=_stage_then_crash, args=(str(path), exports, batch))
    child.start()
    child.join(120)
    assert child.exitcode == 0
    reopened = WritableStore.open(path)   # moves what the intake holds past the store
    try:
        [(rows, distinct)] = reopened.conn.execute(
            "SELECT count(*), count(DISTINCT span_id) FROM span_rows").fetchall()
        assert rows == distinct == exports * batch
    finally:
        reopened.close()
    with tracekit.open(path) as reader:
        # The part of the cut export stored before the crash was not stored again.
        assert reader.scalar("SELECT sum(duplicates) FROM ingest_batches") == ROW_GROUP_ROWS - (exports - 1) * batch


def test_spans_resent_while_their_first_copy_commits_in_the_background_are_stored_once(tmp_path):
    # A row group's transaction commits in a thread of its own while the next is staged, and
    # that one does not see its rows: re-sent spans are checked against them by key.
    store = WritableStore.open(tmp_path / "s.duckdb")
    try:
        first = decode_traces(trace_request(ROW_GROUP_ROWS))
        resent, _ = split(first, 10, 0)
        result = store.stage([Export(1, first, "test"), Export(2, resent, "test")])
        store.commit_staged()
        assert (result.spans, result.duplicates) == (ROW_GROUP_ROWS, 10)
        assert store.conn.execute("SELECT count(*), count(DISTINCT span_id) FROM span_rows"
                                  ).fetchall() == [(ROW_GROUP_ROWS, ROW_GROUP_ROWS)]
    finally:
        store.close()


def test_logs_resent_while_their_first_copy_commits_in_the_background_are_stored_once(tmp_path):
    # As for spans: the next transaction does not see the rows of the one committing, so
    # re-sent log records are checked against its keys.
    store = WritableStore.open(tmp_path / "s.duckdb")
    try:
        first = decode_logs(log_request(ROW_GROUP_ROWS))
        resent, _ = split(first, 0, 10)
        result = store.stage([Export(1, first, "test"), Export(2, resent, "test")])
        store.commit_staged()
        assert result.logs == ROW_GROUP_ROWS
        assert store.conn.execute("SELECT count(*), count(DISTINCT \"timestamp\") FROM log_rows"
                                  ).fetchall() == [(ROW_GROUP_ROWS, ROW_GROUP_ROWS)]
    finally:
        store.close()


def test_each_batch_is_received_when_it_was_written_not_when_its_transaction_began(tmp_path):
    # A transaction of moves stays open until it holds a row group (minutes at a low rate);
    # retention by age reads received_at.
    from datetime import datetime, timezone

    store = WritableStore.open(tmp_path / "s.duckdb")
    try:
        store.stage([Export(1, decode_traces(trace_request(10)), "test")])
        between = datetime.now(timezone.utc)
        store.stage([Export(2, decode_traces(trace_request(10)), "test")])
        store.commit_staged()
        first, second = [row[0] for row in store.conn.execute(
            "SELECT received_at FROM ingest_batches ORDER BY batch_id").fetchall()]
        assert first < between <= second
    finally:
        store.close()
