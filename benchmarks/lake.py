"""Lake benchmark: collectors writing one lake at once, and the flow analysis on Spark.

    . .venv/bin/activate
    python benchmarks/lake.py collectors                      # 1, 2 and 3 collectors, 10 s of load each
    python benchmarks/lake.py collectors --collectors 1,2 --seconds 20 --json
    python benchmarks/lake.py analysis --spans 1000000        # Spark against `tracekit analyze`

Needs PostgreSQL (--pg, default postgres@127.0.0.1:5432): each measurement gets a database of
its own, dropped after it.

`collectors`: for each count, that many `tracekit collect --lake URI --no-analysis` processes on
fresh stores and one fresh lake, each fed by its own load client (benchmarks/ingest.py: 4
senders of 512-span OTLP/gRPC requests, fresh ids) on its own 127.0.0.1 port, all started
together. Measured: spans acknowledged, then the time until the lake holds every one of them
(the sinks ship every --lake-every); "committed spans/s" is acknowledged spans over load
start → all in the lake. Each span once: every acknowledged span's (trace id, span id) is
in the lake, and the lake has as many rows as distinct ids.

`analysis`: a store of --spans spans (benchmarks/stores.py: copies of a demo run with fresh
ids, cached in --cache), shipped to a fresh lake; then `tracekit analyze --rebuild` on the
store (one process) and `tracekit analyze --lake --engine spark` (local mode), each timed as
a user waits for it, with their flow counts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import duckdb

import tracekit
from tracekit.lake.location import LakeLocation
from tracekit.lake.shipping import Shipper

from ingest import TRACEKIT, Collector, build_templates, drive, fresh_copies
from stores import demo_store, replicate

SPANS_PER_REQUEST = 512
CLIENT_RATE = 40_000       # spans/s a load client's pool is sized for (its requests are made up front)


def load_client(conn, address, templates, count, seconds):
    """ingest.py's load over OTLP/gRPC, answering with the ids of the spans acknowledged."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    pool = fresh_copies(templates, count, SPANS_PER_REQUEST)
    bodies: list[bytes] = []
    result = asyncio.run(drive(conn, "grpc", address, pool, SPANS_PER_REQUEST, seconds, 4,
                               acked_bodies=bodies))
    ids = []
    for body in bodies:
        for resource_spans in ExportTraceServiceRequest.FromString(body).resource_spans:
            for scope_spans in resource_spans.scope_spans:
                ids.extend(span.trace_id.hex() + span.span_id.hex() for span in scope_spans.spans)
    result["acked_ids"] = ids
    conn.send(result)


@contextmanager
def fresh_lake(pg: str, warehouse: Path):
    """A lake URI on a new PostgreSQL database, dropped afterwards."""
    import psycopg2

    user, _, host = pg.partition("@")
    host, _, port = host.partition(":")
    name = f"tracekit_bench_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(host=host, port=int(port or 5432), user=user, dbname="postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://{pg}/{name}?warehouse={warehouse}"
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def lake_counts(uri: str) -> tuple[int, int]:
    """(rows, distinct (trace id, span id)) of the lake's span_rows; (0, 0) before any."""
    try:
        with tracekit.open(lake=uri) as store:
            return tuple(store.arrow("SELECT count(*) AS n, count(DISTINCT (trace_id, span_id)) AS d "
                                     "FROM span_rows").to_pylist()[0].values())
    except tracekit.TracekitError:
        return 0, 0


def lake_ids(uri: str) -> set[str]:
    with tracekit.open(lake=uri) as store:
        return set(store.arrow("SELECT trace_id || span_id AS id FROM span_rows").column(0).to_pylist())


def run_collectors(n: int, args, templates, workdir: Path) -> dict:
    with fresh_lake(args.pg, workdir / f"lake-{n}") as uri:
        collectors = [Collector(workdir / f"c{n}-{i}.duckdb", workdir / f"c{n}-{i}.log",
                                ("--lake", uri, "--lake-every", args.lake_every, "--no-analysis"))
                      for i in range(n)]
        spawn = multiprocessing.get_context("spawn")
        count = math.ceil(CLIENT_RATE * args.seconds * 1.5 / SPANS_PER_REQUEST)
        pipes, clients = [], []
        try:
            for collector in collectors:
                ours, theirs = spawn.Pipe()
                client = spawn.Process(target=load_client, args=(
                    theirs, collector.addresses["otlp-grpc"], templates["protobuf"], count,
                    args.seconds))
                client.start()
                theirs.close()
                pipes.append(ours)
                clients.append(client)
            for ours in pipes:          # every pool made: start together
                assert ours.recv() == "go"
            started = time.perf_counter()
            results = [ours.recv() for ours in pipes]
            acked = sum(r["acked_spans"] for r in results)
            deadline = time.perf_counter() + args.wait
            while (rows := lake_counts(uri))[0] < acked and time.perf_counter() < deadline:
                time.sleep(0.5)
            in_lake_s = time.perf_counter() - started
            for client in clients:
                client.join()
        finally:
            for collector in collectors:
                collector.stop()
        rows, distinct = lake_counts(uri)   # after the clean stops: nothing more to ship
        stored = lake_ids(uri)
    acked_ids = {i for r in results for i in r.pop("acked_ids")}
    missing = len(acked_ids - stored)
    return {"collectors": n, "acked_spans": acked,
            "acked_spans_per_s": acked / max(r["elapsed_s"] for r in results),
            "in_lake_s": in_lake_s, "committed_spans_per_s": acked / in_lake_s,
            "lake_rows": rows, "lake_distinct": distinct,
            # Every acknowledged span in the lake, by id, and no span twice. A request the
            # client saw fail (a deadline) may have been stored all the same: not a loss.
            "acknowledged_missing": missing, "stored_unacknowledged": len(stored - acked_ids),
            "each_span_once": missing == 0 and rows == distinct and len(acked_ids) == acked,
            "failures": [r["failures"] for r in results]}


def cmd_collectors(args) -> dict:
    templates = build_templates(SPANS_PER_REQUEST)
    with tempfile.TemporaryDirectory(prefix="tracekit-lake-") as tmp:
        runs = [run_collectors(int(n), args, templates, Path(tmp)) for n in args.collectors.split(",")]
    one = runs[0]["committed_spans_per_s"]
    for run in runs:
        run["against_one"] = run["committed_spans_per_s"] / one
    return {"seconds": args.seconds, "lake_every": args.lake_every, "runs": runs}


def timed(*command: str) -> tuple[float, str]:
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return time.perf_counter() - started, result.stdout


def cmd_analysis(args) -> dict:
    args.cache.mkdir(parents=True, exist_ok=True)
    demo = demo_store(args.cache)
    source = args.cache / f"lake-{args.spans}.duckdb"
    if not source.exists():
        replicate(demo, source, args.spans, logs=False, own_batches=True)
    with tempfile.TemporaryDirectory(prefix="tracekit-lake-", dir=args.cache) as tmp:
        db = Path(tmp) / "store.duckdb"
        subprocess.run(["cp", str(source), str(db)], check=True)
        with fresh_lake(args.pg, Path(tmp) / "warehouse") as uri:
            conn = duckdb.connect(str(db), read_only=True)
            started = time.perf_counter()
            shipped = Shipper(LakeLocation.parse(uri), db, lambda: conn.cursor()).ship()
            ship_s = time.perf_counter() - started
            conn.close()
            local_s, _ = timed(TRACEKIT, "analyze", "--rebuild", "--json", "--db", str(db))
            # Flows in the table (the summary's flows_written also counts flows an update
            # wrote and a later one replaced).
            with tracekit.open(db) as store:
                local_flows = store.scalar("SELECT count(*) FROM flow_rows")
            spark_s, spark_out = timed(TRACEKIT, "analyze", "--lake", uri, "--engine", "spark",
                                       "--spark-master", args.spark_master, "--json")
    spark = json.loads(spark_out)
    return {"spans": spark["spans"], "shipped_rows": shipped, "ship_s": ship_s,
            "duckdb_s": local_s, "duckdb_flows": local_flows,
            "spark_s": spark_s, "spark_flows": spark["flows"], "spark_stages_s": spark["seconds"],
            "spark_tasks": spark["tasks"], "spark_rounds": spark["rounds"],
            "master": args.spark_master}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", default="postgres@127.0.0.1:5432", help="USER@HOST:PORT of PostgreSQL")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    sub = parser.add_subparsers(dest="what", required=True)
    collectors = sub.add_parser("collectors", help="1..n collectors writing one lake at once")
    collectors.add_argument("--collectors", default="1,2,3", help="counts to measure (default 1,2,3)")
    collectors.add_argument("--seconds", type=float, default=10.0, help="load time (default 10)")
    collectors.add_argument("--lake-every", default="1s", help="the sinks' shipping interval")
    collectors.add_argument("--wait", type=float, default=300.0,
                            help="at most this long for the lake to hold every acknowledged span")
    analysis = sub.add_parser("analysis", help="Spark against `tracekit analyze` on one store")
    analysis.add_argument("--spans", type=int, default=1_000_000)
    analysis.add_argument("--spark-master", default="local[2]")
    analysis.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "tracekit-bench",
                          help="where the demo store and the copies are kept between runs")
    args = parser.parse_args()
    report = cmd_collectors(args) if args.what == "collectors" else cmd_analysis(args)
    if args.json:
        print(json.dumps(report, indent=2))
        return
    if args.what == "collectors":
        for run in report["runs"]:
            print(f"{run['collectors']} collector(s): {run['acked_spans']:,} acknowledged "
                  f"({run['acked_spans_per_s']:,.0f}/s), all in the lake after {run['in_lake_s']:.1f} s: "
                  f"{run['committed_spans_per_s']:,.0f} committed spans/s ({run['against_one']:.2f}x one); "
                  f"each span once: {run['each_span_once']}")
    else:
        print(json.dumps(report, indent=2))
    sys.exit(0 if args.what != "collectors" or all(r["each_span_once"] for r in report["runs"]) else 1)


if __name__ == "__main__":
    main()
