"""The lake: collectors ship what they commit to Iceberg tables (catalog in PostgreSQL) that
`tracekit sql --lake` and `tracekit.open(lake=...)` read. Each test has a PostgreSQL database
of its own, dropped after it."""

from __future__ import annotations

import json
import random
import signal
import threading
import time
import urllib.error
import urllib.request
import uuid

import pytest

import tracekit
from tests.conftest import require_service, sql, start_collector, tracekit as run_tracekit
from tests.otel_clients import pipeline
from tests.otlp_payloads import trace_request

LAKE_EVERY = "0.2s"      # ship often: more commits to race and to be killed in
WAIT_S = 120             # for the lake to hold what was sent (a loaded 2-core machine)
STOP_S = 60              # a clean stop drains, analyzes and ships; slow when the machine is busy


@pytest.fixture
def lake(tmp_path):
    """A lake URI on a PostgreSQL database made for this test, dropped after it."""
    require_service("PostgreSQL", "127.0.0.1", 5432)
    import psycopg2

    name = f"tracekit_lake_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}?warehouse={tmp_path / 'warehouse'}"
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def start_on_lake(lake):
    """Starts `tracekit collect --lake` on a store; whatever a failed test left running is
    killed before the lake's database is dropped."""
    started = []

    def start(db):
        started.append(start_collector(db, extra=("--lake", lake, "--lake-every", LAKE_EVERY)))
        return started[-1]

    yield start
    for running in started:
        if running.process.poll() is None:
            running.process.kill()
            running.process.wait(30)


def _lake_rows(lake: str, query: str) -> list[dict]:
    with tracekit.open(lake=lake) as store:
        return store.arrow(query).to_pylist()


def _lake_span_ids(lake: str) -> list[str]:
    try:
        return [row["span_id"] for row in _lake_rows(lake, "SELECT span_id FROM span_rows")]
    except tracekit.TracekitError:   # no collector has created the tables yet
        return []


def _wait_for_lake(lake: str, expected: set[str]) -> float:
    """Wait until the lake holds every span id in `expected`; the seconds that took."""
    started = time.monotonic()
    while not expected <= set(_lake_span_ids(lake)):
        assert time.monotonic() - started < WAIT_S, (
            f"{len(expected - set(_lake_span_ids(lake)))} of {len(expected)} spans not in the lake "
            f"after {WAIT_S} s")
        threading.Event().wait(0.2)
    return time.monotonic() - started


def _export_with_sdk(service: str, transport: str, address: str, traces: int) -> set[str]:
    """Traces of three spans (an event, typed attributes, a log each) from the OpenTelemetry
    SDK; the span ids sent."""
    p = pipeline(service, transport, address, **{"deployment.environment": "lake-test"})
    ids = set()
    for i in range(traces):
        with p.tracer.start_as_current_span("checkout", attributes={
                "order.id": f"o-{i}", "http.response.status_code": 500 if i % 7 == 0 else 200,
                "ratio": i / 3, "vip": i % 2 == 0, "tags": ["a", "b"]}) as root:
            root.add_event("cart.loaded", {"items": i})
            p.logger.info("checkout %d", i, extra={"order.id": f"o-{i}"})
            for step in ("reserve", "charge"):
                with p.tracer.start_as_current_span(step) as child:
                    ids.add(format(child.get_span_context().span_id, "016x"))
            ids.add(format(root.get_span_context().span_id, "016x"))
    p.flush()
    p.shutdown()
    return ids


SPAN_COLUMNS = ("trace_id, span_id, parent_span_id, name, kind, epoch_us(start_time) AS start_us, "
                "epoch_us(end_time) AS end_us, duration_ns, status_code, service_name, "
                "attributes::JSON::VARCHAR AS attributes, "
                "resource_attributes::JSON::VARCHAR AS resource_attributes, "
                "to_json(list_transform(events, lambda e: {'name': e.name, "
                "'attributes': e.attributes::JSON}))::VARCHAR AS events")
LOG_COLUMNS = ("trace_id, span_id, severity_text, body::JSON::VARCHAR AS body, service_name, "
               "attributes::JSON::VARCHAR AS attributes, epoch_us(\"timestamp\") AS at_us")


def _key(row: dict) -> str:
    return json.dumps(row, sort_keys=True, default=str)


def test_two_collectors_ship_every_sdk_span_once_and_the_lake_answers_as_their_stores_combined(
        tmp_path, lake, start_on_lake):
    first = start_on_lake(tmp_path / "a.duckdb")
    second = start_on_lake(tmp_path / "b.duckdb")
    try:
        sent: dict[str, set[str]] = {}
        senders = [threading.Thread(target=lambda: sent.update(
                       a=_export_with_sdk("shop-a", "grpc", first.grpc, 150))),
                   threading.Thread(target=lambda: sent.update(
                       b=_export_with_sdk("shop-b", "http", second.http, 150)))]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join(120)
        expected = sent["a"] | sent["b"]
        assert len(expected) == 900
        delay = _wait_for_lake(lake, expected)
        print(f"\nlast span in the lake {delay:.1f} s after the exporters flushed")

        [counts] = _lake_rows(lake, "SELECT count(*) AS spans, count(DISTINCT span_id) AS ids, "
                                    "count(DISTINCT collector_id) AS collectors FROM span_rows")
        assert counts == {"spans": 900, "ids": 900, "collectors": 2}
    finally:
        assert first.stop(timeout=STOP_S) == 0, first.process.stderr.read()
        assert second.stop(timeout=STOP_S) == 0, second.process.stderr.read()

    # Stopped: each store and the lake hold the same spans and logs, column by column.
    for view, columns in (("spans", SPAN_COLUMNS), ("logs", LOG_COLUMNS)):
        query = f"SELECT {columns} FROM {view}"
        local = [_key(row) for db in ("a.duckdb", "b.duckdb") for row in sql(tmp_path / db, query)]
        shipped = json.loads(run_tracekit("sql", "--lake", lake, "--format", "json", query).stdout)
        only_local = sorted(set(local) - {_key(row) for row in shipped})
        only_lake = sorted({_key(row) for row in shipped} - set(local))
        assert not only_local and not only_lake, (view, only_local[:1], only_lake[:1])
        assert sorted(local) == sorted(_key(row) for row in shipped), view
        assert len(local) == (900 if view == "spans" else 300)
    schema = "SELECT column_name, column_type FROM (DESCRIBE {})"
    for view in ("spans", "logs"):
        assert sql(tmp_path / "a.duckdb", schema.format(view)) == _lake_rows(lake, schema.format(view))
    [errors] = _lake_rows(lake, "SELECT count(*) AS n FROM spans "
                                "WHERE attributes['http.response.status_code'] >= 500")
    assert errors["n"] == 2 * len(range(0, 150, 7))


SENDERS = 4
SPANS_PER_REQUEST = 200
KILLS = 2
REQUESTS_PER_RUN = 200
PACE_S = 0.1             # between one sender's requests: ingest still runs when the kill comes


def _send(address: str, bodies: list, acknowledged: list[str], stop: threading.Event,
          lock: threading.Lock) -> None:
    """POST export requests until stopped or the collector is gone; acknowledged span ids."""
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
        except urllib.error.HTTPError as refused:   # 503: retry later, as exporters do
            stop.wait(float(refused.headers.get("Retry-After", 1)))
            continue
        except (urllib.error.URLError, ConnectionError, OSError):
            return                                   # killed
        with lock:
            acknowledged.extend(span_ids)
        stop.wait(PACE_S)


def test_a_collector_killed_while_shipping_loses_and_duplicates_nothing_in_the_lake(
        tmp_path, lake, start_on_lake):
    rng = random.Random(27)
    acknowledged: list[str] = []
    unsent_at_kill = []
    lock = threading.Lock()
    steady = start_on_lake(tmp_path / "steady.duckdb")   # the other collector, never killed
    steady_sent: dict[str, set[str]] = {}
    steady_sender = threading.Thread(target=lambda: steady_sent.update(
        ids=_export_with_sdk("steady", "http", steady.http, 300)))
    steady_sender.start()
    killed_db = tmp_path / "killed.duckdb"
    try:
        for _ in range(KILLS):
            collector = start_on_lake(killed_db)
            requests = [trace_request(SPANS_PER_REQUEST, service="killed")
                        for _ in range(REQUESTS_PER_RUN)]
            bodies = [(r.SerializeToString(),
                       [s.span_id.hex() for s in r.resource_spans[0].scope_spans[0].spans])
                      for r in requests]
            stop = threading.Event()
            senders = [threading.Thread(target=_send, args=(collector.http, bodies, acknowledged,
                                                            stop, lock)) for _ in range(SENDERS)]
            for sender in senders:
                sender.start()
            # Until some of this run's spans are in the lake (the sink is shipping), then a
            # random moment more: not aligned with exports, moves or lake commits.
            before = set(_lake_span_ids(lake))
            deadline = time.monotonic() + WAIT_S
            while len(set(_lake_span_ids(lake)) - before) < SPANS_PER_REQUEST:
                assert time.monotonic() < deadline, "the collector shipped nothing to the lake"
                stop.wait(0.1)
            stop.wait(rng.uniform(0.0, 1.0))
            collector.process.send_signal(signal.SIGKILL)
            unsent_at_kill.append(len(bodies))
            collector.process.wait(10)
            stop.set()
            for sender in senders:
                sender.join(30)
        assert acknowledged, "no export was acknowledged"

        collector = start_on_lake(killed_db)    # restarted: ships what is left
        steady_sender.join(120)
        delay = _wait_for_lake(lake, set(acknowledged) | steady_sent["ids"])
        print(f"\n{KILLS} kills ({unsent_at_kill} of {REQUESTS_PER_RUN} requests not sent yet at "
              f"each): {len(acknowledged)} acknowledged spans, all in the lake {delay:.1f} s "
              "after the restart")
        assert collector.stop(timeout=STOP_S) == 0, collector.process.stderr.read()
    finally:
        assert steady.stop(timeout=STOP_S) == 0, steady.process.stderr.read()

    [counts] = _lake_rows(lake, "SELECT count(*) AS spans, count(DISTINCT span_id) AS ids FROM span_rows")
    assert counts["spans"] == counts["ids"], "spans shipped twice"
    stored = {row["span_id"] for db in ("killed.duckdb", "steady.duckdb")
              for row in sql(tmp_path / db, "SELECT span_id FROM spans")}
    # Stopped cleanly: the lake holds exactly what the two stores hold.
    assert set(_lake_span_ids(lake)) == stored and counts["spans"] == len(stored)


def test_a_shipment_that_loses_the_race_to_another_collector_is_retried_on_the_new_snapshot(
        tmp_path, lake):
    from tracekit.lake.location import LakeLocation
    from tracekit.lake.shipping import Shipper
    from tracekit.otlp.decode import decode_traces
    from tracekit.writable import WritableStore

    stores, sent = {}, set()
    for name in ("a", "b"):
        stores[name] = WritableStore.open(tmp_path / f"{name}.duckdb")
        request = trace_request(300, service=f"svc-{name}")
        stores[name].append(decode_traces(request), "test")
        sent |= {s.span_id.hex() for s in request.resource_spans[0].scope_spans[0].spans}
    location = LakeLocation.parse(lake)
    first = Shipper(location, stores["a"].path, lambda: stores["a"].conn.cursor())
    armed = []

    def second_cursor():
        # Called once the second shipper has loaded the table for its commit: the first
        # collector commits now, so the second's commit is made on a snapshot no longer current.
        if armed:
            armed.clear()
            first.ship()
        return stores["b"].conn.cursor()

    second = Shipper(location, stores["b"].path, second_cursor)
    try:
        second.connect()
        armed.append(True)
        assert second.ship() == 300
        assert first.shipped["span_rows"] == 300 and not armed
    finally:
        for store in stores.values():
            store.close()
    ids = _lake_span_ids(lake)
    assert len(ids) == 600 and set(ids) == sent
    # The second commit was redone on top of the first's snapshot: neither replaced the other.
    table = location.open_catalog().load_table("tracekit.span_rows")
    snapshots = table.metadata.snapshots
    assert len(snapshots) == 2 and table.current_snapshot().parent_snapshot_id == snapshots[0].snapshot_id
    assert {key for key in table.properties if key.startswith("tracekit.shipped-through.")} == {
        "tracekit.shipped-through." + first.collector_id,
        "tracekit.shipped-through." + second.collector_id}


def test_a_collector_whose_lake_is_down_acknowledges_as_usual_and_ships_the_backlog_once_it_is_back(
        tmp_path, lake, start_on_lake):
    import psycopg2

    # The lake's database does not exist yet: its catalog cannot be opened.
    database = lake.split("/")[3].split("?")[0]
    admin = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE "{database}"')
    collector = start_on_lake(tmp_path / "a.duckdb")
    logged, failed = [], threading.Event()

    def watch_log():
        for line in collector.process.stderr:
            logged.append(line)
            if "shipping to the lake failed" in line:
                failed.set()

    threading.Thread(target=watch_log, daemon=True).start()
    try:
        sent = _export_with_sdk("shop", "http", collector.http, 20)   # acknowledged
        assert {row["span_id"] for row in sql(collector.db, "SELECT span_id FROM spans")} >= sent
        assert failed.wait(WAIT_S), "the collector did not say that the lake is down"
        with admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{database}"')
        _wait_for_lake(lake, sent)
    finally:
        admin.close()
        assert collector.stop(timeout=STOP_S) == 0, "".join(logged)
    assert len(_lake_span_ids(lake)) == 60


def test_lake_sql_is_read_only_and_a_bad_uri_says_the_form(tmp_path, lake, start_on_lake):
    collector = start_on_lake(tmp_path / "a.duckdb")
    try:
        _export_with_sdk("shop", "http", collector.http, 2)
    finally:
        assert collector.stop(timeout=STOP_S) == 0, collector.process.stderr.read()
    refused = run_tracekit("sql", "--lake", lake, "DROP VIEW spans", check=False)
    assert refused.returncode == 1 and b"read-only" in refused.stderr
    outside = run_tracekit("sql", "--lake", lake, "SELECT * FROM read_csv('/etc/passwd')", check=False)
    assert outside.returncode == 1
    bad = run_tracekit("sql", "--lake", "lake.duckdb", "SELECT 1", check=False)
    assert bad.returncode == 2 and b"?warehouse=" in bad.stderr
    [row] = json.loads(run_tracekit("sql", "--lake", lake, "--format", "json",
                                    "SELECT count(*) AS n FROM spans").stdout)
    assert row == {"n": 6}
    # Before any Spark analysis the lake has no flows: the commands that read them say what to run.
    unanalyzed = run_tracekit("flows", "--lake", lake, check=False)
    assert unanalyzed.returncode == 1 and b"--engine spark" in unanalyzed.stderr
    [row] = json.loads(run_tracekit("sql", "--lake", lake, "--format", "json",
                                    "SELECT count(*) AS n FROM flows").stdout)
    assert row == {"n": 0}      # the analysis views are there, empty
