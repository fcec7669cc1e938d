"""An acknowledged export is on disk: kill -9 the collector mid-stream, restart, count."""

from __future__ import annotations

import os
import random
import select
import signal
import threading
import time
import urllib.error
import urllib.request

from pathlib import Path

from tests.conftest import sql, start_collector
from tests.otlp_payloads import log_request, trace_request
from tests.process_memory import descendants


KILLS = 10
SENDERS = 12
SPANS_PER_REQUEST = 500


def _bodies(count: int) -> list[tuple[bytes, list[str]]]:
    """Encoded export requests and their span ids, made before the clock starts."""
    requests = [trace_request(SPANS_PER_REQUEST, service="durable") for _ in range(count)]
    return [(r.SerializeToString(), [s.span_id.hex() for s in r.resource_spans[0].scope_spans[0].spans])
            for r in requests]


def _send_until_refused(address: str, bodies: list, acknowledged: list[str],
                        stop: threading.Event, lock: threading.Lock, outcomes: list) -> None:
    while not stop.is_set():
        with lock:
            if not bodies:
                return
            body, span_ids = bodies.pop()
        try:
            with urllib.request.urlopen(urllib.request.Request(
                    f"http://{address}/v1/traces", data=body,
                    headers={"Content-Type": "application/x-protobuf"}), timeout=30) as response:
                if response.status != 200:
                    continue
        except urllib.error.HTTPError as refused:     # 503: retry later, as exporters do
            outcomes.append(refused.code)
            stop.wait(float(refused.headers.get("Retry-After", 1)))
            continue
        except (urllib.error.URLError, ConnectionError, OSError):
            return                                     # killed
        with lock:
            acknowledged.extend(span_ids)


def test_acknowledged_spans_survive_ten_kill_9_at_random_moments_under_sustained_ingest(tmp_path):
    db = tmp_path / "store.duckdb"
    rng = random.Random(7)
    bodies = _bodies(1200)
    acknowledged: list[str] = []
    lock = threading.Lock()
    restarts, rates, outcomes = [], [], []
    for _ in range(KILLS):
        started = time.monotonic()
        collector = start_collector(db)
        restarts.append(time.monotonic() - started)
        stop = threading.Event()
        senders = [threading.Thread(target=_send_until_refused,
                                    args=(collector.http, bodies, acknowledged, stop, lock, outcomes))
                   for _ in range(SENDERS)]
        before, began = len(acknowledged), time.monotonic()
        for sender in senders:
            sender.start()
        # A random moment of the ingest: not aligned with commits, checkpoints or requests.
        stop.wait(rng.uniform(1.0, 3.0))
        with lock:
            rates.append((len(acknowledged) - before, time.monotonic() - began))
        collector.process.send_signal(signal.SIGKILL)
        collector.process.wait(10)
        stop.set()
        for sender in senders:
            sender.join(30)

    started = time.monotonic()
    collector = start_collector(db)
    restarts.append(time.monotonic() - started)
    try:
        stored = {row["span_id"] for row in sql(db, "SELECT span_id FROM spans")}
        missing = set(acknowledged) - stored
        assert not missing, f"{len(missing)} of {len(acknowledged)} acknowledged spans lost"
        rate = sum(n for n, _ in rates) / sum(t for _, t in rates)
        assert rate >= 10_000, f"ingest while killed: {rates} (spans, s); refusals {outcomes}"
        assert max(restarts) < 10, restarts
        print(f"\n{KILLS} kills: {len(acknowledged)} spans acknowledged, all stored; ingest "
              f"{rate:.0f} spans/s; restarts {[round(r, 1) for r in restarts]} s; "
              f"{len(outcomes)} refusals")
    finally:
        assert collector.stop() == 0


def test_batches_sent_five_times_across_kills_are_stored_once(tmp_path):
    db = tmp_path / "store.duckdb"
    bodies = _bodies(20)
    for attempt in range(5):
        collector = start_collector(db)
        for body, _ in bodies:
            with urllib.request.urlopen(urllib.request.Request(
                    f"http://{collector.http}/v1/traces", data=body,
                    headers={"Content-Type": "application/x-protobuf"}), timeout=30) as response:
                assert response.status == 200
        collector.process.send_signal(signal.SIGKILL)   # no clean stop: the log replays
        collector.process.wait(10)
    collector = start_collector(db)
    try:
        [row] = sql(db, "SELECT count(*) AS spans, count(DISTINCT (trace_id, span_id)) AS distinct_spans FROM spans")
        assert row == {"spans": 20 * SPANS_PER_REQUEST, "distinct_spans": 20 * SPANS_PER_REQUEST}
    finally:
        assert collector.stop() == 0


def test_sigterm_drains_and_exits_zero_leaving_no_endpoint_file(tmp_path):
    db = tmp_path / "store.duckdb"
    collector = start_collector(db)
    endpoint_file = tmp_path / "store.duckdb.collector.json"
    assert endpoint_file.exists()
    with urllib.request.urlopen(urllib.request.Request(
            f"http://{collector.http}/v1/traces", data=trace_request(10).SerializeToString(),
            headers={"Content-Type": "application/x-protobuf"}), timeout=30) as response:
        assert response.status == 200
    assert collector.stop() == 0
    assert not endpoint_file.exists()
    assert sql(db, "SELECT count(*) AS n FROM spans")[0]["n"] == 10


def _decode_workers(pid: int) -> list[int]:
    """The collector's decode worker processes, by the name they give themselves (the
    analysis worker is a child too; a short-lived child may be gone already)."""
    workers = []
    for child in descendants(pid):
        try:
            if Path(f"/proc/{child}/comm").read_text().strip() == "tracekit-decode":
                workers.append(child)
        except OSError:
            continue
    return workers


def test_decode_workers_exit_when_the_collector_is_killed(tmp_path):
    collector = start_collector(tmp_path / "store.duckdb")
    workers = descendants(collector.process.pid)
    assert workers, "the collector decodes in worker processes"
    exits = [os.pidfd_open(pid) for pid in workers]  # readable once that process has exited
    collector.process.send_signal(signal.SIGKILL)
    collector.process.wait(10)
    try:
        waiting, deadline = list(exits), time.monotonic() + 20
        while waiting and time.monotonic() < deadline:
            ready, _, _ = select.select(waiting, [], [], deadline - time.monotonic())
            waiting = [fd for fd in waiting if fd not in ready]
        assert not waiting, f"{len(waiting)} decode workers outlived the collector"
    finally:
        for fd in exits:
            os.close(fd)


def test_a_killed_decode_worker_is_replaced(tmp_path):
    # Logs are decoded in a worker (trace requests the compiled decoders cover, in the
    # collector's own process).
    collector = start_collector(tmp_path / "store.duckdb")
    try:
        workers = _decode_workers(collector.process.pid)
        os.kill(workers[0], signal.SIGKILL)
        statuses = []
        for attempt in range(5):  # the first export may be refused (503: retry); then all succeed
            # Each attempt its own records: an identical re-send would be stored once.
            request = urllib.request.Request(
                f"http://{collector.http}/v1/logs",
                data=log_request(10, service=f"after-kill-{attempt}").SerializeToString(),
                headers={"Content-Type": "application/x-protobuf"})
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    statuses.append(response.status)
            except urllib.error.HTTPError as exc:
                statuses.append(exc.code)
        assert set(statuses) <= {200, 503} and statuses[-3:] == [200, 200, 200]
        assert sql(collector.db, "SELECT count(*) AS n FROM logs")[0]["n"] == 10 * statuses.count(200)
    finally:
        assert collector.stop() == 0


def test_trace_exports_the_compiled_decoders_cover_need_no_decode_worker(tmp_path):
    # Decoding an SDK's trace request in the collector's own process costs less than sending
    # it to a worker and its rows back; a worker killed meanwhile costs these exports nothing.
    from tests.otlp_payloads import otlp_json
    import json

    collector = start_collector(tmp_path / "store.duckdb")
    try:
        for pid in _decode_workers(collector.process.pid):
            os.kill(pid, signal.SIGKILL)
        for content_type, body in (
                ("application/x-protobuf", trace_request(5, service="pb").SerializeToString()),
                ("application/json", json.dumps(otlp_json(trace_request(5, service="json"))).encode())):
            request = urllib.request.Request(f"http://{collector.http}/v1/traces", data=body,
                                             headers={"Content-Type": content_type})
            with urllib.request.urlopen(request, timeout=30) as response:
                assert response.status == 200
        assert sql(collector.db, "SELECT count(*) AS n FROM spans")[0]["n"] == 10
    finally:
        assert collector.stop() == 0


def test_decode_workers_decode_without_loading_pandas(tmp_path):
    # pyarrow loads pandas the first time it converts a Python list, if it can: ~45 MiB in
    # every decode worker, which never needs it.
    from tests.otlp_payloads import otlp_json
    import json

    collector = start_collector(tmp_path / "store.duckdb")
    try:
        for path, content_type, body in (   # logs are decoded in a worker
                ("logs", "application/x-protobuf", log_request(5, service="pb").SerializeToString()),
                ("logs", "application/json", json.dumps(otlp_json(log_request(5, service="json"))).encode())):
            request = urllib.request.Request(f"http://{collector.http}/v1/{path}", data=body,
                                             headers={"Content-Type": content_type})
            with urllib.request.urlopen(request, timeout=30) as response:
                assert response.status == 200
        assert sql(collector.db, "SELECT count(*) AS n FROM logs")[0]["n"] == 10
        workers = _decode_workers(collector.process.pid)
        assert workers
        for pid in workers:
            assert "/pandas/" not in Path(f"/proc/{pid}/maps").read_text()
    finally:
        assert collector.stop() == 0


def test_decode_workers_can_be_set_on_the_command_line(tmp_path):
    collector = start_collector(tmp_path / "store.duckdb", extra=("--decode-workers", "2"))
    try:
        # Both workers are started before the collector listens, but one may still be in its
        # initializer, which gives it its name, when the collector is ready.
        deadline = time.monotonic() + 30
        while len(workers := _decode_workers(collector.process.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(workers) == 2
        request = urllib.request.Request(
            f"http://{collector.http}/v1/traces", data=trace_request(5, service="two-workers").SerializeToString(),
            headers={"Content-Type": "application/x-protobuf"})
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200
    finally:
        assert collector.stop() == 0
    assert sql(collector.db, "SELECT count(*) AS n FROM spans WHERE service_name = 'two-workers'") == [{"n": 5}]
