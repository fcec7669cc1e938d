"""The collector: writer, OTLP receivers (and /metrics), query endpoint, started and stopped in
order.

Start downstream first (store, writer), then the receivers; stop upstream first (receivers
stop accepting), then drain the writer, checkpoint, close.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import secrets
import signal
import ssl
import multiprocessing
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from collectors.analyst import NICENESS as ANALYSIS_NICENESS, Analyst
from collectors.admission import ANALYSIS_UP_TO, REFUSE_FROM, Admission, MemoryGuard, return_freed_memory_to_the_system
from collectors.decode_pool import DecodePool
from collectors.decoding import exit_with_parent
from collectors.retention import Retention, RetentionSettings
from collectors.grpc_receiver import build_grpc_server
from collectors.http_receiver import OtlpHttpReceiver
from collectors.query_endpoint import QueryEndpoint
from collectors.telemetry import FLOW_DELAY_S, Telemetry
from collectors.tls import ServerTls
from collectors.zipkin_receiver import ZipkinReceiver
from tracekit import discovery
from tracekit.analysis import worker as analysis_worker
from tracekit.errors import TracekitError
from tracekit.lake.location import LakeLocation
from tracekit.redaction import DEFAULT_PATTERNS
from tracekit.store import DEFAULT_TIMEOUT_S
from tracekit.threads import lower_thread_priority, name_os_thread
from tracekit.writable import WritableStore
from tracekit.writer import Writer, WriterLimits

log = logging.getLogger("tracekit.collector")



@dataclass(frozen=True)
class CollectorSettings:
    db: Path = Path("tracekit.duckdb")
    grpc: str = "127.0.0.1:4317"
    http: str = "127.0.0.1:4318"
    max_request_bytes: int = 64 * 1024 * 1024   # after decompression
    # Resident memory of the collector and its decode and analysis workers; exports are refused
    # (retryably) from 85% of it, and the analysis sizes its chunks to stay under 70%. 0: no
    # limit (the writer's queue bounds still apply). At 20k spans/s the collector held ~600 MiB
    # and the analysis worker ~150 MiB at rest plus ~5 KiB per span of its chunk: 1536 leaves
    # the analysis its full 60k-span chunk there; under 1024 it works in smaller ones.
    memory_limit_mib: int = 1536
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    limits: WriterLimits = field(default_factory=WriterLimits)
    query_timeout_s: float = DEFAULT_TIMEOUT_S
    analysis: bool = True     # keep the analysis tables current (collectors/analyst.py)
    shutdown_timeout_s: float = 10.0
    auth_token: str | None = None   # when set, both receivers require "Bearer <token>"
    redact_patterns: tuple[str, ...] = DEFAULT_PATTERNS   # attribute keys masked at ingest
    tls: ServerTls | None = None   # both receivers use TLS (mTLS with a client CA); see tls.py
    # Protobuf trace requests decode in C (~340k spans/s in one worker); OTLP/JSON and logs
    # in Python. One worker on 2 cores kept ingest as fast over every transport as two did
    # (the writer is the bound) and the collector 70 MiB smaller.
    decode_workers: int = field(default_factory=lambda: max(1, min(2, (os.cpu_count() or 1) - 1)))
    # DuckDB threads for the writer (and the queries it answers): the cores the decode
    # workers leave. Small group commits run faster on one thread than split over two
    # (measured: 1,024-span commits at 47k spans/s on one thread, 33k on two).
    duckdb_threads: int = field(default_factory=lambda: max(1, (os.cpu_count() or 1) - 2))
    zipkin: str | None = None     # HOST:PORT of the Zipkin v2 receiver; None: off
    keep_proxy_spans: bool = False   # Zipkin sidecar spans keep the proxy's service name
    # GET /metrics on the HTTP port (docs/guides/metrics.md): span metrics named as Tempo's
    # metrics-generator ("tempo") or the OpenTelemetry span-metrics connector ("otel"); a flow
    # is counted once it has ended this long ago (late spans may still change it until then).
    metrics_naming: str = "tempo"
    flow_metrics_delay_s: float = FLOW_DELAY_S
    # Also ship what is committed to this lake (collectors/lake_sink.py), every this often.
    lake: LakeLocation | None = None
    lake_every_s: float = 10.0


def split_address(address: str) -> tuple[str, int]:
    """'host:port' or '[v6]:port' → (host, port); raises ValueError with a hint."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"address {address!r} is not HOST:PORT (e.g. 127.0.0.1:4317)")
    return host.strip("[]") or "127.0.0.1", int(port)


def join_address(host: str, port: int) -> str:
    """HOST:PORT, with an IPv6 host in brackets so that it reads back (and works in URLs)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Collector:
    """A running collector; `await start()`, then `await stop()` (safe to call twice)."""

    def __init__(self, settings: CollectorSettings, store: WritableStore):
        self.settings = settings
        self.store = store
        self.writer = Writer(store, settings.limits)
        self.decoders = DecodePool(settings.decode_workers, settings.max_request_bytes,
                                   settings.redact_patterns)
        return_freed_memory_to_the_system()
        # The limit covers the analysis worker too: its memory is the collector's.
        self.memory = MemoryGuard(settings.memory_limit_mib,
                                  lambda: [*self.decoders.pids(), *analysis_worker.pids()])
        self.admission = Admission(self.writer, self.memory)
        self.retention = Retention(store, settings.retention, self.writer)
        # The analysis takes what memory leaves below ANALYSIS_UP_TO of the limit: smaller
        # chunks when it is short, none when shorter still. Exports come first.
        self.analyst = Analyst(store, room_mib=lambda: self.memory.room_mib(ANALYSIS_UP_TO),
                               commit=lambda: self.writer.flush(0))
        self.telemetry = Telemetry(settings.metrics_naming, settings.flow_metrics_delay_s).attach(
            store, self.writer, self.admission, self.memory,
            self.analyst if settings.analysis else None)
        self.lake = None
        if settings.lake is not None:
            from collectors.lake_sink import LakeSink

            self.lake = LakeSink(store, settings.lake, settings.lake_every_s,
                                 commit=self.writer.flush)
        self._executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="tracekit-sql",
                                            initializer=name_os_thread)
        self._grpc = None
        self._runners: list[web.AppRunner] = []
        self.grpc_address = ""
        self.http_address = ""
        self.zipkin_address = ""
        self.query_url = ""
        self._stopped = False
        self._endpoint: QueryEndpoint | None = None

    async def start(self) -> None:
        tls = self.settings.tls
        for address in (self.settings.grpc, self.settings.http,
                        *([self.settings.zipkin] if self.settings.zipkin else [])):
            host, _ = split_address(address)
            if _is_loopback(host):
                continue
            if not self.settings.auth_token and tls is None:
                log.warning("listening on %s beyond localhost without TLS or auth: anyone who "
                            "can reach it can write spans", address)
            elif tls is None:
                log.warning("listening on %s beyond localhost without TLS: the bearer token and "
                            "the spans cross the network in clear text (add --tls-cert/--tls-key)",
                            address)
        self.writer.start()
        self.telemetry.start()
        await asyncio.get_running_loop().run_in_executor(None, self.decoders.warm_up)
        self.memory.start()
        self.retention.start()
        if self.memory.over:
            log.warning("the collector uses %.0f MiB at start, over %.0f%% of its %d MiB memory "
                        "limit: every export will be refused; raise --memory-limit",
                        self.memory.resident_mib, 100 * REFUSE_FROM, self.memory.limit_mib)
        self._grpc, grpc_port = build_grpc_server(self.writer, self.decoders, self.settings.grpc,
                                                  self.settings.max_request_bytes,
                                                  self.settings.auth_token,
                                                  tls.grpc_credentials() if tls else None,
                                                  self.admission, self.telemetry)
        self._grpc.start()
        grpc_host, _ = split_address(self.settings.grpc)
        self.grpc_address = join_address(grpc_host, grpc_port)

        http_host, http_port = split_address(self.settings.http)
        receiver = OtlpHttpReceiver(self.writer, self.decoders, self.settings.max_request_bytes,
                                    self.settings.auth_token, self.admission, self.telemetry)
        # The receiver inflates gzip itself, bounded by the size limit (gzip bombs stop early).
        port = await self._serve(receiver.app(), http_host, http_port, auto_decompress=False,
                                 ssl_context=tls.ssl_context() if tls else None)
        self.http_address = join_address(http_host, port)
        if self.settings.zipkin:
            zipkin_host, zipkin_port = split_address(self.settings.zipkin)
            zipkin = ZipkinReceiver(self.writer, self.decoders, self.settings.max_request_bytes,
                                    self.settings.auth_token, self.admission,
                                    self.settings.keep_proxy_spans, self.telemetry)
            port = await self._serve(zipkin.app(), zipkin_host, zipkin_port, auto_decompress=False,
                                     ssl_context=tls.ssl_context() if tls else None)
            self.zipkin_address = join_address(zipkin_host, port)

        token = secrets.token_urlsafe(32)
        # The analysis tables are computed in a worker process, started on first use: ingest
        # keeps the collector's CPU meanwhile.
        analysis_worker.run_in_worker(lambda: ProcessPoolExecutor(
            max_workers=1, mp_context=multiprocessing.get_context("spawn"),
            initializer=analysis_worker_started))
        if self.settings.analysis:
            self.analyst.start()
        if self.lake is not None:
            self.lake.start()
        self._endpoint = QueryEndpoint(self.store, token, self._executor, self.settings.query_timeout_s,
                                       flush=self.writer.flush,
                                       analyzed=self.analyst.wait_current if self.settings.analysis
                                       else None)
        query_port = await self._serve(self._endpoint.app(), "127.0.0.1", 0)
        self.query_url = f"http://127.0.0.1:{query_port}/query"
        discovery.publish(self.settings.db, discovery.CollectorEndpoint(
            pid=os.getpid(), query_url=self.query_url, token=token,
            grpc=self.grpc_address, http=self.http_address,
            ingest_token=self.settings.auth_token,
            tls_cert=str(Path(tls.cert_file).resolve()) if tls else None,
            mtls=bool(tls and tls.mutual)))

    async def _serve(self, app: web.Application, host: str, port: int,
                     ssl_context: ssl.SSLContext | None = None, **kwargs) -> int:
        # Handlers left at shutdown get a few seconds, not aiohttp's default minute: queries are
        # interrupted, and exports wait on the writer, which drains on its own timeout.
        runner = web.AppRunner(app, access_log=None, handle_signals=False,
                               shutdown_timeout=self.settings.shutdown_timeout_s / 4, **kwargs)
        await runner.setup()
        site = web.TCPSite(runner, host, port, reuse_address=True, ssl_context=ssl_context)
        await site.start()
        self._runners.append(runner)
        return runner.addresses[-1][1]

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        discovery.withdraw(self.settings.db)
        if self._endpoint is not None:
            self._endpoint.interrupt_all()
        grace = self.settings.shutdown_timeout_s / 2
        if self._grpc is not None:
            stopping = self._grpc.stop(grace)
            await asyncio.get_running_loop().run_in_executor(None, stopping.wait, grace)
        for runner in reversed(self._runners):
            await runner.cleanup()
        self.telemetry.stop()
        await asyncio.get_running_loop().run_in_executor(None, self.retention.stop)
        timeout_s = self.settings.shutdown_timeout_s
        await asyncio.get_running_loop().run_in_executor(
            None, lambda: self.writer.shutdown(timeout_s, before_close=lambda: self._last_updates(timeout_s)))
        self.analyst.stop(0)    # if the writer could not close: stop polling all the same
        if self.lake is not None:
            self.lake.stop(0)
        self.decoders.shutdown()
        self.memory.stop()
        analysis_worker.run_in_worker(None)
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _last_updates(self, timeout_s: float) -> None:
        """Once the writer has drained, before the store closes: the analysis and the lake
        take in its last commits."""
        self.analyst.stop(timeout_s)
        if self.lake is not None:
            self.lake.stop(timeout_s)


def analysis_worker_started() -> None:
    """The analysis worker: named for `ps`, gone with the collector, and below ingest's CPU
    priority."""
    name_os_thread("tracekit-flows")
    exit_with_parent()
    lower_thread_priority(ANALYSIS_NICENESS)


def build_collector(settings: CollectorSettings) -> Collector:
    """Open the store for writing (migrating it) and build a collector on it."""
    return Collector(settings, WritableStore.open(Path(settings.db), threads=settings.duckdb_threads,
                                                  memory_limit_mib=duckdb_memory_mib(settings)))


def duckdb_memory_mib(settings: CollectorSettings) -> int | None:
    """DuckDB's share of the collector's memory limit: a quarter, at least 128 MiB (queries
    through the collector run in it too, and spill to a temp file beyond it)."""
    if not settings.memory_limit_mib:
        return None
    return max(128, settings.memory_limit_mib // 4)


async def serve(settings: CollectorSettings, announce=print) -> None:
    """Run a collector until SIGINT or SIGTERM, then drain, commit and close."""
    collector = build_collector(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        try:
            await collector.start()
        except OSError as exc:
            raise TracekitError(f"cannot listen: {exc}. Pick another port (port 0 picks a free "
                                "one) or stop what holds it.") from None
        announce(f"tracekit collector: store {settings.db}")
        announce(f"otlp-grpc {collector.grpc_address}")
        announce(f"otlp-http {collector.http_address}")
        if collector.zipkin_address:
            announce(f"zipkin {collector.zipkin_address}")
        if settings.lake is not None:
            announce(f"lake {settings.lake.display()} every {settings.lake_every_s:g} s")
        announce("ready")
        await stop.wait()
    finally:
        await collector.stop()
        writer = collector.writer
        log.info("stopped: %d spans, %d logs committed in %d transactions (writer busy %.1f s, "
                 "%.1f s of it in %d checkpoints; acknowledged in %d intake commits, %.1f s); "
                 "%d duplicate spans ignored, %d items and %d exports refused while overloaded; "
                 "peak memory %.0f MiB",
                 writer.committed_spans, writer.committed_logs, writer.commits, writer.busy_s,
                 writer.store.checkpoint_s, writer.store.checkpoints, writer.accepts, writer.accept_s,
                 writer.duplicate_spans, writer.refused_items, collector.admission.refused,
                 collector.memory.peak_mib)
