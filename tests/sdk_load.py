"""Spans at a steady rate through the real OpenTelemetry SDK (BatchSpanProcessor and OTLP
exporter), recording the ids of every span whose export the collector acknowledged.

    python -m tests.sdk_load --transport grpc|http --address HOST:PORT --rate N --seconds S --out FILE

Prints one JSON line at the end: spans made, spans acknowledged, exports failed."""

from __future__ import annotations

import argparse
import json
import threading
import time

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult


def recording(base, acknowledged: list[str], failures: list[int]):
    class Recording(base):
        def export(self, spans):
            result = super().export(spans)
            if result == SpanExportResult.SUCCESS:
                acknowledged.extend(format(s.context.span_id, "016x") for s in spans)
            else:
                failures.append(len(spans))
            return result
    return Recording


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--transport", choices=["grpc", "http"], required=True)
    parser.add_argument("--address", required=True)
    parser.add_argument("--rate", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    acknowledged: list[str] = []
    failures: list[int] = []
    if args.transport == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        exporter = recording(OTLPSpanExporter, acknowledged, failures)(
            endpoint=f"http://{args.address}", insecure=True, timeout=30)
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        exporter = recording(OTLPSpanExporter, acknowledged, failures)(
            endpoint=f"http://{args.address}/v1/traces", timeout=30)
    provider = TracerProvider(resource=Resource.create({"service.name": f"load-{args.transport}"}))
    provider.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=50_000,
                                                   schedule_delay_millis=100))
    tracer = provider.get_tracer("tests.sdk_load")
    made = 0
    started = time.monotonic()
    tick = 0.01
    while (elapsed := time.monotonic() - started) < args.seconds:
        due = int(elapsed * args.rate) + int(tick * args.rate)
        while made < due:
            with tracer.start_as_current_span("load", attributes={"n": made, "route": "/api/load"}):
                pass
            made += 1
        threading.Event().wait(tick)
    provider.force_flush(120_000)
    provider.shutdown()
    with open(args.out, "w") as out:
        out.write("\n".join(acknowledged))
    print(json.dumps({"made": made, "acknowledged": len(acknowledged),
                      "failed_exports": len(failures), "failed_spans": sum(failures)}), flush=True)


if __name__ == "__main__":
    main()
