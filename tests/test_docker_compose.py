"""docker-compose.yml runs what runs without Docker: the same `tracekit collect`, on a volume,
with OTLP published on the host's loopback only."""

from pathlib import Path

import yaml

from tracekit.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent


def test_compose_runs_the_collector_with_its_store_on_a_volume():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    collector = compose["services"]["collector"]
    assert collector["build"] == "." and (ROOT / "Dockerfile").exists()
    command = collector["command"]
    assert command[:2] == ["tracekit", "collect"]
    args = build_parser().parse_args(command[1:])  # the same CLI accepts it
    assert str(args.db).startswith("/data/")
    assert args.grpc.endswith(":4317") and args.http.endswith(":4318")
    volume, _, mount = collector["volumes"][0].partition(":")
    assert mount == "/data" and volume in compose["volumes"]
    assert sorted(collector["ports"]) == ["127.0.0.1:4317:4317", "127.0.0.1:4318:4318"]
    assert collector["stop_signal"] == "SIGTERM"
