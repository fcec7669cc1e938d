"""The shop as docker-compose runs it: each service in its own process, started with the
command docker-compose.yml gives it, talking through the machine's RabbitMQ."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import yaml

from conftest import require_service, start_collector
from demo_store import rows, unconsumed
from tracekit.demo.services import SERVICE_NAMES
from tracekit.demo.services.base import closed_port

ROOT = Path(__file__).resolve().parent.parent


def compose_commands() -> dict[str, list[str]]:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return {name: spec["command"] for name, spec in compose["services"].items()
            if "demo" in spec.get("profiles", []) and name not in ("rabbitmq", "redis")}


def on_this_machine(command: list[str], port: int, data_dir: Path, namespace: str) -> list[str]:
    """The compose command with the container's addresses swapped for this machine's."""
    local = []
    for arg in command[1:]:
        arg = (arg.replace("0.0.0.0:8080", f"127.0.0.1:{port}").replace("@rabbitmq:", "@127.0.0.1:")
               .replace("redis://redis:6379/0", "redis://127.0.0.1:6379/15"))
        local.append(str(data_dir) if arg == "/data/shop" else arg)
    if "--broker" in local:
        local += ["--namespace", namespace]
    return [sys.executable, "-m", "tracekit.cli", *local]


def wait_for(condition, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def test_compose_entry_points_run_the_shop_as_separate_processes(tmp_path):
    require_service("RabbitMQ", "127.0.0.1", 5672)
    require_service("Redis", "127.0.0.1", 6379)
    db = tmp_path / "store.duckdb"
    collector = start_collector(db)
    commands = compose_commands()
    assert set(commands) == {*SERVICE_NAMES, "load-generator"}
    ports = {name: closed_port() for name in SERVICE_NAMES}
    env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{collector.grpc}",
           "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
           **{f"SHOP_{n.upper().replace('-', '_')}_URL": f"http://127.0.0.1:{p}"
              for n, p in ports.items()}}
    namespace = f"test-{uuid.uuid4().hex[:8]}"
    services = {name: subprocess.Popen(on_this_machine(commands[name], ports[name],
                                                       tmp_path / "shop", namespace),
                                       env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       text=True)
                for name in SERVICE_NAMES}
    try:
        for name, process in services.items():
            line = process.stdout.readline()
            assert line.startswith(f"ready {name} "), f"{name}: {line!r} {process.stderr.read()}"
        traffic = on_this_machine(commands["load-generator"], 0, tmp_path, namespace)
        traffic = traffic[:traffic.index("--duration")] + [
            "--schedule", "healthy:3s,payment-failure:4s,healthy:2s", "--rate", "10"]
        result = subprocess.run(traffic, env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        # Every message published reaches every queue bound to it.
        wait_for(lambda: rows(db, "SELECT count(*) AS n FROM spans WHERE kind = 'CONSUMER'")[0]["n"]
                 and not unconsumed(db), 60, "the queues to drain")
    finally:
        for process in services.values():
            process.send_signal(signal.SIGTERM)
        codes = {name: process.wait(timeout=60) for name, process in services.items()}
        assert collector.stop() == 0
    assert codes == dict.fromkeys(SERVICE_NAMES, 0)

    processes = rows(db, """SELECT service_name,
                                   any_value(resource_attributes['service.instance.id']::VARCHAR) AS instance
                            FROM spans GROUP BY ALL""")
    assert {p["service_name"] for p in processes} == {*SERVICE_NAMES, "load-generator"}
    assert len({p["instance"] for p in processes}) == len(processes)   # one process each
    # The scenario switched in the traffic process reached the payment process through /_flags.
    faults = rows(db, "SELECT service, count(*) AS n FROM demo_faults WHERE scenario = 'payment-failure' GROUP BY ALL")
    assert faults and faults[0]["service"] == "payment" and faults[0]["n"] > 0
    linked = rows(db, """SELECT DISTINCT c.service_name AS consumer, p.service_name AS producer
                         FROM spans c, unnest(c.links) AS l(link)
                         JOIN spans p ON p.trace_id = link.trace_id AND p.span_id = link.span_id""")
    assert {("inventory", "checkout"), ("payment", "inventory"), ("shipping", "payment")} <= {
        (r["consumer"], r["producer"]) for r in linked}
    # fraud-detection keeps its counters in Redis there, as compose configures it.
    redis = rows(db, """SELECT count(*) AS n FROM spans s JOIN spans p
                          ON p.trace_id = s.trace_id AND p.span_id = s.parent_span_id
                        WHERE s.service_name = 'fraud-detection' AND s.kind = 'CLIENT'
                          AND s.name IN ('INCR', 'EXPIRE') AND p.name = 'score order'""")
    assert redis[0]["n"] > 0
