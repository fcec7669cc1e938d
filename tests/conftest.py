"""Shared fixtures: a real `tracekit collect` process on a temporary store, and `tracekit sql`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

TRACEKIT = [sys.executable, "-m", "tracekit.cli"]


@dataclass
class RunningCollector:
    db: Path
    grpc: str
    http: str
    process: subprocess.Popen
    zipkin: str = ""    # the Zipkin receiver's address, when started with --zipkin

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout)


def start_collector(db: Path, grpc: str = "127.0.0.1:0", http: str = "127.0.0.1:0",
                    extra: tuple[str, ...] = ()) -> RunningCollector:
    """Start `tracekit collect` and wait for the line that says it is ready."""
    process = subprocess.Popen(
        [*TRACEKIT, "collect", "--db", str(db), "--grpc", grpc, "--http", http, *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    addresses = {}
    for line in process.stdout:
        kind, _, value = line.strip().partition(" ")
        addresses[kind] = value
        if kind == "ready":
            break
    else:
        raise AssertionError(f"collector exited before ready: {process.stderr.read()}")
    return RunningCollector(db, addresses["otlp-grpc"], addresses["otlp-http"], process,
                            addresses.get("zipkin", ""))


@pytest.fixture
def collector(tmp_path):
    running = start_collector(tmp_path / "store.duckdb")
    yield running
    if running.process.poll() is None:
        assert running.stop() == 0, running.process.stderr.read()


def tracekit(*args: str, check: bool = True, input: bytes | None = None,
             timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the tracekit CLI and capture its output."""
    result = subprocess.run([*TRACEKIT, *args], capture_output=True, input=input, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"tracekit {' '.join(args)} exited {result.returncode}: "
                             f"{result.stderr.decode()}")
    return result


def sql(db: Path, query: str) -> list[dict]:
    """Rows of `tracekit sql --format json`."""
    return json.loads(tracekit("sql", "--db", str(db), "--format", "json", query).stdout)


def require_service(name: str, host: str, port: int) -> None:
    """Skip when a local service is down, but fail loudly in CI, where it must run."""
    import socket

    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError as exc:
        message = f"{name} is not reachable on {host}:{port} ({exc})"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI needs it running")
        pytest.skip(message)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


RABBITMQ = "amqp://guest:guest@127.0.0.1:5672/"


@pytest.fixture(scope="session")
def rabbitmq_demo_run(tmp_path_factory):
    """One demo run against the machine's RabbitMQ through every fault scenario, each between
    healthy stretches (so effects do not spill into the next scenario): the test bed of the
    demo's own tests and of the analyzer's."""
    import uuid

    from tracekit.demo.faults import FAULT_SCENARIOS

    require_service("RabbitMQ", "127.0.0.1", 5672)
    folder = tmp_path_factory.mktemp("demo")
    db, truth = folder / "shop.duckdb", folder / "ground-truth.json"
    schedule = ",".join(["healthy:6s", *(f"{name}:4s,healthy:3s" for name in FAULT_SCENARIOS)])
    result = tracekit("demo", "--headless", "--json", "--db", str(db), "--rate", "15",
                      "--schedule", schedule, "--broker", RABBITMQ,
                      "--namespace", f"test-{uuid.uuid4().hex[:8]}", "--ground-truth", str(truth),
                      timeout=600)
    return {"db": db, "truth": json.loads(truth.read_text()), "summary": json.loads(result.stdout)}
