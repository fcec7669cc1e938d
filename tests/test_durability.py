"""An acknowledged export is on disk: kill -9 the collector mid-stream, restart, count."""

from __future__ import annotations

import os
import select
import signal
import threading
import time
import urllib.error
import urllib.request

from pathlib import Path

from tests.conftest import sql, start_collector
from tests.otlp_payloads import trace_request


def _send_until_refused(address: str, acknowledged: list[str], stop: threading.Event,
                        progress: threading.Condition) -> None:
    while not stop.is_set():
        request = trace_request(200, service="durable")
        body = request.SerializeToString()
        try:
            with urllib.request.urlopen(urllib.request.Request(
                    f"http://{address}/v1/traces", data=body,
                    headers={"Content-Type": "application/x-protobuf"}), timeout=30) as response:
                if response.status != 200:
                    continue
        except (urllib.error.URLError, ConnectionError, OSError):
            return
        with progress:
            acknowledged.extend(span.span_id.hex() for span in request.resource_spans[0].scope_spans[0].spans)
            progress.notify_all()


def test_acknowledged_spans_survive_kill_9_and_restart(tmp_path):
    db = tmp_path / "store.duckdb"
    acknowledged: list[str] = []
    for _ in range(3):
        collector = start_collector(db)
        stop = threading.Event()
        progress = threading.Condition()
        senders = [threading.Thread(target=_send_until_refused,
                                    args=(collector.http, acknowledged, stop, progress))
                   for _ in range(3)]
        target = len(acknowledged) + 2000
        for sender in senders:
            sender.start()
        with progress:  # kill while the senders are mid-stream
            assert progress.wait_for(lambda: len(acknowledged) >= target, timeout=60)
        collector.process.send_signal(signal.SIGKILL)
        collector.process.wait(10)
        stop.set()
        for sender in senders:
            sender.join(30)

    started = time.monotonic()
    collector = start_collector(db)
    restart_s = time.monotonic() - started
    try:
        stored = {row["span_id"] for row in sql(db, "SELECT span_id FROM spans")}
        missing = set(acknowledged) - stored
        assert len(acknowledged) >= 6000
        assert not missing, f"{len(missing)} acknowledged spans lost"
        assert restart_s < 10
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


def _descendants(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            found |= {int(child)} | _descendants(int(child))
    return found


def test_decode_workers_exit_when_the_collector_is_killed(tmp_path):
    collector = start_collector(tmp_path / "store.duckdb")
    workers = _descendants(collector.process.pid)
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
    collector = start_collector(tmp_path / "store.duckdb")
    try:
        workers = [pid for pid in _descendants(collector.process.pid)
                   if "spawn_main" in Path(f"/proc/{pid}/cmdline").read_text()]
        os.kill(workers[0], signal.SIGKILL)
        statuses = []
        for _ in range(5):  # the first export may be refused (503: retry); then all succeed
            request = urllib.request.Request(
                f"http://{collector.http}/v1/traces", data=trace_request(10, service="after-kill").SerializeToString(),
                headers={"Content-Type": "application/x-protobuf"})
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    statuses.append(response.status)
            except urllib.error.HTTPError as exc:
                statuses.append(exc.code)
        assert set(statuses) <= {200, 503} and statuses[-3:] == [200, 200, 200]
        assert sql(collector.db, "SELECT count(*) AS n FROM spans")[0]["n"] == 10 * statuses.count(200)
    finally:
        assert collector.stop() == 0
