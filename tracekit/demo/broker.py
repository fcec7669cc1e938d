"""The message broker the choreographed services talk through.

`InProcessBroker` needs nothing installed (the zero-install default of `tracekit demo`);
`AmqpBroker` uses a real RabbitMQ through aio-pika. Both route by routing key (one topic
exchange), deliver to one queue per consuming service, ack on success and dead-letter a
message whose handler raises (no requeue: a poison message must not loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Awaitable, Callable
from urllib.parse import urlsplit, urlunsplit

QUEUE_TTL_MS = 30 * 60 * 1000   # unused demo queues disappear from a shared RabbitMQ


@dataclass
class Delivery:
    routing_key: str
    body: bytes
    headers: dict[str, str]
    message_id: str
    queue: str
    redelivered: bool = False
    delivery_tag: int | None = None


Handler = Callable[[Delivery], Awaitable[None]]


class Subscription:
    """A running consumer; `pause()` stops taking messages (they wait), `resume()` goes on."""

    async def pause(self) -> None: ...

    async def resume(self) -> None: ...


def redact_url(url: str) -> str:
    """The broker URL without its password, for logs and summaries."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


# --- in-process -------------------------------------------------------------------------


class _LocalQueue(Subscription):
    def __init__(self, broker: "InProcessBroker", name: str, handler: Handler, prefetch: int):
        self.name = name
        self.messages: asyncio.Queue[Delivery] = asyncio.Queue()
        self._broker = broker
        self._handler = handler
        self._running = asyncio.Event()
        self._running.set()
        self._workers = [asyncio.create_task(self._work()) for _ in range(prefetch)]

    async def _work(self) -> None:
        while True:
            await self._running.wait()
            delivery = await self.messages.get()
            if not self._running.is_set():      # paused while waiting: put it back in front
                self.messages._queue.appendleft(delivery)   # noqa: SLF001 (asyncio.Queue's deque)
                continue
            self._broker.in_flight += 1
            try:
                await self._handler(delivery)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the handler's span has the error; the message is dead
                await self._broker._dead_letter(delivery, f"rejected: {type(exc).__name__}")
            finally:
                self._broker.in_flight -= 1

    async def pause(self) -> None:
        self._running.clear()

    async def resume(self) -> None:
        self._running.set()

    async def stop(self) -> None:
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)


class InProcessBroker:
    """Queues in this process's event loop, with RabbitMQ's routing and dead-lettering."""

    system = "inprocess"

    def __init__(self, namespace: str = "shop") -> None:
        self.exchange = f"{namespace}.events"
        self.dead_letter_queue = f"{namespace}.dead-letter"
        self._bindings: dict[str, list[_LocalQueue]] = {}
        self._queues: list[_LocalQueue] = []
        self._dead: list[_LocalQueue] = []
        self._sequence = 0
        self.in_flight = 0

    @property
    def address(self) -> str:
        return "in-process"

    async def start(self) -> None:
        pass

    async def publish(self, routing_key: str, body: bytes, headers: dict[str, str],
                      message_id: str) -> None:
        for queue in self._bindings.get(routing_key, ()):
            self._sequence += 1
            queue.messages.put_nowait(Delivery(routing_key, body, dict(headers), message_id,
                                               queue.name, delivery_tag=self._sequence))

    async def subscribe(self, queue: str, routing_keys: list[str], handler: Handler,
                        prefetch: int = 16) -> Subscription:
        local = _LocalQueue(self, queue, handler, prefetch)
        self._queues.append(local)
        for key in routing_keys:
            self._bindings.setdefault(key, []).append(local)
        return local

    async def subscribe_dead_letters(self, handler: Handler) -> Subscription:
        local = _LocalQueue(self, self.dead_letter_queue, handler, 1)
        self._dead.append(local)
        return local

    async def _dead_letter(self, delivery: Delivery, reason: str) -> None:
        headers = {**delivery.headers, "x-first-death-queue": delivery.queue,
                   "x-first-death-reason": reason}
        for queue in self._dead:
            queue.messages.put_nowait(Delivery(delivery.routing_key, delivery.body, headers,
                                               delivery.message_id, queue.name))

    async def backlog(self) -> int:
        """Messages queued or being handled, dead letters included."""
        return sum(q.messages.qsize() for q in self._queues + self._dead) + self.in_flight

    async def close(self) -> None:
        for queue in self._queues + self._dead:
            await queue.stop()


# --- RabbitMQ ---------------------------------------------------------------------------


class _AmqpSubscription(Subscription):
    def __init__(self, queue, callback) -> None:
        self.queue = queue
        self._queue = queue
        self._callback = callback
        self._tag: str | None = None

    async def resume(self) -> None:
        if self._tag is None:
            self._tag = await self._queue.consume(self._callback)

    async def pause(self) -> None:
        if self._tag is not None:
            tag, self._tag = self._tag, None
            await self._queue.cancel(tag)


class AmqpBroker:
    """RabbitMQ through aio-pika: a topic exchange, a queue per consuming service, a DLX.

    Publishes wait for the broker's confirm. Queue names carry the namespace, so demo runs
    (and test runs) on a shared RabbitMQ do not see each other's messages.
    """

    system = "rabbitmq"

    def __init__(self, url: str, namespace: str = "shop") -> None:
        self.url = url
        self.exchange = f"{namespace}.events"
        self.dead_letter_exchange = f"{namespace}.dlx"
        self.dead_letter_queue = f"{namespace}.dead-letter"
        self._connection = None
        self._channel = None
        self._exchange = None
        self._subscriptions: list[_AmqpSubscription] = []
        self.in_flight = 0

    @property
    def address(self) -> str:
        return redact_url(self.url)

    async def start(self) -> None:
        import aio_pika

        try:
            self._connection = await aio_pika.connect_robust(self.url, timeout=10)
        except (OSError, asyncio.TimeoutError, aio_pika.exceptions.AMQPError) as exc:
            raise ConnectionError(f"cannot reach RabbitMQ at {self.address}: {exc}. Is it "
                                  "running? Leave out --broker to use the in-process broker.") from exc
        self._channel = await self._connection.channel(publisher_confirms=True)
        self._exchange = await self._channel.declare_exchange(
            self.exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        dlx = await self._channel.declare_exchange(
            self.dead_letter_exchange, aio_pika.ExchangeType.FANOUT, durable=True)
        dead = await self._channel.declare_queue(
            self.dead_letter_queue, durable=True, arguments={"x-expires": QUEUE_TTL_MS})
        await dead.bind(dlx)

    async def publish(self, routing_key: str, body: bytes, headers: dict[str, str],
                      message_id: str) -> None:
        import aio_pika

        message = aio_pika.Message(body, headers=headers, message_id=message_id,
                                   content_type="application/json",
                                   delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                                   timestamp=time.time())
        await self._exchange.publish(message, routing_key=routing_key)

    async def _declare(self, name: str, routing_keys: list[str], prefetch: int, dead: bool):
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=prefetch)
        arguments = {"x-expires": QUEUE_TTL_MS}
        if not dead:
            arguments["x-dead-letter-exchange"] = self.dead_letter_exchange
        queue = await channel.declare_queue(name, durable=True, arguments=arguments)
        for key in routing_keys:
            await queue.bind(self.exchange, routing_key=key)
        return queue

    def _callback(self, queue_name: str, handler: Handler):
        async def on_message(message) -> None:
            headers = {key: value.decode() if isinstance(value, bytes) else str(value)
                       for key, value in (message.headers or {}).items()
                       if not isinstance(value, (list, dict))}
            for death in (message.headers or {}).get("x-death") or ():
                headers.setdefault("x-first-death-queue", str(death.get("queue", "")))
                headers.setdefault("x-first-death-reason", str(death.get("reason", "")))
            delivery = Delivery(message.routing_key or "", message.body, headers,
                                message.message_id or "", queue_name,
                                redelivered=bool(message.redelivered),
                                delivery_tag=message.delivery_tag)
            self.in_flight += 1
            try:
                await handler(delivery)
            except Exception:
                await message.reject(requeue=False)    # → the dead-letter exchange
            else:
                await message.ack()
            finally:
                self.in_flight -= 1
        return on_message

    async def subscribe(self, queue: str, routing_keys: list[str], handler: Handler,
                        prefetch: int = 16) -> Subscription:
        declared = await self._declare(queue, routing_keys, prefetch, dead=False)
        subscription = _AmqpSubscription(declared, self._callback(queue, handler))
        await subscription.resume()
        self._subscriptions.append(subscription)
        return subscription

    async def subscribe_dead_letters(self, handler: Handler) -> Subscription:
        declared = await self._declare(self.dead_letter_queue, [], 4, dead=True)
        subscription = _AmqpSubscription(declared, self._callback(self.dead_letter_queue, handler))
        await subscription.resume()
        self._subscriptions.append(subscription)
        return subscription

    async def backlog(self) -> int:
        """Messages ready in this run's queues (a passive declare asks RabbitMQ) or being handled."""
        ready = 0
        for subscription in self._subscriptions:
            declared = await self._channel.declare_queue(subscription.queue.name, passive=True)
            ready += declared.declaration_result.message_count or 0
        return ready + self.in_flight

    async def close(self) -> None:
        for subscription in self._subscriptions:
            with contextlib.suppress(Exception):
                await subscription.pause()
        if self._connection is not None:
            await self._connection.close()


def check_url(url: str | None) -> None:
    if url and urlsplit(url).scheme not in ("amqp", "amqps"):
        raise ValueError(f"unsupported broker URL {redact_url(url)!r}: use "
                         "amqp://user:pass@host:5672/ (RabbitMQ), or leave out --broker")


def connect(url: str | None, namespace: str = "shop"):
    """The broker for `--broker URL` (amqp:// or amqps://), or the in-process one."""
    check_url(url)
    return AmqpBroker(url, namespace) if url else InProcessBroker(namespace)
