"""Fault scenarios, the runtime flags that switch them, and the ground truth they record.

Like the OpenTelemetry Demo's feature flags, a scenario is switched on while the shop runs.
Each scenario names the service and operation where its fault is injected: that is the answer
the analyzer's root-cause ranking is scored against.
"""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass
from typing import Callable

from opentelemetry import trace


@dataclass(frozen=True)
class Scenario:
    name: str
    service: str | None      # where the fault is injected (None: healthy)
    operation: str | None
    description: str


SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario("healthy", None, None, "no fault"),
    Scenario("payment-failure", "payment", "charge card",
             "a share of card charges fail with PaymentDeclined"),
    Scenario("payment-unreachable", "payment", "POST /charge",
             "the orchestrator's calls to payment are refused: a client error, no server span"),
    Scenario("slow-inventory-db", "inventory", "SELECT",
             "inventory's stock queries take 300-800 ms in the database"),
    Scenario("consumer-down", "shipping", "process payment.captured",
             "shipping stops consuming: messages wait in the queue, flows stay incomplete"),
    Scenario("retry-storm", "inventory", "POST /reserve",
             "inventory answers most reservations with 503; clients retry with backoff"),
    Scenario("circuit-breaker", "payment", "POST /charge",
             "payment answers 503; the orchestrator's breaker opens and fails fast"),
    Scenario("timeout-cascade", "carrier", "POST /quote",
             "the carrier takes 4 s to quote; deadlines expire up the call chain"),
    Scenario("poison-message", "fraud-detection", "process order.placed",
             "some OrderPlaced messages cannot be parsed and go to the dead-letter queue"),
    Scenario("saga-compensation", "shipping", "POST /shipments",
             "shipping refuses half the addresses; sagas refund and release stock"),
)}

FAULT_SCENARIOS = [name for name in SCENARIOS if name != "healthy"]


def scenario(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise ValueError(f"unknown scenario {name!r}; choose one of: {', '.join(SCENARIOS)}") from None


class Flags:
    """The scenario in force in this process; services read it on every request."""

    def __init__(self) -> None:
        self._scenario = "healthy"
        self._lock = threading.Lock()
        self._listeners: list[Callable[[str], None]] = []

    @property
    def scenario(self) -> str:
        return self._scenario

    def active(self, name: str) -> bool:
        return self._scenario == name

    def set(self, name: str) -> None:
        scenario(name)   # validates
        with self._lock:
            changed, self._scenario = self._scenario != name, name
            listeners = list(self._listeners)
        if changed:
            for listener in listeners:
                listener(name)

    def on_change(self, listener: Callable[[str], None]) -> None:
        with self._lock:
            self._listeners.append(listener)


GROUND_TRUTH_SCOPE = "tracekit.demo.ground_truth"


class GroundTruth:
    """Records what the demo did, as OTLP log records under its own scope.

    They travel with the rest of the telemetry, so the store holds them whichever process
    (or container) injected the fault; the views `demo_scenarios`, `demo_faults` and
    `demo_flows` read them back. A fault record is emitted inside the span where the fault
    was injected, so it carries that span's trace and span id.
    """

    def __init__(self, logger_provider) -> None:
        from opentelemetry.instrumentation.logging.handler import LoggingHandler

        self._log = logging.getLogger(GROUND_TRUTH_SCOPE)   # the scope name of its records
        self._log.propagate = False
        self._log.setLevel(logging.INFO)
        handler = LoggingHandler(level=logging.INFO, logger_provider=logger_provider)
        self._log.addHandler(handler)
        self._handler = handler

    def _emit(self, event: str, **attributes) -> None:
        extra = {f"tracekit.demo.{key}": value for key, value in attributes.items()
                 if value is not None}
        extra["tracekit.demo.event"] = event
        self._log.info(event, extra=extra)

    def scenario_started(self, run_id: str, name: str) -> None:
        s = scenario(name)
        self._emit("scenario.start", run_id=run_id, scenario=name, service=s.service,
                   operation=s.operation, description=s.description)

    def scenario_ended(self, run_id: str, name: str) -> None:
        self._emit("scenario.end", run_id=run_id, scenario=name)

    def fault(self, name: str, service: str, operation: str, order_id: str | None) -> None:
        """A fault injected here, now, in the current span (which must be recording)."""
        self._emit("fault", scenario=name, service=service, operation=operation,
                   order_id=order_id)

    def flow(self, order_id: str, kind: str, scenario_name: str) -> None:
        """A flow the traffic generator started; its trace is the current one."""
        span = trace.get_current_span().get_span_context()
        self._emit("flow", order_id=order_id, kind=kind, scenario=scenario_name,
                   root_trace_id=format(span.trace_id, "032x") if span.is_valid else None)

    def close(self) -> None:
        self._log.removeHandler(self._handler)


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]
