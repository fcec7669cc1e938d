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
    assert args.zipkin.endswith(":9411")
    volume, _, mount = collector["volumes"][0].partition(":")
    assert mount == "/data" and volume in compose["volumes"]
    assert sorted(collector["ports"]) == ["127.0.0.1:4317:4317", "127.0.0.1:4318:4318",
                                          "127.0.0.1:9411:9411"]
    assert collector["stop_signal"] == "SIGTERM"


def _compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_runs_every_demo_service_from_the_project_image():
    from tracekit.demo.services import SERVICE_NAMES

    compose = _compose()
    services = {name: spec for name, spec in compose["services"].items()
                if "lake" not in spec.get("profiles", [])}
    assert {*SERVICE_NAMES, "load-generator", "rabbitmq", "redis", "collector"} == set(services)
    for name in [*SERVICE_NAMES, "load-generator"]:
        spec = services[name]
        assert spec["image"] == services["collector"]["image"]   # the image the collector builds
        assert spec["profiles"] == ["demo"]
        command = spec["command"]
        assert command[0] == "tracekit"
        args = build_parser().parse_args(command[1:])      # a command this project has
        assert args.command == "demo"
        if name == "load-generator":
            assert args.demo_command == "traffic"
        else:
            assert (args.demo_command, args.name) == ("service", name)
            assert args.listen == "0.0.0.0:8080"
            assert str(args.data_dir) == "/data/shop"
            volume, _, mount = spec["volumes"][0].partition(":")
            assert mount == "/data/shop" and volume in compose["volumes"]
            if args.broker:
                assert args.broker.startswith("amqp://") and "@rabbitmq:5672" in args.broker
        env = spec["environment"]
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://collector:4317"
        assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "grpc"
        assert env["OTEL_SERVICE_NAME"] == name
        assert "deployment.environment.name=" in env["OTEL_RESOURCE_ATTRIBUTES"]
        for peer in SERVICE_NAMES:   # every peer reachable by its compose name
            assert env[f"SHOP_{peer.upper().replace('-', '_')}_URL"] == f"http://{peer}:8080"
        assert "collector" in spec["depends_on"]
    assert services["frontend"]["ports"] == ["127.0.0.1:8080:8080"]
    rabbit = services["rabbitmq"]
    assert rabbit["image"].startswith("rabbitmq:") and "127.0.0.1:5672:5672" in rabbit["ports"]
    assert "healthcheck" in rabbit
    assert set(services["load-generator"]["depends_on"]) >= set(SERVICE_NAMES)
    fraud = build_parser().parse_args(services["fraud-detection"]["command"][1:])
    assert fraud.redis == "redis://redis:6379/0" and "redis" in services["fraud-detection"]["depends_on"]
    assert services["redis"]["image"].startswith("redis:")


def test_the_image_holds_everything_the_demo_imports():
    dockerfile = (ROOT / "Dockerfile").read_text()
    for folder in ("tracekit", "collectors", "tui"):
        assert f"COPY {folder} ./{folder}" in dockerfile
    assert "pip install --no-cache-dir ." in dockerfile


def test_compose_lake_profile_runs_two_collectors_into_one_lake_on_its_postgresql():
    compose = _compose()
    services = compose["services"]
    postgres = services["lake-postgres"]
    assert postgres["profiles"] == ["lake"] and postgres["image"].startswith("postgres:")
    assert "healthcheck" in postgres
    collectors = [services["lake-collector-a"], services["lake-collector-b"]]
    lakes, stores, ports = set(), set(), set()
    for spec in collectors:
        assert spec["profiles"] == ["lake"]
        assert spec["image"] == services["collector"]["image"]
        args = build_parser().parse_args(spec["command"][1:])
        assert args.command == "collect" and args.lake.startswith("postgresql://")
        assert "@lake-postgres:5432/" in args.lake and spec["depends_on"]["lake-postgres"]
        lakes.add(args.lake)
        mounts = dict(reversed(v.split(":", 1)) for v in spec["volumes"])
        assert set(mounts.values()) <= set(compose["volumes"])
        assert args.lake.endswith(f"warehouse={'/lake'}") and "/lake" in mounts
        stores.add(mounts["/data"])
        ports.update(spec["ports"])
    assert len(lakes) == 1, "both collectors write the same lake"
    assert len(stores) == 2, "each collector keeps its own store"
    assert len(ports) == 4 and all(port.startswith("127.0.0.1:") for port in ports)
