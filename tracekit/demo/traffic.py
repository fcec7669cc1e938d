"""The load generator: shoppers at a steady rate, and the scenario schedule it switches."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import aiohttp
from opentelemetry.trace import Status, StatusCode

from tracekit.demo.faults import FAULT_SCENARIOS, Flags, GroundTruth, new_run_id, scenario
from tracekit.units import parse_duration

# Which workflow a shopper starts: the orchestrated saga, the choreographed checkout, a return.
DEFAULT_MIX = {"order": 0.4, "checkout": 0.45, "return": 0.15}
PATHS = {"order": "/api/orders", "checkout": "/api/checkout", "return": "/api/returns"}
STYLE = {"order": "orchestrated", "checkout": "choreographed", "return": "hybrid"}


@dataclass(frozen=True)
class Step:
    scenario: str
    seconds: float


def parse_schedule(spec: str) -> list[Step]:
    """'healthy:2m,payment-failure:1m,healthy:2m' → steps."""
    steps = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, sep, length = part.partition(":")
        if not sep:
            raise ValueError(f"schedule step {part!r} needs a length, e.g. {part}:1m")
        scenario(name)
        steps.append(Step(name, parse_duration(length)))
    if not steps:
        raise ValueError("the schedule is empty; e.g. healthy:2m,payment-failure:1m,healthy:2m")
    return steps


def default_schedule(duration_s: float, fault: str | None = None) -> list[Step]:
    """One fault: healthy, the fault, healthy again, in thirds. Otherwise a tour of the faults,
    each between healthy stretches, in segments of at least 5 s."""
    if fault is not None:
        scenario(fault)
        third = duration_s / 3
        return [Step("healthy", third), Step(fault, third), Step("healthy", duration_s - 2 * third)]
    segment = max(5.0, duration_s / 6)
    steps, faults, elapsed = [], list(FAULT_SCENARIOS), 0.0
    while elapsed < duration_s:
        name = "healthy" if len(steps) % 2 == 0 else faults[(len(steps) // 2) % len(faults)]
        length = min(segment, duration_s - elapsed)
        steps.append(Step(name, length))
        elapsed += length
    return steps


def tour(segment_s: float = 60.0, rounds: int = 100) -> list[Step]:
    """Every fault in turn, each after a healthy stretch, `rounds` times (for runs without end)."""
    one = [step for name in FAULT_SCENARIOS
           for step in (Step("healthy", segment_s), Step(name, segment_s))]
    return one * rounds


class FlagsControl:
    """Switches the scenario in every service: one shared `Flags` in-process, or `PUT /_flags`
    on each service when they run as processes or containers."""

    def __init__(self, flags: Flags | None = None, service_urls: list[str] = ()) -> None:
        self.flags = flags
        self.service_urls = list(service_urls)

    async def set(self, name: str, session: aiohttp.ClientSession) -> None:
        if self.flags is not None:
            self.flags.set(name)
        for url in self.service_urls:
            async with session.put(f"{url}/_flags", json={"scenario": name}) as response:
                if response.status != 200:
                    raise RuntimeError(f"{url} refused scenario {name}: {await response.text()}")


@dataclass
class TrafficStats:
    started: Counter = field(default_factory=Counter)
    succeeded: Counter = field(default_factory=Counter)
    failed: Counter = field(default_factory=Counter)
    dropped: int = 0
    scenario: str = "healthy"
    scenarios_run: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"started": dict(self.started), "succeeded": dict(self.succeeded),
                "failed": dict(self.failed), "dropped": self.dropped,
                "scenarios": self.scenarios_run}


def random_order(order_id: str) -> dict:
    items = [{"sku": f"sku-{random.randrange(20)}", "quantity": random.randint(1, 3)}
             for _ in range(random.randint(1, 3))]
    return {"order_id": order_id, "items": items,
            "total": round(sum(i["quantity"] * random.uniform(5, 80) for i in items), 2),
            "address": {"zip": f"{random.randrange(10000, 99999)}", "country": "DE"},
            "customer": f"c-{random.randrange(5000)}"}


class Traffic:
    """Starts `rate` flows per second against the frontend, following the schedule."""

    def __init__(self, telemetry, ground_truth: GroundTruth, frontend_url: str, rate: float,
                 control: FlagsControl, mix: dict[str, float] | None = None,
                 max_in_flight: int = 1000) -> None:
        if not 0 < rate <= 1000:
            raise ValueError("the rate is in flows per second, between 1 and 1000 (try 5-200)")
        self.telemetry = telemetry
        self.ground_truth = ground_truth
        self.frontend_url = frontend_url
        self.rate = rate
        self.control = control
        self.mix = mix or DEFAULT_MIX
        self.max_in_flight = max_in_flight
        self.stats = TrafficStats()
        self._in_flight: set[asyncio.Task] = set()

    async def run(self, schedule: list[Step], stop: asyncio.Event | None = None) -> TrafficStats:
        stop = stop or asyncio.Event()
        async with self.telemetry.client_session(
                timeout=aiohttp.ClientTimeout(total=15)) as session:
            for step in schedule:
                if stop.is_set():
                    break
                await self._run_step(step, session, stop)
            await self.control.set("healthy", session)
            self.stats.scenario = "healthy"
            if self._in_flight:
                await asyncio.wait(self._in_flight, timeout=20)
        return self.stats

    async def _run_step(self, step: Step, session, stop: asyncio.Event) -> None:
        run_id = new_run_id()
        await self.control.set(step.scenario, session)
        self.stats.scenario = step.scenario
        self.stats.scenarios_run.append(step.scenario)
        self.ground_truth.scenario_started(run_id, step.scenario)
        try:
            kinds, weights = zip(*self.mix.items())
            interval = 1.0 / self.rate
            start = time.monotonic()
            next_at = start
            while time.monotonic() - start < step.seconds and not stop.is_set():
                if len(self._in_flight) >= self.max_in_flight:
                    self.stats.dropped += 1
                else:
                    kind = random.choices(kinds, weights)[0]
                    task = asyncio.create_task(self._flow(kind, step.scenario, session))
                    self._in_flight.add(task)
                    task.add_done_callback(self._in_flight.discard)
                next_at += interval
                # Pacing to the requested rate (not synchronisation): sleep to the next start.
                delay = next_at - time.monotonic()
                if delay > 0:
                    try:
                        await asyncio.wait_for(stop.wait(), timeout=delay)
                    except TimeoutError:
                        pass
        finally:
            self.ground_truth.scenario_ended(run_id, step.scenario)

    async def _flow(self, kind: str, scenario_name: str, session: aiohttp.ClientSession) -> None:
        order_id = f"o-{uuid.uuid4().hex[:10]}"
        self.stats.started[kind] += 1
        tracer = self.telemetry.tracer
        with tracer.start_as_current_span(f"shopper {kind}",
                                          attributes={"order.id": order_id,
                                                      "shop.workflow": kind,
                                                      "shop.workflow.style": STYLE[kind]}) as span:
            self.ground_truth.flow(order_id, kind, scenario_name)
            try:
                async with session.post(f"{self.frontend_url}{PATHS[kind]}",
                                        json=random_order(order_id)) as response:
                    await response.read()
                    ok = response.status < 400
            except (aiohttp.ClientError, TimeoutError) as exc:
                span.record_exception(exc)
                ok = False
            if ok:
                self.stats.succeeded[kind] += 1
            else:
                self.stats.failed[kind] += 1
                span.set_status(Status(StatusCode.ERROR, f"{kind} of {order_id} failed"))
