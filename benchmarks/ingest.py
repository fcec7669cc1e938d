"""Ingest benchmark: how many spans/s the collector acknowledges after commit, and at what cost.

    . .venv/bin/activate
    python benchmarks/ingest.py                      # 3 runs x 3 transports x 8 s, a table
    python benchmarks/ingest.py --json               # the same figures as JSON
    python benchmarks/ingest.py --seconds 20 --runs 5 --transports grpc,http-json

For each transport (OTLP/gRPC, OTLP/HTTP protobuf, OTLP/HTTP JSON) and each run, a fresh
`tracekit collect` process gets a fresh store, and a load client in another process sends
pre-encoded requests from a few concurrent senders for a fixed time. The collector answers
only once an export is synced to its intake log, so acknowledged spans/s is spans/s on disk;
"stored" also counts the time a query through the collector then waits for the mover to
store the backlog in the tables (the rate spans reach the store; "of limit" uses it), and
"analyzed" the time a query naming the flows then waits for the collector's analyst to bring
the analysis tables up to date with them (the rate flows are kept current). Alongside:
export latency (p50, p99), the collector's peak memory (PSS, sampled every 0.2 s, and the
sum of its processes' peak RSS, an upper bound) and CPU seconds, the store's bytes per span
after the collector checkpointed and exited, and what bounds the figure: the share of the
run its mover thread was busy staging and committing moves (waits for the commit running in
the background included), the share spent in the checkpoints it ran, the spans each
commit held (from the collector's closing log line), and the cores each of the collector's
threads used (from /proc, by the names `tracekit.threads` gives them: the intake, the mover,
the commits, the memory guard, gRPC's handlers, the decode workers; "main" is the event loop).

The "limit" is the same payloads parsed, decoded and moved into a store in one process with
no network, the way the collector's mover does it and with its DuckDB settings; "decode" is
parse + decode alone. Requests look like a shop's microservices
(4 services, every span kind, typed attributes, errors with exception events, consumer spans
linked to producers). Every request sent carries fresh random trace and span ids, written
into the pre-encoded bytes before timing, so no span is dropped as a duplicate.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import math
import multiprocessing
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from itertools import cycle, islice
from pathlib import Path

import aiohttp
import grpc
import orjson
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

import tracekit
from collectors.service import CollectorSettings, duckdb_memory_mib
from tracekit import procfs
from tracekit.intake import Export
from tracekit.otlp import json as otlp_json
from tracekit.otlp.json_decode import decode_traces_json
from tracekit.otlp.columns import DEFAULT_REDACTOR
from tracekit.otlp.decode import decode_traces
from tracekit.otlp.fast_decode import decode_traces_fast, decode_traces_json_fast
from tracekit.writable import WritableStore

TRANSPORTS = ("grpc", "http-protobuf", "http-json")
EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
TRACEKIT = str(Path(sys.executable).with_name("tracekit"))
TEMPLATES = 8                 # distinct request shapes; every request sent is a copy with fresh ids
LIMIT_SPANS = 1_000_000       # spans decoded and appended per limit run (past a checkpoint)
SPANS_PER_MOVE = 10_240       # about what the collector's mover takes at a time at ~50k spans/s
POOL_HEADROOM = 2.0           # pool = limit x seconds x this; the collector cannot outrun the store
ERROR_RATE = 0.02
STREAM_RATE = 60_000          # spans/s the copies' timestamps advance at (the issue's target)

# --- Payloads ------------------------------------------------------------------------------

SERVICES = ("frontend", "checkout", "payments", "shipping")
SERVER, CLIENT, INTERNAL = Span.SPAN_KIND_SERVER, Span.SPAN_KIND_CLIENT, Span.SPAN_KIND_INTERNAL
PRODUCER, CONSUMER = Span.SPAN_KIND_PRODUCER, Span.SPAN_KIND_CONSUMER
HTTP_SERVER = ("opentelemetry.instrumentation.asgi", "0.59b0")
HTTP_CLIENT = ("opentelemetry.instrumentation.httpx", "0.59b0")
DB_CLIENT = ("opentelemetry.instrumentation.asyncpg", "0.59b0")
KAFKA = ("opentelemetry.instrumentation.aiokafka", "0.59b0")
APP = ("shop.app", "3.4.1")
STACKTRACE = "Traceback (most recent call last):\n" + "".join(
    f'  File "/app/shop/{m}.py", line {n}, in {f}\n    result = await {f}(order)\n'
    for m, n, f in (("api", 88, "create_order"), ("pricing", 214, "price_cart"), ("db", 51, "execute"))
) + "asyncpg.exceptions.DeadlockDetectedError: deadlock detected\n"


def any_value(value: object) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    return AnyValue(string_value=value)


def key_values(attrs: dict) -> list[KeyValue]:
    return [KeyValue(key=k, value=any_value(v)) for k, v in attrs.items()]


def resource(service: str, rng: random.Random) -> Resource:
    return Resource(attributes=key_values({
        "service.name": service, "service.namespace": "shop", "service.version": "3.4.1",
        "service.instance.id": rng.randbytes(16).hex(),
        "host.name": f"{service}-7d9f8b6c4-{rng.randbytes(3).hex()}",
        "deployment.environment.name": "production", "telemetry.sdk.name": "opentelemetry",
        "telemetry.sdk.language": "python", "telemetry.sdk.version": "1.38.0",
    }))


class Workflow:
    """The spans of one order as instrumented services would emit them."""

    def __init__(self, rng: random.Random, start_ns: int):
        self.rng = rng
        self.start_ns = start_ns
        self.spans: list[tuple[str, tuple[str, str], Span]] = []

    def span(self, service, scope, name, kind, parent, at_ms, ms, attrs, links=()) -> Span:
        rng = self.rng
        start = self.start_ns + int(at_ms * 1e6)
        span = Span(
            trace_id=parent.trace_id if parent else rng.randbytes(16),
            span_id=rng.randbytes(8), parent_span_id=parent.span_id if parent else b"",
            name=name, kind=kind, start_time_unix_nano=start,
            end_time_unix_nano=start + int(ms * rng.uniform(0.5, 2.0) * 1e6),
            attributes=key_values(attrs), links=links, flags=0x101,
        )
        if rng.random() < ERROR_RATE:
            span.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR, message="deadlock detected"))
            span.events.add(name="exception", time_unix_nano=span.end_time_unix_nano,
                            attributes=key_values({
                                "exception.type": "asyncpg.exceptions.DeadlockDetectedError",
                                "exception.message": "deadlock detected",
                                "exception.stacktrace": STACKTRACE}))
        self.spans.append((service, scope, span))
        return span


def order_workflow(rng: random.Random, now_ns: int) -> list:
    """Two traces: placing an order across three services, and shipping it from a Kafka topic."""
    w = Workflow(rng, now_ns - rng.randrange(5_000_000_000))
    order_id = f"ord-{rng.randrange(10**9):09d}"
    items, total = rng.randrange(1, 12), round(rng.uniform(5, 900), 2)

    def http_client(service, parent, at, ms, host, path):
        return w.span(service, HTTP_CLIENT, "POST", CLIENT, parent, at, ms, {
            "http.request.method": "POST", "url.full": f"http://{host}:8080{path}",
            "server.address": host, "server.port": 8080, "http.response.status_code": 200,
            "http.request.resend_count": 0, "network.protocol.version": "1.1", "order.id": order_id})

    def http_server(service, parent, at, ms, route, status=200):
        return w.span(service, HTTP_SERVER, f"POST {route}", SERVER, parent, at, ms, {
            "http.request.method": "POST", "http.route": route, "url.path": route,
            "url.scheme": "http", "http.response.status_code": status,
            "server.address": f"{service}.shop.svc", "client.address": "10.42.3.17", "order.id": order_id})

    def db(service, parent, at, ms, table):
        return w.span(service, DB_CLIENT, f"INSERT shop.{table}", CLIENT, parent, at, ms, {
            "db.system.name": "postgresql", "db.namespace": "shop", "db.operation.name": "INSERT",
            "db.collection.name": table, "db.query.text": f"INSERT INTO {table} (id, body) VALUES ($1, $2)",
            "server.address": "pg-primary.shop.svc", "server.port": 5432, "db.response.returned_rows": 1})

    root = http_server("frontend", None, 0, 120, "/api/orders", 201)
    root.attributes.extend(key_values({"user_agent.original": "Mozilla/5.0 (X11; Linux x86_64) Firefox/131.0",
                                       "shop.user.authenticated": rng.random() < 0.7}))
    call = http_client("frontend", root, 2, 110, "checkout.shop.svc", "/orders")
    checkout = http_server("checkout", call, 3, 105, "/orders")
    w.span("checkout", APP, "price cart", INTERNAL, checkout, 4, 8, {
        "order.id": order_id, "order.item_count": items, "order.total": total, "order.currency": "EUR",
        "cart.cache_hit": rng.random() < 0.8, "pricing.rules_evaluated": rng.randrange(3, 40),
        "shop.tenant": "eu-west", "code.function.name": "shop.pricing.price_cart"})
    db("checkout", checkout, 13, 6, "orders")
    pay = http_client("checkout", checkout, 20, 60, "payments.shop.svc", "/v1/charges")
    charge = http_server("payments", pay, 21, 58, "/v1/charges")
    http_client("payments", charge, 23, 50, "api.psp.example", "/v1/payment_intents")
    db("payments", charge, 75, 4, "charges")
    publish = w.span("checkout", KAFKA, "send orders", PRODUCER, checkout, 85, 3, {
        "messaging.system": "kafka", "messaging.destination.name": "orders",
        "messaging.operation.type": "send", "messaging.operation.name": "send",
        "messaging.kafka.message.key": order_id, "messaging.destination.partition.id": str(rng.randrange(12)),
        "server.address": "kafka-0.shop.svc", "order.id": order_id})
    link = Span.Link(trace_id=publish.trace_id, span_id=publish.span_id, flags=0x101)
    consume = w.span("shipping", KAFKA, "process orders", CONSUMER, None, 400, 40, {
        "messaging.system": "kafka", "messaging.destination.name": "orders",
        "messaging.operation.type": "process", "messaging.consumer.group.name": "shipping",
        "messaging.kafka.offset": rng.randrange(10**8), "messaging.kafka.message.key": order_id,
        "messaging.batch.message_count": 1, "order.id": order_id}, links=[link])
    w.span("shipping", APP, "plan shipment", INTERNAL, consume, 402, 15, {
        "order.id": order_id, "shipment.carrier": rng.choice(("dhl", "ups", "gls")),
        "shipment.weight_kg": round(rng.uniform(0.2, 30), 3), "shipment.express": rng.random() < 0.1,
        "shipment.parcels": rng.randrange(1, 4), "order.item_count": items,
        "shop.tenant": "eu-west", "code.function.name": "shop.shipping.plan"})
    db("shipping", consume, 420, 5, "shipments")
    return w.spans


def build_request(rng: random.Random, n_spans: int) -> ExportTraceServiceRequest:
    """n_spans spans of whole orders (the last one cut short), one ResourceSpans per service."""
    now = time.time_ns()
    spans: list = []
    while len(spans) < n_spans:
        spans.extend(order_workflow(rng, now))
    grouped: dict[str, dict[tuple, list[Span]]] = {s: {} for s in SERVICES}
    for service, scope, span in spans[:n_spans]:
        grouped[service].setdefault(scope, []).append(span)
    return ExportTraceServiceRequest(resource_spans=[
        ResourceSpans(resource=resource(service, rng), scope_spans=[
            ScopeSpans(scope=InstrumentationScope(name=name, version=version), spans=spans)
            for (name, version), spans in scopes.items()])
        for service, scopes in grouped.items() if scopes
    ])


def to_otlp_json(request: ExportTraceServiceRequest) -> bytes:
    """OTLP/JSON: the protobuf JSON mapping with integer enums and ids in lowercase hex."""
    document = json_format.MessageToDict(request, use_integers_for_enums=True)
    for resource_spans in document["resourceSpans"]:
        for scope_spans in resource_spans["scopeSpans"]:
            for span in scope_spans["spans"]:
                for obj in (span, *span.get("links", ())):
                    for key in ("traceId", "spanId", "parentSpanId"):
                        if key in obj:
                            obj[key] = base64_to_hex(obj[key])
    return orjson.dumps(document)


def base64_to_hex(text: str) -> str:
    return base64.b64decode(text).hex()


@dataclass(frozen=True)
class Template:
    """An encoded request plus where each of its ids and timestamps sits, so that copies get
    fresh ids and later times cheaply."""

    data: bytes
    slots: list[tuple[int, list[int]]]   # (id length in bytes, offsets of that id in data)
    times: list[tuple[int, list[int]]]   # (timestamp in ns, offsets of its encoding in data)
    hex_ids: bool

    @classmethod
    def of(cls, request: ExportTraceServiceRequest, data: bytes, hex_ids: bool) -> Template:
        ids = [id_ for id_ in all_ids(request) if id_]
        slots = []
        for value in set(ids):
            needle = value.hex().encode() if hex_ids else value
            slots.append((len(value), [m.start() for m in re.finditer(re.escape(needle), data)]))
        assert sum(len(offsets) for _, offsets in slots) == len(ids), "an id is not where expected"
        stamps = list(all_times(request))
        times = []
        for value in set(stamps):
            needle = f'"{value}"'.encode() if hex_ids else value.to_bytes(8, "little")
            times.append((value, [m.start() + hex_ids for m in re.finditer(re.escape(needle), data)]))
        assert sum(len(offsets) for _, offsets in times) == len(stamps), "a time is not where expected"
        return cls(data, slots, times, hex_ids)

    def fresh_copy(self, rng: random.Random, shift_ns: int = 0) -> bytes:
        """A copy with new ids and every timestamp `shift_ns` later (the same digit count in
        JSON: a shift of hours keeps 19 digits)."""
        buf = bytearray(self.data)
        for length, offsets in self.slots:
            new = rng.randbytes(length)
            if self.hex_ids:
                new = new.hex().encode()
            for offset in offsets:
                buf[offset:offset + len(new)] = new
        for value, offsets in self.times:
            new = str(value + shift_ns).encode() if self.hex_ids else (value + shift_ns).to_bytes(8, "little")
            for offset in offsets:
                buf[offset:offset + len(new)] = new
        return bytes(buf)


def all_ids(request: ExportTraceServiceRequest):
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                yield from (span.trace_id, span.span_id, span.parent_span_id)
                for link in span.links:
                    yield from (link.trace_id, link.span_id)


def all_times(request: ExportTraceServiceRequest):
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                yield from (span.start_time_unix_nano, span.end_time_unix_nano)
                for event in span.events:
                    yield event.time_unix_nano


def build_templates(spans_per_request: int) -> dict[str, list[Template]]:
    rng = random.Random(42)
    requests = [build_request(rng, spans_per_request) for _ in range(TEMPLATES)]
    return {
        "protobuf": [Template.of(r, r.SerializeToString(), hex_ids=False) for r in requests],
        "json": [Template.of(r, to_otlp_json(r), hex_ids=True) for r in requests],
    }


def payload_bytes_per_span(templates: list[Template], spans_per_request: int) -> float:
    return sum(len(t.data) for t in templates) / (len(templates) * spans_per_request)


def fresh_copies(templates: list[Template], count: int, spans_per_request: int = 512) -> list[bytes]:
    """`count` copies with fresh ids, each later than the one before as in a live stream of
    STREAM_RATE spans/s: the store's duplicate check looks at stored spans that start in the
    time range of a batch, and a stream whose spans all started in the same few seconds would
    make it look at the whole store."""
    rng = random.Random()
    step_ns = int(spans_per_request / STREAM_RATE * 1e9)
    return [t.fresh_copy(rng, k * step_ns) for k, t in enumerate(islice(cycle(templates), count))]


# --- The limit: decode and append in one process, no network --------------------------------

def decode_protobuf(data: bytes):
    """As the collector decodes: the compiled decoder, else the Python one."""
    return decode_traces_fast(data, DEFAULT_REDACTOR) or decode_python(data)


def decode_python(data: bytes):
    return decode_traces(ExportTraceServiceRequest.FromString(data))


def decode_json(data: bytes):
    """As the collector decodes: the compiled decoders, else the Python one."""
    return decode_traces_json_fast(data, DEFAULT_REDACTOR) or decode_json_python(data)


def decode_json_python(data: bytes):
    return decode_traces_json(otlp_json.parse_document(data))


def spans_per_second(decode, payloads: list[bytes], spans_per_request: int) -> float:
    started = time.perf_counter()
    for data in payloads:
        decode(data)
    return len(payloads) * spans_per_request / (time.perf_counter() - started)


def measure_limit(templates: dict, spans_per_request: int, workdir: Path) -> dict:
    """Decode and move the payloads into a store the way the collector's mover does (row
    groups staged in one open transaction, each committed in the background while the next
    is staged), with the collector's DuckDB threads and memory, in one process."""
    count = math.ceil(LIMIT_SPANS / spans_per_request)
    payloads = fresh_copies(templates["protobuf"], count, spans_per_request)
    path = workdir / "limit.duckdb"
    settings = CollectorSettings()
    store = WritableStore.open(path, threads=settings.duckdb_threads,
                               memory_limit_mib=duckdb_memory_mib(settings))
    started = time.perf_counter()
    pending: list[Export] = []
    for seq, data in enumerate(payloads, start=1):
        pending.append(Export(seq, decode_protobuf(data), "benchmark"))
        if len(pending) * spans_per_request >= SPANS_PER_MOVE:
            store.stage(pending)
            pending = []
    if pending:
        store.stage(pending)
    store.commit_staged()
    limit = count * spans_per_request / (time.perf_counter() - started)
    store.close()
    disk = store_figures(path)
    return {
        "limit_spans_per_s": limit,
        "decode_protobuf_spans_per_s": spans_per_second(decode_protobuf, payloads, spans_per_request),
        "decode_protobuf_python_spans_per_s": spans_per_second(
            decode_python, payloads[:count // 8], spans_per_request),
        "decode_json_spans_per_s": spans_per_second(
            decode_json, fresh_copies(templates["json"], count // 4, spans_per_request), spans_per_request),
        "decode_json_python_spans_per_s": spans_per_second(
            decode_json_python, fresh_copies(templates["json"], count // 16, spans_per_request), spans_per_request),
        "disk_bytes_per_span": disk["disk_bytes_per_span"],
        "disk_free_pct": disk["disk_free_pct"],
    }


def store_figures(path: Path) -> dict:
    """Spans in a closed store, its file bytes per span and the share of free blocks; then deletes it."""
    with tracekit.open(path) as store:
        spans = store.scalar("SELECT count(*) FROM spans")
        free = store.scalar("SELECT free_blocks / total_blocks FROM pragma_database_size() "
                            "WHERE database_name = current_database()")
        size = store.size_on_disk()
    path.unlink()
    return {"stored_spans": spans, "disk_bytes_per_span": size / spans, "disk_free_pct": 100 * free}


# --- The collector under test -----------------------------------------------------------------

class Collector:
    """`tracekit collect` on a fresh store, with its CPU time and peak RSS read from /proc."""

    def __init__(self, db: Path, log: Path, extra: tuple[str, ...] = ()):
        self.log = log
        with log.open("w") as stderr:
            self.proc = subprocess.Popen(
                [TRACEKIT, "collect", "--db", str(db), "--grpc", "127.0.0.1:0", "--http", "127.0.0.1:0",
                 *extra],
                stdout=subprocess.PIPE, stderr=stderr, text=True)
        self.addresses: dict[str, str] = {}
        for line in self.proc.stdout:
            word, _, rest = line.strip().partition(" ")
            if word == "ready":
                return
            self.addresses[word] = rest
        raise RuntimeError(f"collector exited before ready:\n{log.read_text()}")

    def processes(self) -> list[int]:
        """The collector and its decode worker processes."""
        return [self.proc.pid, *procfs.children(self.proc.pid)]

    def cpu_seconds(self) -> float:
        """utime + stime of the collector and its decode workers (ended threads included)."""
        return sum(procfs.cpu_seconds(pid) for pid in self.processes())

    def thread_cpu_seconds(self) -> dict[str, float]:
        """utime + stime per thread of the collector and its decode workers, summed by the
        name the OS shows (`tracekit.threads`; "otlp-grpc_3" counts as "otlp-grpc"); the
        collector's main thread, which runs the event loop (HTTP, and decoding what arrives
        there), as "main"; threads that keep the process's name (gRPC's Python poller, asyncio's
        executor) as "unnamed"."""
        seconds: dict[str, float] = {}
        process_name = procfs.name(self.proc.pid)
        for pid in self.processes():
            try:
                tids = procfs.threads(pid)
            except OSError:   # a worker that just exited
                continue
            for tid in tids:
                try:
                    comm = procfs.name(pid, tid)
                    used = procfs.cpu_seconds(pid, tid)
                except OSError:   # a thread that ended meanwhile
                    continue
                name = ("main" if tid == self.proc.pid
                        else "unnamed" if pid == self.proc.pid and comm == process_name
                        else re.sub(r"_\d+$", "", comm))
                seconds[name] = seconds.get(name, 0.0) + used
        return seconds

    def peak_rss_mib(self) -> float:
        """Sum of the peak RSS of the collector and its decode workers (an upper bound)."""
        return sum(procfs.status_kib(pid, "VmHWM") for pid in self.processes()) / 1024

    def pss_mib(self) -> dict[str, float]:
        """The proportional set size of the collector and each of its worker processes, by
        process name (decode workers summed): shared library pages count once, as the
        collector's --memory-limit counts them."""
        total: dict[str, float] = {}
        for pid in self.processes():
            try:
                kib = procfs.pss_kib(pid)
                comm = procfs.name(pid)
            except OSError:   # a worker that just exited
                continue
            name = "collector" if pid == self.proc.pid else re.sub(r"[-_]?\d+$", "", comm)
            total[name] = total.get(name, 0.0) + kib / 1024
        return total

    def sample_pss(self, stop: threading.Event, every_s: float = 0.2) -> list[dict[str, float]]:
        """Start sampling pss_mib() until `stop` is set; the samples list fills meanwhile."""
        samples: list[dict[str, float]] = []

        def sample() -> None:
            while not stop.wait(every_s):
                samples.append(self.pss_mib())

        threading.Thread(target=sample, daemon=True).start()
        return samples

    def stop(self) -> int:
        """SIGTERM: the collector drains, checkpoints and exits; its log's warnings are counted."""
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=120)
        if code != 0:
            raise RuntimeError(f"collector exited {code}:\n{self.log.read_text()}")
        return sum(1 for line in self.log.read_text().splitlines()
                   if re.search(r"\b(WARNING|ERROR|CRITICAL|Traceback)\b", line))

    def writer_figures(self) -> dict:
        """From the collector's closing log line: its commits, the seconds its writer thread
        was busy writing and committing, and the part of them spent in checkpoints."""
        found = re.search(r"committed in (\d+) transactions \(writer busy ([\d.]+) s, "
                          r"([\d.]+) s of it in (\d+) checkpoints; acknowledged in (\d+) intake "
                          r"commits, ([\d.]+) s\)", self.log.read_text())
        if found is None:
            raise RuntimeError(f"no closing line in the collector's log:\n{self.log.read_text()}")
        commits, busy, checkpoint, checkpoints, accepts, accept_s = found.groups()
        return {"commits": int(commits), "writer_busy_s": float(busy),
                "checkpoint_s": float(checkpoint), "checkpoints": int(checkpoints),
                "intake_commits": int(accepts), "intake_busy_s": float(accept_s)}


# --- The load client (runs in its own process) ---------------------------------------------

async def grpc_sender(address: str):
    channel = grpc.aio.insecure_channel(address)
    await channel.channel_ready()
    export = channel.unary_unary(EXPORT_METHOD, request_serializer=lambda body: body,
                                 response_deserializer=ExportTraceServiceResponse.FromString)

    async def send(body: bytes) -> tuple[str, int]:
        try:
            response = await export(body, timeout=60)
        except grpc.aio.AioRpcError as exc:
            return exc.code().name, 0
        return "OK", response.partial_success.rejected_spans
    return send, channel.close


async def http_sender(address: str, content_type: str, concurrency: int):
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency))
    url, headers = f"http://{address}/v1/traces", {"Content-Type": content_type}

    async def send(body: bytes) -> tuple[str, int]:
        async with session.post(url, data=body, headers=headers) as response:
            payload = await response.read()
        if response.status != 200:
            return f"HTTP {response.status}", 0
        if content_type == "application/json":
            return "OK", int(orjson.loads(payload).get("partialSuccess", {}).get("rejectedSpans", 0))
        return "OK", ExportTraceServiceResponse.FromString(payload).partial_success.rejected_spans
    return send, session.close


async def drive(conn, transport: str, address: str, pool: list[bytes], spans_per_request: int,
                seconds: float, concurrency: int, rate: float | None = None,
                acked_bodies: list[bytes] | None = None) -> dict:
    """Send `pool` for `seconds`; with `acked_bodies`, the requests acknowledged whole are
    appended to it."""
    if transport == "grpc":
        send, close = await grpc_sender(address)
    else:
        content_type = "application/json" if transport == "http-json" else "application/x-protobuf"
        send, close = await http_sender(address, content_type, concurrency)
    bodies = iter(pool)
    latencies: list[float] = []
    failures: dict[str, int] = {}
    acked = 0
    issued = 0

    async def sender() -> None:
        nonlocal acked, issued
        for body in bodies:   # one iterator shared by all senders
            if time.perf_counter() >= deadline:
                return
            if rate:     # paced: the n-th request goes no earlier than n requests' worth of rate
                issued += 1
                due = started + (issued - 1) * spans_per_request / rate
                if due > time.perf_counter():
                    await asyncio.sleep(due - time.perf_counter())
            sent = time.perf_counter()
            outcome, rejected = await send(body)
            latencies.append(time.perf_counter() - sent)
            if outcome == "OK":
                acked += spans_per_request - rejected
                if acked_bodies is not None and not rejected:
                    acked_bodies.append(body)
            else:
                failures[outcome] = failures.get(outcome, 0) + 1

    conn.send("go")
    started, cpu_started = time.perf_counter(), time.process_time()
    deadline = started + seconds
    await asyncio.gather(*(sender() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    client_cpu = time.process_time() - cpu_started
    await close()
    return {"acked_spans": acked, "requests": len(latencies), "failures": failures,
            "elapsed_s": elapsed, "latencies": latencies, "client_cores": client_cpu / elapsed,
            "pool_exhausted": time.perf_counter() < deadline}


def load_client(conn, transport, address, templates, count, spans_per_request, seconds, concurrency,
                rate=None):
    pool = fresh_copies(templates, count, spans_per_request)
    conn.send(asyncio.run(drive(conn, transport, address, pool, spans_per_request, seconds, concurrency,
                                rate)))


def probe_analysis_lag(db: Path, stop: threading.Event, lags: list[float]) -> threading.Thread:
    """While the load runs: how long a query naming the flows waits. The collector answers it
    once everything acknowledged before it is stored and analyzed, so each wait is the delay
    from the newest acknowledgement to its flow being updated."""
    def run() -> None:
        with tracekit.open(db, timeout_s=120) as store:
            while not stop.is_set():
                started = time.perf_counter()
                store.scalar("SELECT count(*) FROM flow_rows")
                lags.append(time.perf_counter() - started)
                stop.wait(0.2)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


# --- One run of one transport ---------------------------------------------------------------

def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def run_transport(transport: str, templates: list[Template], count: int, args, workdir: Path) -> dict:
    db = workdir / f"{transport}.duckdb"
    collector = Collector(db, workdir / f"{transport}.log",
                          ("--no-analysis",) if args.no_analysis else ())
    address = collector.addresses["otlp-grpc" if transport == "grpc" else "otlp-http"]
    spawn = multiprocessing.get_context("spawn")
    ours, theirs = spawn.Pipe()
    client = spawn.Process(target=load_client, args=(
        theirs, transport, address, templates, count, args.spans_per_request, args.seconds, args.senders,
        args.rate))
    lags: list[float] = []
    probing = threading.Event()
    try:
        client.start()
        theirs.close()
        assert ours.recv() == "go"
        cpu_before = collector.cpu_seconds()
        threads_before = collector.thread_cpu_seconds()
        sampling = threading.Event()
        pss = collector.sample_pss(sampling)
        probe = probe_analysis_lag(db, probing, lags) if args.rate and not args.no_analysis else None
        result = ours.recv()
        probing.set()
        if probe is not None:
            probe.join()
        # What was acknowledged and not yet moved into the store's tables: a query through
        # the collector waits for the mover to store it, so the time it takes is the backlog.
        drained = time.perf_counter()
        with tracekit.open(db, timeout_s=120) as store:
            store.scalar("SELECT count(*) FROM spans")
        result["drain_s"] = time.perf_counter() - drained
        # The collector's analyst keeps the flows current: a query naming them waits for it to
        # have analyzed everything stored, so this is the analysis backlog.
        analyzed = time.perf_counter()
        if not args.no_analysis:
            with tracekit.open(db, timeout_s=600) as store:
                store.scalar("SELECT count(*) FROM flow_rows")
        result["analysis_drain_s"] = time.perf_counter() - analyzed
        sampling.set()
        cpu = collector.cpu_seconds() - cpu_before
        threads = collector.thread_cpu_seconds()
        # From the first export to the stored backlog: what the threads did for these spans.
        busy_s = result["elapsed_s"] + result["drain_s"]
        thread_cores = {name: (seconds - threads_before.get(name, 0.0)) / busy_s
                        for name, seconds in threads.items()}
        peak_rss = collector.peak_rss_mib()
        client.join()
    finally:
        log_warnings = collector.stop()
    latencies = result.pop("latencies")
    writer = collector.writer_figures()
    return {
        **result,
        **writer,
        # The writer thread is one core at most: busy near 1 means it bounds ingest.
        "writer_busy": writer["writer_busy_s"] / result["elapsed_s"],
        "checkpoint_share": writer["checkpoint_s"] / result["elapsed_s"],
        "spans_per_commit": result["acked_spans"] / max(1, writer["commits"]),
        **store_figures(db),
        "spans_per_s": result["acked_spans"] / result["elapsed_s"],
        "analysis_lag_p50_s": percentile(lags, 0.50) if lags else None,
        "analysis_lag_p99_s": percentile(lags, 0.99) if lags else None,
        "analysis_lag_probes": len(lags),
        "stored_spans_per_s": result["acked_spans"] / (result["elapsed_s"] + result["drain_s"]),
        "analyzed_spans_per_s": result["acked_spans"] / (result["elapsed_s"] + result["drain_s"]
                                                         + result["analysis_drain_s"]),
        "p50_ms": 1000 * percentile(latencies, 0.50),
        "p99_ms": 1000 * percentile(latencies, 0.99),
        "cpu_s": cpu, "cores": cpu / result["elapsed_s"], "peak_rss_mib": peak_rss,
        "thread_cores": thread_cores,
        "peak_pss_mib": max((sum(sample.values()) for sample in pss), default=0.0),
        # Each process's own peak (they need not peak together).
        "peak_pss_by_process_mib": {name: max(sample.get(name, 0.0) for sample in pss)
                                    for name in sorted({n for sample in pss for n in sample})},
        "collector_log_warnings": log_warnings,
    }


# --- Report ---------------------------------------------------------------------------------

def spread(runs: list[dict], key: str) -> dict:
    values = [run[key] for run in runs]
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def summarize(runs: list[dict], keys: list[str]) -> dict:
    return {key: spread(runs, key) for key in keys}


def fmt(figure: dict, digits: int = 0) -> str:
    return f"{figure['median']:,.{digits}f} [{figure['min']:,.{digits}f}-{figure['max']:,.{digits}f}]"


def print_table(report: dict) -> None:
    config, payload, limit = report["config"], report["payload"], report["limit"]
    transports = report["transports"].items()
    print(f"tracekit ingest: {config['spans_per_request']} spans/request, {config['senders']} senders, "
          f"{config['seconds']:g} s x {config['runs']} runs, {os.cpu_count()} CPUs; median [min-max]")
    print(f"payload: {payload['protobuf_bytes_per_span']:.0f} B/span OTLP protobuf, "
          f"{payload['json_bytes_per_span']:.0f} B/span OTLP/JSON\n")
    print(f"{'transport':<15}{'spans/s acked':>26}{'spans/s stored':>26}{'spans/s analyzed':>26}"
          f"{'of limit':>10}{'p50 ms':>8}{'p99 ms':>22}{'failed':>8}{'client cores':>14}")
    for name, t in transports:
        print(f"{name:<15}{fmt(t['spans_per_s']):>26}{fmt(t['stored_spans_per_s']):>26}"
              f"{fmt(t['analyzed_spans_per_s']):>26}"
              f"{t['stored_spans_per_s']['median'] / limit['limit_spans_per_s']['median']:>10.2f}"
              f"{t['p50_ms']['median']:>8.0f}{fmt(t['p99_ms']):>22}{t['failed_requests']:>8}"
              f"{t['client_cores']['median']:>14.2f}")
    for name, t in transports:
        if "analysis_lag_p99_s" in t:
            print(f"{name}: analysis lag (acknowledged → flow updated) p50 "
                  f"{fmt(t['analysis_lag_p50_s'], 2)} s, p99 {fmt(t['analysis_lag_p99_s'], 2)} s")
    print(f"\n{'collector':<15}{'peak PSS MiB':>13}{'peak RSS MiB':>13}{'CPU s':>8}{'cores':>7}{'disk B/span':>13}"
          f"{'free %':>8}{'unstored':>10}{'log warnings':>14}")
    for name, t in transports:
        print(f"{name:<15}{t['peak_pss_mib']['max']:>13.0f}{t['peak_rss_mib']['max']:>13.0f}"
              f"{t['cpu_s']['median']:>8.1f}"
              f"{t['cores']['median']:>7.2f}{t['disk_bytes_per_span']['median']:>13.0f}"
              f"{t['disk_free_pct']['median']:>8.0f}{t['unstored_spans']:>10}"
              f"{t['collector_log_warnings']:>14}")
    for name, t in transports:
        print(f"{name}: peak PSS by process (MiB, each its own peak): " + ", ".join(
            f"{process} {mib:.0f}" for process, mib in sorted(t["peak_pss_by_process_mib"].items())))
    print(f"\n{'mover thread':<15}{'busy':>8}{'in checkpoints':>16}{'spans/commit':>14}")
    for name, t in transports:
        print(f"{name:<15}{t['writer_busy']['median']:>8.2f}{t['checkpoint_share']['median']:>16.2f}"
              f"{t['spans_per_commit']['median']:>14,.0f}")
    peak: dict[str, float] = {}   # each thread's most cores on any transport
    for _, t in transports:
        for name, cores in t["thread_cores"].items():
            peak[name] = max(peak.get(name, 0.0), cores)
    shown = [name for name in sorted(peak, key=peak.get, reverse=True) if peak[name] >= 0.01][:8]
    print(f"\n{'cores by thread':<15}" + "".join(f"{name:>16}" for name in shown))
    for name, t in transports:
        print(f"{name:<15}" + "".join(f"{t['thread_cores'].get(n, 0.0):>16.2f}" for n in shown))
    print(f"\n{'limit: decode + append, 1 process':<36}{fmt(limit['limit_spans_per_s']):>26} spans/s, "
          f"disk {limit['disk_bytes_per_span']['median']:.0f} B/span "
          f"({limit['disk_free_pct']['median']:.0f}% free)")
    print(f"{'decode only, protobuf':<36}{fmt(limit['decode_protobuf_spans_per_s']):>26} spans/s")
    print(f"{'decode only, protobuf, Python decoder':<36}{fmt(limit['decode_protobuf_python_spans_per_s']):>26} spans/s")
    print(f"{'decode only, OTLP/JSON':<36}{fmt(limit['decode_json_spans_per_s']):>26} spans/s")
    print(f"{'decode only, OTLP/JSON, Python decoder':<36}{fmt(limit['decode_json_python_spans_per_s']):>26} spans/s")
    for name, t in transports:
        if t["pool_exhausted_runs"]:
            print(f"{name}: {t['pool_exhausted_runs']} run(s) sent every pre-encoded request before "
                  "the time was up (spans/s is over the shorter time)")


def transport_summary(runs: list[dict]) -> dict:
    return {
        **summarize(runs, ["spans_per_s", "stored_spans_per_s", "analyzed_spans_per_s", "p50_ms", "p99_ms", "client_cores", "cpu_s", "cores",
                           "peak_rss_mib", "peak_pss_mib", "disk_bytes_per_span", "disk_free_pct",
                           "writer_busy", "checkpoint_share", "spans_per_commit"]),
        # Median over the runs of each thread's cores (0 in a run it did not show in).
        "thread_cores": {name: statistics.median(run["thread_cores"].get(name, 0.0) for run in runs)
                         for name in {name for run in runs for name in run["thread_cores"]}},
        "peak_pss_by_process_mib": {name: max(run["peak_pss_by_process_mib"].get(name, 0.0) for run in runs)
                                    for name in {n for run in runs for n in run["peak_pss_by_process_mib"]}},
        "failed_requests": sum(sum(run["failures"].values()) for run in runs),
        "unstored_spans": sum(run["acked_spans"] - run["stored_spans"] for run in runs),
        "collector_log_warnings": sum(run["collector_log_warnings"] for run in runs),
        "pool_exhausted_runs": sum(run["pool_exhausted"] for run in runs),
        **(summarize(runs, ["analysis_lag_p50_s", "analysis_lag_p99_s"])
           if all(run["analysis_lag_probes"] for run in runs) else {}),
        "runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="sending time per run (default 8)")
    parser.add_argument("--runs", type=int, default=3, help="runs per measurement (default 3)")
    parser.add_argument("--transports", default=",".join(TRANSPORTS),
                        help="comma-separated, from " + ",".join(TRANSPORTS))
    parser.add_argument("--spans-per-request", type=int, default=512,
                        help="default 512, the SDK BatchSpanProcessor's batch size")
    parser.add_argument("--senders", type=int, default=4, help="concurrent requests in flight (default 4)")
    parser.add_argument("--rate", type=float, metavar="SPANS_PER_S",
                        help="send at this rate instead of as fast as the collector answers, and "
                             "probe the analysis lag meanwhile (spans acknowledged → flows updated)")
    parser.add_argument("--no-analysis", action="store_true",
                        help="run the collector without its analyst (the baseline for what the "
                             "analysis costs ingest)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    transports = args.transports.split(",")
    if unknown := set(transports) - set(TRANSPORTS):
        parser.error(f"unknown transport(s) {', '.join(sorted(unknown))}")

    templates = build_templates(args.spans_per_request)
    with tempfile.TemporaryDirectory(prefix="tracekit-bench-") as tmp:
        workdir = Path(tmp)
        limit_runs = [measure_limit(templates, args.spans_per_request, workdir) for _ in range(args.runs)]
        limit = summarize(limit_runs, list(limit_runs[0]))
        report_transports = {}
        for transport in transports:
            encoding = "json" if transport == "http-json" else "protobuf"
            # The collector stores no faster than the limit, and acknowledges at most 16 MiB
            # ahead of what it stores.
            rate = limit["limit_spans_per_s"]["max"]
            count = math.ceil(rate * args.seconds * POOL_HEADROOM / args.spans_per_request)
            runs = [run_transport(transport, templates[encoding], count, args, workdir)
                    for _ in range(args.runs)]
            report_transports[transport] = transport_summary(runs)

    report = {
        "config": {"seconds": args.seconds, "runs": args.runs, "senders": args.senders,
                   "spans_per_request": args.spans_per_request},
        "payload": {f"{encoding}_bytes_per_span": payload_bytes_per_span(ts, args.spans_per_request)
                    for encoding, ts in templates.items()},
        "limit": limit,
        "transports": report_transports,
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)


if __name__ == "__main__":
    main()
