"""`tracekit demo`: a collector, the shop and its traffic, and what they recorded.

Also the entry points docker-compose runs, one per container: `tracekit demo service NAME`
and `tracekit demo traffic`.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tracekit.errors import TracekitError

GROUND_TRUTH_QUERIES = {
    "scenarios": "SELECT * FROM demo_scenarios ORDER BY started_at",
    "faults": "SELECT * FROM demo_faults ORDER BY \"timestamp\"",
    "flows": "SELECT * FROM demo_flows ORDER BY \"timestamp\"",
}


IN_PROCESS_CAPACITY = 50   # flows/s with flat latencies, measured by benchmarks/demo.py


class LocalCollector:
    """`tracekit collect` in a child process on free localhost ports."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tracekit", "collect", "--db", str(db),
             "--grpc", "127.0.0.1:0", "--http", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        addresses = {}
        for line in self.process.stdout:
            kind, _, value = line.strip().partition(" ")
            addresses[kind] = value
            if kind == "ready":
                break
        else:
            self.process.wait()
            raise TracekitError(f"the collector did not start: {self.process.stderr.read().strip()}")
        self.grpc = addresses["otlp-grpc"]
        self.http = addresses["otlp-http"]

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait()


@dataclass
class DemoOptions:
    db: Path
    duration_s: float | None
    headless: bool
    scenario: str | None
    schedule: str | None
    rate: float
    broker: str | None
    namespace: str
    otlp_endpoint: str | None
    otlp_protocol: str | None
    ground_truth: Path | None
    json: bool
    redis: str | None = None


def _schedule(opts: DemoOptions):
    from tracekit.demo.traffic import default_schedule, parse_schedule, tour

    if opts.schedule:
        return parse_schedule(opts.schedule)
    if opts.duration_s is None:   # until Ctrl-C: a minute of each fault, a minute healthy between
        return tour(60.0) if opts.scenario is None else [
            step for _ in range(100) for step in default_schedule(180.0, opts.scenario)]
    return default_schedule(opts.duration_s, opts.scenario)


def _count_spans(db: Path) -> int | None:
    import tracekit

    try:
        with tracekit.open(db, timeout_s=5) as store:
            return store.scalar("SELECT count(*) FROM span_rows")
    except Exception:   # a live figure only; the final summary reports errors
        return None


def read_ground_truth(db: Path) -> dict:
    import tracekit

    with tracekit.open(db) as store:
        return {key: store.arrow(query).to_pylist() for key, query in GROUND_TRUTH_QUERIES.items()}


async def _run(opts: DemoOptions, schedule, target, collector: LocalCollector | None) -> dict:
    from tracekit.demo.shop import Shop
    from tracekit.demo.telemetry import ServiceTelemetry
    from tracekit.demo.traffic import FlagsControl, Traffic

    shop = Shop(target, opts.broker, opts.namespace, redis_url=opts.redis)
    try:
        await shop.start()
    except ConnectionError as exc:
        raise TracekitError(str(exc)) from exc
    load = ServiceTelemetry("load-generator", target)
    traffic = Traffic(load, shop.ground_truth, shop.frontend_url, opts.rate,
                      FlagsControl(shop.flags))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    say = (lambda line: print(line, file=sys.stderr, flush=True))
    if opts.rate > IN_PROCESS_CAPACITY:
        say(f"tracekit demo: note: on a 2-core machine the in-process shop keeps up with about "
            f"{IN_PROCESS_CAPACITY} flows/s (benchmarks/demo.py); above that its latencies "
            "measure its own CPU starvation. Run the services as separate processes "
            "(docker compose --profile demo) on more cores for higher rates.")
    say(f"tracekit demo: shop at {shop.frontend_url}, broker {shop.broker.address}, "
        f"{opts.rate:g} flows/s; schedule "
        + ", ".join(f"{s.scenario} {s.seconds:g}s" for s in schedule[:12])
        + (" ..." if len(schedule) > 12 else ""))
    started = time.monotonic()
    run = asyncio.create_task(traffic.run(schedule, stop))
    try:
        while not run.done():
            await asyncio.wait({run}, timeout=2.0)
            s = traffic.stats
            spans = (await asyncio.to_thread(_count_spans, opts.db)) if collector else None
            say(f"[{time.monotonic() - started:5.0f}s] {s.scenario:<20} flows started "
                f"{sum(s.started.values()):>6}  ok {sum(s.succeeded.values()):>6}  failed "
                f"{sum(s.failed.values()):>5}" + (f"  spans stored {spans:,}" if spans is not None else ""))
        stats = run.result()
        left = await shop.drain()
        if left:
            say(f"tracekit demo: {left} messages were still queued at the end")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await shop.stop()
        await asyncio.to_thread(load.flush)
        load.shutdown()
    return {"stats": stats.as_dict(), "elapsed_s": round(time.monotonic() - started, 1),
            "broker": shop.broker.address, "rate": opts.rate}


def run_demo(opts: DemoOptions) -> int:
    from tracekit.demo.broker import check_url
    from tracekit.demo.telemetry import OtlpTarget

    schedule = _schedule(opts)   # bad options fail here, before anything starts
    check_url(opts.broker)
    collector = None
    if opts.otlp_endpoint:
        target = OtlpTarget(opts.otlp_endpoint, opts.otlp_protocol)
    else:
        collector = LocalCollector(opts.db)
        target = OtlpTarget(f"http://{collector.grpc}", "grpc")
    try:
        summary = asyncio.run(_run(opts, schedule, target, collector))
        if collector is not None:
            truth = read_ground_truth(opts.db)
            summary["store"] = str(opts.db)
            summary["scenarios_recorded"] = sorted({r["scenario"] for r in truth["scenarios"]})
            summary["faults_recorded"] = len(truth["faults"])
            if opts.ground_truth:
                opts.ground_truth.write_text(json.dumps(truth, default=str, indent=2))
                summary["ground_truth"] = str(opts.ground_truth)
    finally:
        if collector is not None:
            collector.stop()
    if opts.json:
        print(json.dumps(summary, indent=2, default=str))
        return 0
    stats = summary["stats"]
    print(f"flows started   {stats['started']}")
    print(f"flows failed    {stats['failed']}")
    if collector is not None:
        print(f"scenarios       {', '.join(summary['scenarios_recorded'])}")
        print(f"store           {opts.db}")
        print("\nLook at it:")
        print(f"  tracekit tui --db {opts.db}")
        print(f"  tracekit report --db {opts.db} --since 5m")
        print(f"  tracekit flows --db {opts.db} --status failed")
        print(f"  tracekit causes --db {opts.db} --since 1m")
        print(f"  tracekit sql --db {opts.db} \"SELECT service_name, count(*) AS spans, "
              "count(*) FILTER (status_code = 'ERROR') AS errors FROM spans GROUP BY ALL ORDER BY 2 DESC\"")
        print(f"  tracekit sql --db {opts.db} \"SELECT * FROM demo_scenarios ORDER BY started_at\"")
        print(f"  tracekit sql --db {opts.db} \"SELECT scenario, service, operation, count(*) "
              "FROM demo_faults GROUP BY ALL\"")
    return 0


# --- one service, or the traffic, per process (docker-compose) --------------------------


def peers_from_env(environ=os.environ) -> dict[str, str]:
    """SHOP_<SERVICE>_URL, e.g. SHOP_FRAUD_DETECTION_URL=http://fraud-detection:8080."""
    from tracekit.demo.services import SERVICE_NAMES

    peers = {}
    for name in SERVICE_NAMES:
        url = environ.get(f"SHOP_{name.upper().replace('-', '_')}_URL")
        if url:
            peers[name] = url.rstrip("/")
    return peers


async def _wait_for_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def _serve_service(name: str, listen: str, broker_url: str | None, namespace: str,
                         data_dir: Path, redis_url: str | None) -> None:
    from tracekit.demo import broker as brokers
    from tracekit.demo.faults import Flags
    from tracekit.demo.services import registry
    from tracekit.demo.services.base import ShopContext
    from tracekit.demo.shop import ground_truth_recorder
    from tracekit.demo.telemetry import OtlpTarget, ServiceTelemetry

    host, _, port = listen.rpartition(":")
    target = OtlpTarget()
    telemetry = ServiceTelemetry(name, target)
    truth, truth_telemetry = ground_truth_recorder(target)
    broker = brokers.connect(broker_url, namespace)
    try:
        await broker.start()
    except ConnectionError as exc:
        raise TracekitError(str(exc)) from exc
    data_dir.mkdir(parents=True, exist_ok=True)
    service = registry()[name](ShopContext(telemetry, broker, Flags(), truth, peers_from_env(),
                                           data_dir, redis_url))
    try:
        url = await service.start(host.strip("[]") or "127.0.0.1", int(port))
    except ConnectionError as exc:
        raise TracekitError(str(exc)) from exc
    await service.start_consumers()
    print(f"ready {name} {url}", flush=True)
    try:
        await _wait_for_signal()
    finally:
        await service.stop()
        await broker.close()
        for t in (telemetry, truth_telemetry):
            await asyncio.to_thread(t.flush)
            t.shutdown()


MESSAGING_SERVICES = {"orders", "checkout", "inventory", "payment", "shipping",
                      "fraud-detection", "accounting", "notification"}


def run_service(name: str, listen: str, broker_url: str | None, namespace: str,
                data_dir: Path, redis_url: str | None = None) -> int:
    from tracekit.demo.services import SERVICE_NAMES

    if name not in SERVICE_NAMES:
        raise TracekitError(f"unknown service {name!r}; choose one of: {', '.join(SERVICE_NAMES)}")
    if name in MESSAGING_SERVICES and not broker_url:
        raise TracekitError(f"{name} talks to other services through a broker, and an in-process "
                            "broker cannot be shared between processes: give --broker "
                            "amqp://guest:guest@localhost:5672/ (or run the whole shop with "
                            "`tracekit demo`)")
    asyncio.run(_serve_service(name, listen, broker_url, namespace, data_dir, redis_url))
    return 0


async def wait_until_healthy(urls: list[str], timeout_s: float = 120.0) -> None:
    """Each service answers GET /_health (containers start in any order)."""
    import aiohttp

    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        for url in urls:
            while True:
                try:
                    async with session.get(f"{url}/_health") as response:
                        if response.status == 200:
                            break
                except (aiohttp.ClientError, TimeoutError):
                    pass
                if time.monotonic() > deadline:
                    raise TracekitError(f"{url} did not become healthy in {timeout_s:g}s; is it "
                                        "running, and is SHOP_*_URL right?")
                await asyncio.sleep(0.25)


async def _drive(frontend: str, services: list[str], rate: float, schedule) -> dict:
    from tracekit.demo.shop import ground_truth_recorder
    from tracekit.demo.telemetry import OtlpTarget, ServiceTelemetry
    from tracekit.demo.traffic import FlagsControl, Traffic

    await wait_until_healthy(sorted({frontend, *services}))
    target = OtlpTarget()
    load = ServiceTelemetry("load-generator", target)
    truth, truth_telemetry = ground_truth_recorder(target)
    traffic = Traffic(load, truth, frontend, rate, FlagsControl(service_urls=services))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        stats = await traffic.run(schedule, stop)
    finally:
        truth.close()
        for t in (load, truth_telemetry):
            await asyncio.to_thread(t.flush)
            t.shutdown()
    return stats.as_dict()


def run_traffic(frontend: str | None, rate: float, schedule) -> int:
    peers = peers_from_env()
    frontend = frontend or peers.get("frontend")
    if not frontend:
        raise TracekitError("where is the shop? give --frontend http://HOST:PORT or set "
                            "SHOP_FRONTEND_URL")
    summary = asyncio.run(_drive(frontend.rstrip("/"), list(peers.values()), rate, schedule))
    print(json.dumps(summary), flush=True)
    return 0
