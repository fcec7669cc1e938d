"""The whole shop in one process: every service on its own localhost port, one broker."""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from tracekit.demo import broker as brokers
from tracekit.demo.faults import Flags, GroundTruth
from tracekit.demo.services import SERVICE_NAMES, registry
from tracekit.demo.services.base import ShopContext
from tracekit.demo.telemetry import OtlpTarget, ServiceTelemetry


def ground_truth_recorder(target: OtlpTarget) -> tuple[GroundTruth, ServiceTelemetry]:
    """The recorder and the pipeline it exports through (service.name `tracekit-demo`)."""
    telemetry = ServiceTelemetry("tracekit-demo", target)
    return GroundTruth(telemetry.logger_provider), telemetry


class Shop:
    def __init__(self, target: OtlpTarget, broker_url: str | None = None,
                 namespace: str = "shop", data_dir: Path | None = None,
                 redis_url: str | None = None) -> None:
        self.target = target
        self.broker = brokers.connect(broker_url, namespace)
        self.flags = Flags()
        self.ground_truth, self._truth_telemetry = ground_truth_recorder(target)
        self._tmp = None
        if data_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="tracekit-shop-")
            data_dir = Path(self._tmp.name)
        self.data_dir = data_dir
        self.redis_url = redis_url
        self.peers: dict[str, str] = {}
        self.services = []
        self.telemetry: list[ServiceTelemetry] = [self._truth_telemetry]

    async def start(self) -> None:
        await self.broker.start()
        classes = registry()
        for name in SERVICE_NAMES:
            telemetry = ServiceTelemetry(name, self.target)
            self.telemetry.append(telemetry)
            ctx = ShopContext(telemetry, self.broker, self.flags, self.ground_truth, self.peers,
                              self.data_dir, self.redis_url)
            service = classes[name](ctx)
            self.peers[name] = await service.start()
            self.services.append(service)
        for service in self.services:
            await service.start_consumers()

    @property
    def frontend_url(self) -> str:
        return self.peers["frontend"]

    async def drain(self, timeout_s: float = 30.0) -> int:
        """Wait until the broker holds no message and no handler runs; returns what is left."""
        deadline = time.monotonic() + timeout_s
        quiet = 0
        while time.monotonic() < deadline:
            left = await self.broker.backlog()
            # Twice in a row: a handler that just finished may be about to publish.
            quiet = quiet + 1 if left == 0 else 0
            if quiet >= 2:
                return 0
            await asyncio.sleep(0.1)
        return await self.broker.backlog()

    def flush(self) -> bool:
        return all(t.flush() for t in self.telemetry)

    async def stop(self) -> None:
        for service in reversed(self.services):
            await service.stop()
        await self.broker.close()
        await asyncio.to_thread(self.flush)
        self.ground_truth.close()
        for telemetry in self.telemetry:
            telemetry.shutdown()
        if self._tmp is not None:
            self._tmp.cleanup()
