"""The terminal UI and the demo shop: `tracekit tui` and `tracekit demo` (the only commands that
import `tui`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tracekit.cli.common import db_option, duration
from tracekit.errors import TracekitError, UsageError


def add_tui_parser(commands) -> None:
    tui = commands.add_parser("tui", help="the terminal UI: flow types, flows, waterfalls, failures, SQL",
                              description="Browse the store in a terminal UI: flow types, flows, one "
                              "flow's waterfall across traces with its critical path and failure "
                              "origin, span detail with logs, the service map, failures with their "
                              "root causes, and a SQL console. Also while a collector writes the "
                              "store: new flows appear as they arrive. Press ? for the keys.")
    db_option(tui, lake=True)
    tui.add_argument("--window", metavar="WINDOW",
                     help="the time window to open on, counted back from the newest data: all, "
                     "1m, 5m, 15m, 1h, 6h or 1d (default: all of a store holding an hour or less, "
                     "else the last hour; `w` cycles them)")
    tui.set_defaults(run=cmd_tui)


def cmd_tui(args: argparse.Namespace) -> int:
    from tracekit.errors import StoreNotFound
    from tui.app import make_app    # the core never imports the UI
    from tui.data import window_label

    try:
        window = window_label(args.window) if args.window else None
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    if args.lake is not None:
        from tracekit.cli.common import open_analyzed_lake

        open_analyzed_lake(args.lake, None, None).close()     # says what to run if unanalyzed
    elif not args.db.exists():
        raise StoreNotFound(f"no store at {args.db}: start `tracekit collect --db {args.db}` or "
                            "`tracekit demo` first, or give --db PATH")
    make_app(args.db, window=window, lake=args.lake).run()
    return 0


def add_demo_parser(commands) -> None:
    from tracekit.demo.faults import SCENARIOS

    demo = commands.add_parser(
        "demo", help="run the demo shop against a local collector, with fault scenarios",
        description="Start a collector on free localhost ports, run the demo shop (an order saga, "
        "a choreographed checkout, returns) with its traffic and a schedule of fault scenarios, "
        "and record the ground truth in the store (views demo_scenarios, demo_faults, "
        "demo_flows). Without --duration it runs until Ctrl-C. Scenarios: "
        + ", ".join(SCENARIOS) + ".")
    demo.add_argument("--db", type=Path, default=Path("tracekit-demo.duckdb"),
                      help="the store (default: ./tracekit-demo.duckdb)")
    demo.add_argument("--duration", metavar="TIME", help="how long to run: 30s, 5m, ...")
    demo.add_argument("--headless", action="store_true",
                      help="no terminal UI: progress lines on stderr, a summary at the end")
    demo.add_argument("--scenario", choices=list(SCENARIOS), metavar="NAME",
                      help="healthy, then this fault, then healthy (thirds of --duration)")
    demo.add_argument("--schedule", metavar="SPEC",
                      help="e.g. healthy:2m,payment-failure:1m,healthy:2m (overrides --scenario)")
    demo.add_argument("--rate", type=float, default=20.0, help="flows started per second (default 20)")
    demo.add_argument("--broker", metavar="URL",
                      help="RabbitMQ, e.g. amqp://guest:guest@localhost:5672/ (default: in-process)")
    demo.add_argument("--redis", metavar="URL",
                      help="keep fraud-detection's counters in Redis, e.g. redis://localhost:6379/0 "
                           "(default: SQLite)")
    demo.add_argument("--namespace", default="shop",
                      help="prefix of the broker's exchanges and queues (default shop)")
    demo.add_argument("--otlp-endpoint", metavar="URL",
                      help="send to this collector instead of starting one (then --db is not read)")
    demo.add_argument("--otlp-protocol", choices=["grpc", "http/protobuf"],
                      help="with --otlp-endpoint (default: $OTEL_EXPORTER_OTLP_PROTOCOL or grpc)")
    demo.add_argument("--ground-truth", type=Path, metavar="FILE",
                      help="also write the ground truth (scenarios, faults, flows) as JSON here")
    demo.add_argument("--json", action="store_true", help="print the summary as JSON")
    demo.set_defaults(run=cmd_demo)
    parts = demo.add_subparsers(dest="demo_command", metavar="PART")

    service = parts.add_parser("service", help="run one shop service (as docker-compose does)",
                               description="Run one service of the shop until SIGTERM. Peers are "
                               "found through SHOP_<SERVICE>_URL variables, telemetry goes where "
                               "the OTEL_EXPORTER_OTLP_* variables say.")
    service.add_argument("name", help="frontend, orders, checkout, inventory, payment, shipping, "
                                      "carrier, fraud-detection, accounting or notification")
    service.add_argument("--listen", default="127.0.0.1:8080", metavar="HOST:PORT")
    service.add_argument("--broker", metavar="URL", help="RabbitMQ URL (needed by the services "
                                                         "that publish or consume)")
    service.add_argument("--redis", metavar="URL", help="Redis URL (fraud-detection's counters)")
    service.add_argument("--namespace", default="shop")
    service.add_argument("--data-dir", type=Path, default=Path("shop-data"),
                         help="where the service keeps its SQLite database")
    service.set_defaults(run=cmd_demo_service)

    traffic = parts.add_parser("traffic", help="drive the shop's services (as docker-compose does)",
                               description="Start flows against the frontend and switch scenarios "
                               "in every service named by a SHOP_<SERVICE>_URL variable.")
    traffic.add_argument("--frontend", metavar="URL", help="default: $SHOP_FRONTEND_URL")
    traffic.add_argument("--rate", type=float, default=20.0)
    traffic.add_argument("--duration", metavar="TIME", default="5m")
    traffic.add_argument("--scenario", choices=list(SCENARIOS), metavar="NAME")
    traffic.add_argument("--schedule", metavar="SPEC")
    traffic.set_defaults(run=cmd_demo_traffic)


def _demo_with_tui(args: argparse.Namespace) -> int:
    """The demo in a child process (headless), the terminal UI on its store in this one; the
    demo stops (drains, commits) when the UI exits."""
    import signal
    import subprocess
    import time

    from tracekit import discovery

    command = [sys.executable, "-m", "tracekit", "demo", "--headless", "--db", str(args.db),
               "--rate", str(args.rate), "--namespace", args.namespace]
    for option in ("duration", "scenario", "schedule", "broker", "redis", "ground_truth"):
        value = getattr(args, option)
        if value is not None:
            command += [f"--{option.replace('_', '-')}", str(value)]
    log = Path(f"{args.db}.demo.log")
    with log.open("w") as out:
        demo = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while discovery.find(args.db) is None:
            if demo.poll() is not None or time.monotonic() > deadline:
                raise TracekitError(f"the demo did not start; its output is in {log}")
            time.sleep(0.2)
        from tui.app import make_app

        app = make_app(args.db)
        # SIGTERM closes the UI like `q`, so the demo below is stopped, not orphaned.
        signal.signal(signal.SIGTERM, lambda *_: app.call_later(app.exit))
        app.run()
    finally:
        if demo.poll() is None:
            demo.send_signal(signal.SIGINT)
            try:
                demo.wait(timeout=60)
            except subprocess.TimeoutExpired:
                demo.kill()
    print(f"demo stopped; store {args.db}, demo output in {log}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from tracekit.demo.runner import DemoOptions, run_demo

    if not 1 <= args.rate <= 1000:
        raise UsageError("--rate is in flows per second: between 1 and 1000 (try 5-200)")
    if not (args.headless or args.json or args.otlp_endpoint) and sys.stdout.isatty():
        return _demo_with_tui(args)
    try:
        return run_demo(DemoOptions(
            db=args.db, duration_s=duration(args.duration), headless=args.headless,
            scenario=args.scenario, schedule=args.schedule, rate=args.rate, broker=args.broker,
            namespace=args.namespace, otlp_endpoint=args.otlp_endpoint,
            otlp_protocol=args.otlp_protocol, ground_truth=args.ground_truth, json=args.json,
            redis=args.redis))
    except ValueError as exc:
        raise UsageError(str(exc)) from exc


def cmd_demo_service(args: argparse.Namespace) -> int:
    from tracekit.demo.runner import run_service

    return run_service(args.name, args.listen, args.broker, args.namespace, args.data_dir,
                       args.redis)


def cmd_demo_traffic(args: argparse.Namespace) -> int:
    from tracekit.demo.runner import run_traffic
    from tracekit.demo.traffic import default_schedule, parse_schedule

    try:
        schedule = (parse_schedule(args.schedule) if args.schedule
                    else default_schedule(duration(args.duration), args.scenario))
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    return run_traffic(args.frontend, args.rate, schedule)
