"""The analysis tables the store keeps: equal to the batch analysis of the same spans however
the spans arrived, kept by the collector, by import and by `tracekit analyze`, and consistent
after retention, a crash, and hostile spans."""

from __future__ import annotations

import json
import random
import shutil
import signal
import time
from pathlib import Path

import pytest

import tracekit
from collectors.analyst import CHUNK_SPANS, KIB_PER_SPAN, MIN_CHUNK_SPANS, Analyst
from tracekit.analysis import persist
from tracekit.writable import WritableStore
from tracekit.importer import StoreSink, import_files

from conftest import sql, start_collector, tracekit as run_tracekit
from span_documents import T0, request, span, write
from tracekit.analysis.verify import verify


class _Conn:
    """The reader's interface (arrow, df) over a writable store's connection."""

    def __init__(self, conn) -> None:
        self.conn = conn

    def arrow(self, query, params=None):
        return self.conn.sql(query, params=params or {}).to_arrow_table()

    def df(self, query, params=None):
        return self.conn.sql(query, params=params or {}).df()

    def scalar(self, query, params=None):
        return self.conn.sql(query, params=params or {}).fetchall()[0][0]


def assert_equal_to_batch(conn, as_of_ns: int | None = None) -> None:
    assert verify(_Conn(conn), as_of_ns or time.time_ns()) == {}


def test_tables_the_collector_kept_during_a_demo_equal_the_batch_analysis(rabbitmq_demo_run, tmp_path):
    db = tmp_path / "copy.duckdb"
    shutil.copy(rabbitmq_demo_run["db"], db)
    store = tracekit.open(db, write=True)
    try:
        assert persist.progress(store.conn).current, "the collector left spans unanalyzed"
        assert_equal_to_batch(store.conn)
        statuses = {s for (s,) in store.conn.sql("SELECT DISTINCT status FROM flows").fetchall()}
        assert {"complete", "failed", "degraded"} <= statuses
    finally:
        store.close()


def _rearrive(db: Path, seed: int, duplicates: int = 40) -> None:
    """Renumber the store's spans into new batches in a random arrival order (consumers before
    their producers, a trace spread over several batches), some delivered twice, and forget
    the analysis."""
    rng = random.Random(seed)
    store = tracekit.open(db, write=True)
    try:
        conn = store.conn
        [(n,)] = conn.execute("SELECT count(*) FROM span_rows").fetchall()
        order = list(range(n))
        rng.shuffle(order)
        batches = sorted(rng.sample(range(1, n), 30))
        batch_of = [1 + sum(1 for b in batches if b <= i) for i in range(n)]
        conn.execute("CREATE TEMP TABLE arrival AS SELECT unnest($pos) AS pos, unnest($batch) AS batch",
                     {"pos": order, "batch": batch_of})
        conn.execute("BEGIN")
        conn.execute("CREATE TEMP TABLE numbered AS SELECT *, row_number() OVER () - 1 AS pos FROM span_rows")
        conn.execute("DELETE FROM span_rows")
        conn.execute("INSERT INTO span_rows SELECT * EXCLUDE (batch_id, pos, batch), 1000 + batch "
                     "FROM numbered JOIN arrival USING (pos)")
        # A re-sent span the writer did not catch (it arrived in a later batch): analyzed once.
        conn.execute("INSERT INTO span_rows SELECT * EXCLUDE (batch_id, pos, batch), 1000 + 32 "
                     f"FROM numbered JOIN arrival USING (pos) USING SAMPLE {int(duplicates)} ROWS")
        conn.execute("DELETE FROM ingest_batches")
        conn.execute("INSERT INTO ingest_batches SELECT batch_id, now(), 'test', count(*), 0, 0, NULL "
                     "FROM span_rows GROUP BY batch_id")
        conn.execute("COMMIT")
        persist.forget_all(conn)
    finally:
        store.close()


@pytest.mark.parametrize("seed", [1, 2])
def test_spans_arriving_in_any_order_in_small_batches_give_the_whole_store_answer(
        rabbitmq_demo_run, tmp_path, seed):
    db = tmp_path / "rearrived.duckdb"
    shutil.copy(rabbitmq_demo_run["db"], db)
    _rearrive(db, seed)
    store = tracekit.open(db, write=True)
    try:
        conn = store.conn
        assert persist.progress(conn).spans_behind > 0
        # One batch at a time, as a collector commits them, and the larger ones in parts.
        batches = conn.execute("SELECT spans FROM ingest_batches ORDER BY batch_id").fetchall()
        chunk = sorted(n for (n,) in batches)[len(batches) // 2]
        result = persist.update(conn, chunk_spans=chunk)
        assert result.chunks > len(batches) and persist.progress(conn).current
        assert result.flows_replaced > 0        # later batches joined flows stored before
        assert_equal_to_batch(conn)
    finally:
        store.close()


def test_a_consumer_arriving_hours_later_joins_its_producers_flow(tmp_path):
    db = tmp_path / "late.duckdb"
    producer, consumer = "a1" * 16, "b2" * 16
    first = write(tmp_path / "first.jsonl", request("checkout", [
        span(producer, "1" * 16, "POST /checkout", kind=2),
        span(producer, "2" * 16, "publish order.placed", parent="1" * 16, kind=4, start_ms=1,
             attributes={"messaging.message.id": "m-7"})]))
    later = write(tmp_path / "later.jsonl", request("shipping", [
        span(consumer, "3" * 16, "process order.placed", kind=5, start_ms=3 * 3600 * 1000,
             links=[(producer, "2" * 16)], attributes={"messaging.message.id": "m-7"})]))
    run_tracekit("import", "--db", str(db), str(first))
    [before] = sql(db, "SELECT flow_id, traces, spans FROM flows")
    run_tracekit("import", "--db", str(db), str(later))
    flows = sql(db, "SELECT flow_id, traces, spans, services FROM flows")
    assert flows == [{"flow_id": before["flow_id"], "traces": 2, "spans": 3,
                      "services": ["checkout", "shipping"]}]
    [wait] = sql(db, "SELECT wait_ms FROM flow_edges WHERE kind = 'message'")
    assert wait["wait_ms"] == pytest.approx(3 * 3600 * 1000 - 1 - 10, abs=0.01)


def test_a_flow_lacking_its_usual_steps_is_running_then_incomplete_as_time_passes(tmp_path):
    db = tmp_path / "quiet.duckdb"

    def order(n: int, steps: int, at_ms: float) -> dict:
        trace = f"{n:032x}"
        spans = [span(trace, f"{n:08x}{0:08x}", "POST /orders", start_ms=at_ms, duration_ms=20)]
        spans += [span(trace, f"{n:08x}{i:08x}", f"step {i}", parent=f"{n:08x}{0:08x}", kind=3,
                       start_ms=at_ms + i, duration_ms=2) for i in range(1, steps + 1)]
        return request("orders", spans)

    write(tmp_path / "orders.jsonl", *[order(n, 3, n * 100) for n in range(1, 6)], order(9, 1, 600))
    run_tracekit("import", "--db", str(db), str(tmp_path / "orders.jsonl"))
    store = tracekit.open(db)
    try:
        [(end_ns,)] = store.conn.sql("SELECT epoch_ns(end_time) FROM flow_rows "
                                     "WHERE flow_id = lpad('9', 32, '0')").fetchall()

        def status(at_ns: int) -> tuple[str, list]:
            return store.conn.sql(f"SELECT status, missing_steps FROM flows_at({at_ns}) "
                                  "WHERE flow_id = lpad('9', 32, '0')").fetchall()[0]

        assert status(end_ns + 10**8) == ("running", ["orders:step 2", "orders:step 3"])
        assert status(end_ns + 2 * 10**9)[0] == "incomplete"
        assert store.scalar("SELECT status FROM flows WHERE flow_id = lpad('9', 32, '0')") == "incomplete"
    finally:
        store.close()


def test_analyze_rebuilds_an_older_store_and_reports_what_it_did(tmp_path):
    db = tmp_path / "old.duckdb"
    write(tmp_path / "spans.jsonl", request("svc", [
        span(f"{t:032x}", f"{t:016x}", "GET /", start_ms=t) for t in range(1, 51)]))
    store = tracekit.open(db, write=True)
    try:
        import_files([tmp_path / "spans.jsonl"], StoreSink(store))   # spans only, no analysis
        assert persist.progress(store.conn).spans_behind == 50
    finally:
        store.close()
    summary = json.loads(run_tracekit("analyze", "--db", str(db), "--json").stdout)
    assert (summary["new_spans"], summary["flows_written"]) == (50, 50)
    again = json.loads(run_tracekit("analyze", "--db", str(db), "--json").stdout)
    assert again["new_spans"] == 0
    rebuilt = json.loads(run_tracekit("analyze", "--db", str(db), "--rebuild", "--verify",
                                      "--json").stdout)
    assert (rebuilt["new_spans"], rebuilt["flows_written"], rebuilt["differences"]) == (50, 50, {})
    assert sql(db, "SELECT count(*) AS n FROM flows") == [{"n": 50}]
    # Tables that no longer match their spans are found, and named.
    store = tracekit.open(db, write=True)
    try:
        store.conn.execute("UPDATE flow_rows SET errors = 7 WHERE flow_id = (SELECT min(flow_id) FROM flow_rows)")
    finally:
        store.close()
    checked = run_tracekit("analyze", "--db", str(db), "--verify", check=False)
    assert checked.returncode == 1 and b"differ from a batch analysis" in checked.stderr
    assert b"flows" in checked.stderr and b"--rebuild" in checked.stderr


def test_a_reader_finding_the_analysis_behind_brings_it_up_to_date_first(tmp_path):
    db = tmp_path / "behind.duckdb"
    write(tmp_path / "spans.jsonl", request("svc", [
        span(f"{t:032x}", f"{t:016x}", "GET /", start_ms=t, error=t % 5 == 0) for t in range(1, 21)]))
    store = tracekit.open(db, write=True)
    try:
        import_files([tmp_path / "spans.jsonl"], StoreSink(store))
    finally:
        store.close()
    flows = json.loads(run_tracekit("flows", "--db", str(db), "--status", "failed", "--json").stdout)
    assert len(flows) == 4 and all(f["status"] == "failed" for f in flows)


def test_hostile_spans_get_their_documented_outcome_and_never_stall_the_analysis(tmp_path):
    db = tmp_path / "hostile.duckdb"
    cycle, self_link, big = "ab" * 16, "cd" * 16, "ef" * 16
    docs = [
        request("a", [span(cycle, "1" * 16, "cycle a", parent="2" * 16),
                      span(cycle, "2" * 16, "cycle b", parent="1" * 16)]),
        request("b", [span(self_link, "3" * 16, "links to itself", links=[(self_link, "3" * 16)])]),
        request("c", [span(big, f"{i + 1:016x}", f"op {i % 7}", parent=f"{i // 2:016x}" if i else None,
                           start_ms=i * 0.01, duration_ms=5) for i in range(100_000)]),
        # 200 traces share one order id: too generic to stitch on (more than 64 traces).
        request("d", [span(f"dd{t:030x}", f"{t + 1:016x}", "checkout",
                           start_ms=t, attributes={"order.id": "o-everyone"}) for t in range(200)]),
    ]
    write(tmp_path / "hostile.jsonl", *docs)
    store = tracekit.open(db, write=True)
    try:
        import_files([tmp_path / "hostile.jsonl"], StoreSink(store))
        result = persist.update(store.conn, chunk_spans=20_000)
        assert result.new_spans == 100_203
        flows = dict(store.conn.sql("SELECT flow_id, spans FROM flows").fetchall())
        assert flows[cycle] == 2 and flows[self_link] == 1 and flows[big] == 100_000
        assert sum(1 for f in flows if f.startswith("dd")) == 200   # not stitched
        # A cycle has no root, so no critical path; the others have theirs.
        on_path = dict(store.conn.sql("SELECT flow_id, count(*) FROM critical_path GROUP BY ALL").fetchall())
        assert cycle not in on_path and on_path[self_link] == 1 and on_path[big] > 0
        assert_equal_to_batch(store.conn)
    finally:
        store.close()


def test_retention_removes_the_flows_of_spans_it_deletes(tmp_path):
    db = tmp_path / "retained.duckdb"
    collector = start_collector(db)
    try:
        write(tmp_path / "old.jsonl", request("svc", [
            span(f"{t:032x}", f"{t:016x}", "GET /old") for t in range(1, 11)]))
        run_tracekit("import", "--db", str(db), str(tmp_path / "old.jsonl"))
        assert sql(db, "SELECT count(*) AS n FROM flows") == [{"n": 10}]
    finally:
        assert collector.stop() == 0
    # Everything received so far is past its age: a collector with --retention deletes it.
    collector = start_collector(db, extra=("--retention", "1s", "--retention-check", "1s"))
    try:
        deadline = time.monotonic() + 60
        while sql(db, "SELECT count(*) AS n FROM spans")[0]["n"]:
            assert time.monotonic() < deadline, "retention did not delete the spans"
            time.sleep(0.2)
        assert sql(db, "SELECT count(*) AS n FROM flows") == [{"n": 0}]
        assert sql(db, "SELECT count(*) AS n FROM flow_spans") == [{"n": 0}]
    finally:
        assert collector.stop() == 0


def test_a_collector_killed_during_analysis_updates_leaves_tables_the_next_start_repairs(
        rabbitmq_demo_run, tmp_path):
    db = tmp_path / "killed.duckdb"
    shutil.copy(rabbitmq_demo_run["db"], db)
    _rearrive(db, seed=3)
    collector = start_collector(db)      # catches up on the backlog in the background
    try:
        deadline = time.monotonic() + 60
        while not sql(db, "SELECT count(*) AS n FROM analysis_progress")[0]["n"]:
            assert time.monotonic() < deadline, "the collector did not start analyzing"
            time.sleep(0.05)
    finally:
        collector.process.send_signal(signal.SIGKILL)
        collector.process.wait(30)
    collector = start_collector(db)
    try:
        assert sql(db, "SELECT count(*) AS n FROM flows")[0]["n"] > 0    # waits for the analyst
    finally:
        assert collector.stop() == 0
    store = tracekit.open(db, write=True)
    try:
        assert persist.progress(store.conn).current
        assert_equal_to_batch(store.conn)
    finally:
        store.close()


def test_a_collector_without_analysis_leaves_it_to_the_first_reader_after_it(tmp_path):
    db = tmp_path / "plain.duckdb"
    collector = start_collector(db, extra=("--no-analysis",))
    try:
        write(tmp_path / "spans.jsonl", request("svc", [
            span(f"{t:032x}", f"{t:016x}", "GET /", start_ms=t) for t in range(1, 6)]))
        run_tracekit("import", "--db", str(db), str(tmp_path / "spans.jsonl"))
        assert sql(db, "SELECT count(*) AS n FROM spans") == [{"n": 5}]
        assert sql(db, "SELECT count(*) AS n FROM flows") == [{"n": 0}]
    finally:
        assert collector.stop() == 0
    result = run_tracekit("flows", "--db", str(db), "--json")
    assert len(json.loads(result.stdout)) == 5
    assert b"analyzing 5 spans" in result.stderr


def test_the_collectors_analysis_takes_chunks_that_fit_its_memory_and_waits_without(
        rabbitmq_demo_run, tmp_path):
    db = tmp_path / "short.duckdb"
    shutil.copy(rabbitmq_demo_run["db"], db)
    _rearrive(db, seed=3)
    store = WritableStore.open(db)
    room = {"mib": 0.0}
    analyst = Analyst(store, room_mib=lambda: room["mib"])
    try:
        conn = store.conn
        assert analyst.chunk_now() == 0
        assert analyst.update_now().new_spans == 0       # no memory to spare: it waits
        assert persist.progress(conn).spans_behind > 0
        [(largest,)] = conn.execute("SELECT max(spans) FROM ingest_batches").fetchall()
        room["mib"] = max(2 * largest, MIN_CHUNK_SPANS) * KIB_PER_SPAN / 1024
        chunk = analyst.chunk_now()
        assert max(2 * largest, MIN_CHUNK_SPANS) - 1 <= chunk < CHUNK_SPANS
        analyst.update_now()
        assert persist.progress(conn).current
        sizes = [n for (n,) in conn.execute("SELECT spans FROM analysis_progress").fetchall()]
        assert len(sizes) > 1 and max(sizes) <= chunk
        assert_equal_to_batch(conn)
    finally:
        store.close()


def test_a_busy_analyst_asks_the_writer_to_commit_between_its_chunks(rabbitmq_demo_run, tmp_path):
    """Spans the writer holds are not analyzed until committed; an analyst working through a
    backlog asks for them between chunks, not only once it is idle (the lag's tail was a
    row group of spans left waiting through a busy stretch)."""
    db = tmp_path / "busy.duckdb"
    shutil.copy(rabbitmq_demo_run["db"], db)
    _rearrive(db, seed=5)
    store = WritableStore.open(db)
    behind_when_asked = []
    analyst = Analyst(store, chunk_spans=MIN_CHUNK_SPANS, commit_every_s=0,
                      commit=lambda: behind_when_asked.append(
                          persist.progress(store.conn.cursor()).spans_behind))
    try:
        assert persist.progress(store.conn).spans_behind > 2 * MIN_CHUNK_SPANS
        analyst.update_now()
        assert persist.progress(store.conn).current
        assert len(behind_when_asked) >= 2 and behind_when_asked[0] > 0
    finally:
        store.close()


def test_the_flows_list_reaches_back_past_the_newest_hour_for_a_full_page(tmp_path):
    db = tmp_path / "sparse.duckdb"
    # One flow a day for ten days, then three in the last minutes: a page of five reaches
    # back over days; the order is newest first either way.
    hours = [24.0 * day for day in range(10)] + [240.0 + m / 60 for m in (1, 2, 3)]
    requests = [request("shop", [span(f"{i:032x}", f"{i:016x}", "GET /home", start_ms=h * 3600e3)])
                for i, h in enumerate(hours, 1)]
    run_tracekit("import", "--db", str(db), str(write(tmp_path / "spans.jsonl", *requests)))
    listed = json.loads(run_tracekit("flows", "--db", str(db), "--limit", "5", "--json").stdout)
    starts = [row["start"] for row in listed]
    assert len(listed) == 5 and starts == sorted(starts, reverse=True)
    every = sql(db, "SELECT flow_id FROM flows ORDER BY start_time DESC, flow_id LIMIT 5")
    assert [row["flow_id"] for row in listed] == [row["flow_id"] for row in every]
    assert len(json.loads(run_tracekit("flows", "--db", str(db), "--limit", "50", "--json").stdout)) == 13


def test_spans_stamped_in_the_future_are_analyzed_like_any_other(tmp_path):
    db = tmp_path / "ahead.duckdb"
    month_ahead_ms = (time.time_ns() - T0) / 1e6 + 30 * 86400e3   # a host's clock a month fast
    requests = [request("shop", [span("c3" * 16, "1" * 16, "GET /now", start_ms=0)]),
                request("warehouse", [span("d4" * 16, "2" * 16, "GET /later", start_ms=month_ahead_ms)])]
    run_tracekit("import", "--db", str(db), str(write(tmp_path / "spans.jsonl", *requests)))
    names = sorted(row["root_name"] for row in sql(db, "SELECT root_name FROM flows"))
    assert names == ["GET /later", "GET /now"]
