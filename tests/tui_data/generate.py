"""Writes shop.jsonl: a small, fixed OTLP/JSON export of a shop (orchestrated orders, one
failing at payment with its logs, and choreographed checkouts whose consumers start new traces
with span links), for the terminal UI's snapshot tests. Run it to regenerate the file."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

T0 = 1_795_900_000_000_000_000          # 2026-11-28T20:26:40Z: fixed, so screens are too
MS = 1_000_000
SERVER, CLIENT, PRODUCER, CONSUMER, INTERNAL = 2, 3, 4, 5, 1


def hexid(*parts, size: int) -> str:
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[: size * 2]


def attrs(values: dict) -> list:
    out = []
    for key, value in values.items():
        if isinstance(value, bool):
            v = {"boolValue": value}
        elif isinstance(value, int):
            v = {"intValue": str(value)}
        else:
            v = {"stringValue": str(value)}
        out.append({"key": key, "value": v})
    return out


class Shop:
    def __init__(self) -> None:
        self.spans: dict[str, list] = {}
        self.logs: dict[str, list] = {}

    def span(self, service, trace, name, kind, start_ms, end_ms, parent=None, attributes=None,
             error=None, links=(), seed=""):
        span_id = hexid(trace, name, start_ms, seed, size=8)
        span = {"traceId": trace, "spanId": span_id, "name": name, "kind": kind,
                "startTimeUnixNano": str(T0 + int(start_ms * MS)),
                "endTimeUnixNano": str(T0 + int(end_ms * MS)),
                "attributes": attrs(attributes or {}),
                "status": {"code": 1}}
        if parent:
            span["parentSpanId"] = parent
        if error:
            span["status"] = {"code": 2, "message": error}
            span["events"] = [{"timeUnixNano": str(T0 + int(end_ms * MS)), "name": "exception",
                               "attributes": attrs({"exception.type": "PaymentGatewayError",
                                                    "exception.message": error})}]
        if links:
            span["links"] = [{"traceId": t, "spanId": s} for t, s in links]
        self.spans.setdefault(service, []).append(span)
        return span_id

    def log(self, service, trace, span, at_ms, severity, body):
        number = {"INFO": 9, "WARN": 13, "ERROR": 17}[severity]
        self.logs.setdefault(service, []).append(
            {"timeUnixNano": str(T0 + int(at_ms * MS)), "severityNumber": number,
             "severityText": severity, "body": {"stringValue": body}, "traceId": trace,
             "spanId": span})

    def order(self, i: int, at: float, fail: bool) -> None:
        trace = hexid("order", i, size=16)
        key = {"order.id": f"o-{i:04d}"}
        root = self.span("load-generator", trace, "shopper order", INTERNAL, at, at + 60, attributes=key,
                         error="order failed" if fail else None)
        front = self.span("frontend", trace, "POST /api/orders", SERVER, at + 1, at + 58, root,
                          {**key, "http.response.status_code": 502 if fail else 201},
                          error="502" if fail else None)
        orders = self.span("orders", trace, "POST /orders", SERVER, at + 2, at + 57, front,
                           {**key, "http.response.status_code": 502 if fail else 201},
                           error="payment failed" if fail else None)
        inv = self.span("orders", trace, "POST", CLIENT, at + 3, at + 13, orders,
                        {"url.full": "http://inventory/reserve", "http.response.status_code": 200})
        self.span("inventory", trace, "POST /reserve", SERVER, at + 4, at + 12, inv,
                  {"http.response.status_code": 200})
        pay = self.span("orders", trace, "POST", CLIENT, at + 14, at + 50 - (20 if fail else 0), orders,
                        {"url.full": "http://payment/charge",
                         "http.response.status_code": 500 if fail else 200},
                        error="500" if fail else None, seed="pay")
        charge_server = self.span("payment", trace, "POST /charge", SERVER, at + 15,
                                  at + 49 - (20 if fail else 0), pay,
                                  {"http.response.status_code": 500 if fail else 200},
                                  error="500" if fail else None)
        charge = self.span("payment", trace, "charge card", INTERNAL, at + 16, at + 48 - (20 if fail else 0),
                           charge_server, key, error="card declined by the gateway" if fail else None)
        if fail:
            self.log("payment", trace, charge, at + 27, "ERROR", f"charge for o-{i:04d} declined by the gateway")
            self.log("orders", trace, orders, at + 40, "WARN", f"order o-{i:04d}: payment failed, compensating")
        else:
            self.log("payment", trace, charge, at + 30, "INFO", f"charged o-{i:04d}")

    def checkout(self, i: int, at: float) -> None:
        trace = hexid("checkout", i, size=16)
        key = {"order.id": f"c-{i:04d}"}
        root = self.span("load-generator", trace, "shopper checkout", INTERNAL, at, at + 20, attributes=key)
        front = self.span("checkout", trace, "POST /api/checkout", SERVER, at + 1, at + 19, root,
                          {**key, "http.response.status_code": 202})
        message = f"m-{i:04d}"
        produce = self.span("checkout", trace, "order.placed publish", PRODUCER, at + 5, at + 7, front,
                            {"messaging.system": "rabbitmq", "messaging.message.id": message,
                             "messaging.rabbitmq.destination.routing_key": "order.placed",
                             **key})
        for n, (service, wait) in enumerate((("inventory", 12), ("fraud-detection", 25))):
            consumer_trace = hexid("consumer", i, service, size=16)
            consume = self.span(service, consumer_trace, "order.placed process", CONSUMER,
                                at + 7 + wait, at + 7 + wait + 15, attributes={
                                    "messaging.system": "rabbitmq", "messaging.message.id": message,
                                    "messaging.rabbitmq.destination.routing_key": "order.placed", **key},
                                links=[(trace, produce)])
            self.span(service, consumer_trace, "UPDATE", CLIENT, at + 9 + wait, at + 12 + wait,
                      consume, {"db.system": "sqlite"})
            self.log(service, consumer_trace, consume, at + 10 + wait, "INFO",
                     f"{service} handled order.placed for c-{i:04d}")

    def requests(self) -> list[dict]:
        traces = {"resourceSpans": [
            {"resource": {"attributes": attrs({"service.name": service, "host.name": f"{service}-host"})},
             "scopeSpans": [{"scope": {"name": "shop"}, "spans": spans}]}
            for service, spans in sorted(self.spans.items())]}
        logs = {"resourceLogs": [
            {"resource": {"attributes": attrs({"service.name": service, "host.name": f"{service}-host"})},
             "scopeLogs": [{"scope": {"name": "shop"}, "logRecords": records}]}
            for service, records in sorted(self.logs.items())]}
        return [traces, logs]


def build() -> list[dict]:
    shop = Shop()
    for i in range(12):
        shop.order(i, i * 500.0, fail=i in (7, 9, 10))
        shop.checkout(i, i * 500.0 + 200)
    return shop.requests()


if __name__ == "__main__":
    target = Path(__file__).with_name("shop.jsonl")
    target.write_text("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in build()))
    print(target)
