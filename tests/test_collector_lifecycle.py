"""The collector's lifecycle: one writer per store, clean stops, loud wide binds."""

from __future__ import annotations

import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import TRACEKIT, sql, start_collector
from tests.otel_clients import pipeline
from tests.process_memory import descendants
from tests.otlp_payloads import trace_request


def test_a_second_collector_on_the_same_store_exits_at_once_naming_the_holder(collector):
    started = time.monotonic()
    second = subprocess.run([*TRACEKIT, "collect", "--db", str(collector.db),
                             "--grpc", "127.0.0.1:0", "--http", "127.0.0.1:0"],
                            capture_output=True, text=True, timeout=60)
    assert second.returncode == 1
    assert f"process {collector.process.pid}" in second.stderr
    assert time.monotonic() - started < 10
    assert collector.process.poll() is None  # the first one is untouched


def test_a_clean_stop_leaves_nothing_to_replay(tmp_path):
    running = start_collector(tmp_path / "store.duckdb")
    with urllib.request.urlopen(urllib.request.Request(
            f"http://{running.http}/v1/traces", data=trace_request(50).SerializeToString(),
            headers={"Content-Type": "application/x-protobuf"}), timeout=30) as response:
        assert response.status == 200
    started = time.monotonic()
    assert running.stop() == 0
    assert time.monotonic() - started < 10
    wal = Path(f"{running.db}.wal")
    assert not wal.exists() or wal.stat().st_size == 0, "everything was checkpointed"


def test_listening_beyond_loopback_logs_a_warning(tmp_path):
    running = start_collector(tmp_path / "store.duckdb", http="0.0.0.0:0")
    assert running.stop() == 0
    log = running.process.stderr.read()
    assert "0.0.0.0" in log and "beyond localhost" in log


def test_bad_addresses_and_busy_ports_get_a_message_not_a_traceback(collector, tmp_path):
    bad = subprocess.run([*TRACEKIT, "collect", "--db", str(tmp_path / "a.duckdb"), "--grpc", "nonsense"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "HOST:PORT" in bad.stderr and "Traceback" not in bad.stderr
    busy = subprocess.run([*TRACEKIT, "collect", "--db", str(tmp_path / "b.duckdb"),
                           "--grpc", "127.0.0.1:0", "--http", collector.http],
                          capture_output=True, text=True, timeout=60)
    assert busy.returncode == 1 and "cannot listen" in busy.stderr and "Traceback" not in busy.stderr


def test_sigterm_during_a_long_query_still_stops_cleanly_and_quickly(tmp_path):
    import threading

    import tracekit
    from tracekit.errors import QueryError

    running = start_collector(tmp_path / "store.duckdb")
    outcome: list = []

    def long_query() -> None:
        try:
            with tracekit.open(running.db, timeout_s=600) as store:
                store.arrow("SELECT count(*) FROM range(10000000000000) a")
        except QueryError as exc:
            outcome.append(str(exc))

    reader = threading.Thread(target=long_query)
    cpu_before = _cpu_ticks(running.process.pid)
    reader.start()
    deadline = time.monotonic() + 30   # the query is running once the idle collector burns CPU
    while _cpu_ticks(running.process.pid) - cpu_before < 30 and time.monotonic() < deadline:
        time.sleep(0.05)
    started = time.monotonic()
    assert running.stop() == 0
    assert time.monotonic() - started < 10
    reader.join(30)
    assert outcome and "shutting down" in outcome[0]
    assert "Traceback" not in running.process.stderr.read()


def _cpu_ticks(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return int(stat[11]) + int(stat[12])


def test_ipv6_loopback_addresses_are_printed_in_brackets_and_work(tmp_path):
    import socket

    import pytest

    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError as exc:
        pytest.skip(f"this machine has no IPv6 loopback: {exc}")
    running = start_collector(tmp_path / "store.duckdb", grpc="[::1]:0", http="[::1]:0")
    try:
        assert running.http.startswith("[::1]:") and running.grpc.startswith("[::1]:")
        with urllib.request.urlopen(urllib.request.Request(
                f"http://{running.http}/v1/traces", data=trace_request(2).SerializeToString(),
                headers={"Content-Type": "application/x-protobuf"}), timeout=30) as response:
            assert response.status == 200
    finally:
        assert running.stop() == 0


def test_sigterm_under_sustained_ingest_drains_commits_and_checkpoints_within_10_s(tmp_path):
    import threading

    from tests.test_durability import _bodies, _send_until_refused

    running = start_collector(tmp_path / "store.duckdb")
    bodies, acknowledged, outcomes = _bodies(300), [], []
    lock, stop = threading.Lock(), threading.Event()
    senders = [threading.Thread(target=_send_until_refused,
                                args=(running.http, bodies, acknowledged, stop, lock, outcomes))
               for _ in range(8)]
    for sender in senders:
        sender.start()
    deadline = time.monotonic() + 60
    while len(acknowledged) < 20_000 and time.monotonic() < deadline:   # ingest is under way
        stop.wait(0.05)
    started = time.monotonic()
    running.process.send_signal(signal.SIGTERM)
    code = running.process.wait(30)
    took = time.monotonic() - started
    stop.set()
    for sender in senders:
        sender.join(30)
    assert code == 0 and took < 10, f"exit {code} after {took:.1f} s"
    wal = Path(f"{running.db}.wal")
    assert not wal.exists() or wal.stat().st_size == 0, "everything was checkpointed"
    stored = {row["span_id"] for row in sql(running.db, "SELECT span_id FROM spans")}
    assert acknowledged and set(acknowledged) <= stored


def _os_thread_names(pid: int) -> set[str]:
    names = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            names.add((task / "comm").read_text().strip())
        except OSError:   # a thread that ended meanwhile
            continue
    return names


def _descendant_names(pid: int) -> set[str]:
    names = set()
    for child in descendants(pid):
        try:
            names.add(Path(f"/proc/{child}/comm").read_text().strip())
        except OSError:   # a process that ended meanwhile
            continue
    return names


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads thread names from Linux's /proc")
def test_the_collectors_threads_and_workers_carry_their_names_for_top_ps_and_perf(collector):
    # A span and a log over OTLP/gRPC, acknowledged; then a query through the collector,
    # which waits for the mover to store them: every thread below has run by then.
    sdk = pipeline("named-threads", "grpc", collector.grpc)
    with sdk.tracer.start_as_current_span("work"):
        sdk.logger.info("decoded in a worker")
    sdk.flush()
    sdk.shutdown()
    assert sql(collector.db, "SELECT count(*) AS n FROM spans")[0]["n"] == 1

    threads = _os_thread_names(collector.process.pid)
    assert {"tracekit-intake", "tracekit-mover", "tracekit-memory"} <= threads, threads
    assert any(name.startswith("otlp-grpc_") for name in threads), threads
    assert any(name.startswith("tracekit-sql_") for name in threads), threads
    assert "tracekit-decode" in _descendant_names(collector.process.pid)
