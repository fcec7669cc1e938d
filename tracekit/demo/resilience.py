"""What real clients wrap their calls in: retries with backoff, a circuit breaker, deadlines."""

from __future__ import annotations

import asyncio
import contextvars
import random
import time
from dataclasses import dataclass

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

# The attempt number of the request being sent (0 = first); the HTTP client hook copies it to
# `http.request.resend_count`, as the semantic conventions ask for retried requests.
resend_count: contextvars.ContextVar[int] = contextvars.ContextVar("resend_count", default=0)


class CircuitOpen(Exception):
    """The breaker is open: the call was not made."""


class Retryable(Exception):
    """A failure worth retrying (503, connection refused)."""


@dataclass
class RetryPolicy:
    attempts: int = 4
    base_delay_s: float = 0.05
    max_delay_s: float = 0.8

    def delay(self, attempt: int) -> float:
        """Exponential backoff with full jitter."""
        return random.uniform(0, min(self.max_delay_s, self.base_delay_s * 2 ** attempt))


async def with_retries(call, policy: RetryPolicy):
    """Await `call()` until it does not raise Retryable, at most `policy.attempts` times."""
    for attempt in range(policy.attempts):
        token = resend_count.set(attempt)
        try:
            return await call()
        except Retryable:
            if attempt == policy.attempts - 1:
                raise
        finally:
            resend_count.reset(token)
        await asyncio.sleep(policy.delay(attempt))


class CircuitBreaker:
    """Closed → open after `threshold` consecutive failures; half-open after `cooldown_s`.

    An open breaker fails fast: a span `circuit-breaker <name>` with status ERROR and no
    downstream call, which is what the analyzer must recognise.
    """

    def __init__(self, name: str, tracer: trace.Tracer, threshold: int = 5,
                 cooldown_s: float = 2.0) -> None:
        self.name = name
        self._tracer = tracer
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self.failures = 0
        self.opened_at: float | None = None

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "half-open" if time.monotonic() - self.opened_at >= self.cooldown_s else "open"

    async def call(self, call):
        if self.state == "open":
            with self._tracer.start_as_current_span(
                    f"circuit-breaker {self.name}",
                    attributes={"circuit_breaker.name": self.name, "circuit_breaker.state": "open"},
                    record_exception=False, set_status_on_exception=False) as span:
                span.set_status(Status(StatusCode.ERROR, f"circuit {self.name} is open"))
                span.set_attribute("error.type", "CircuitOpen")
            raise CircuitOpen(f"circuit {self.name} is open")
        try:
            result = await call()
        except Exception:
            self.failures += 1
            if self.state == "half-open" or self.failures >= self.threshold:
                self.opened_at = time.monotonic()
            raise
        self.failures = 0
        self.opened_at = None
        return result
