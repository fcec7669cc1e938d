// Export one small trace (and, over OTLP/HTTP, logs) with the real OpenTelemetry JS SDK.
//
//   node send.mjs <http-json|http-protobuf|grpc> <host:port> <service.name>
//
// Exporters run with their default settings; only the endpoint is given. On success, prints
// one JSON line: {"trace_id", "parent_span_id", "child_span_id", "error_span_id", "logs"}.
// Exits 1 when any export fails or is partly rejected: JS exporters report failures through
// the export result callback and `diag` (partial success only as a warning), never by
// throwing, so both are watched here.

import { context, diag, DiagLogLevel, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { SeverityNumber } from '@opentelemetry/api-logs';
import { ExportResultCode } from '@opentelemetry/core';
import { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-http';
import { OTLPTraceExporter as GrpcTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as JsonTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as ProtoTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchLogRecordProcessor, LoggerProvider } from '@opentelemetry/sdk-logs';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';

const [transport, endpoint, service] = process.argv.slice(2);
const TRANSPORTS = ['http-json', 'http-protobuf', 'grpc'];
if (!TRANSPORTS.includes(transport) || !endpoint || !service) {
  console.error(`usage: node send.mjs <${TRANSPORTS.join('|')}> <host:port> <service.name>`);
  process.exit(2);
}

const failures = [];
diag.setLogger({
  error: (...args) => { failures.push(`diag: ${args.join(' ')}`); console.error('diag error:', ...args); },
  warn: (...args) => {
    // A partial success (rejected spans or logs) only reaches diag.warn; count it as a failure.
    if (String(args[0]).includes('Partial Success')) failures.push(`diag: ${args.join(' ')}`);
    console.error('diag warn:', ...args);
  },
  info: () => {},
  debug: () => {},
  verbose: () => {},
}, DiagLogLevel.WARN);

/** Wrap an exporter so every export result is checked and the exported items counted. */
function watched(label, exporter) {
  const counts = { ok: 0 };
  return {
    counts,
    exporter: {
      export(items, resultCallback) {
        exporter.export(items, (result) => {
          if (result.code === ExportResultCode.SUCCESS) {
            counts.ok += items.length;
          } else {
            failures.push(`${label} export of ${items.length} failed: ${result.error?.stack ?? result.error}`);
          }
          resultCallback(result);
        });
      },
      shutdown: () => exporter.shutdown(),
      forceFlush: () => exporter.forceFlush?.() ?? Promise.resolve(),
    },
  };
}

function traceExporter() {
  switch (transport) {
    case 'http-json': return new JsonTraceExporter({ url: `http://${endpoint}/v1/traces` });
    case 'http-protobuf': return new ProtoTraceExporter({ url: `http://${endpoint}/v1/traces` });
    default: return new GrpcTraceExporter({ url: `http://${endpoint}` });
  }
}

const resource = resourceFromAttributes({
  [ATTR_SERVICE_NAME]: service,
  'deployment.environment': 'test',
  'k8s.pod.name': 'pod-js',
});
const spans = watched('spans', traceExporter());
const tracerProvider = new BasicTracerProvider({
  resource,
  spanProcessors: [new BatchSpanProcessor(spans.exporter)],
});
const sendLogs = transport !== 'grpc';
const logs = sendLogs ? watched('logs', new OTLPLogExporter({ url: `http://${endpoint}/v1/logs` })) : null;
const loggerProvider = sendLogs
  ? new LoggerProvider({ resource, processors: [new BatchLogRecordProcessor({ exporter: logs.exporter })] })
  : null;

const tracer = tracerProvider.getTracer('tests.node', '1.2.3');
const logger = loggerProvider?.getLogger('tests.node.logs', '4.5.6');

// No context manager is registered: contexts are passed explicitly.
const parent = tracer.startSpan('checkout', {
  kind: SpanKind.SERVER,
  attributes: {
    s: 'text',
    i: 42,
    neg: -7,
    f: 1.5,
    b: true,
    strings: ['a', 'b'],
    ints: [1, 2, 3],
    floats: [0.5, 2.5],
    bools: [true, false],
    'http.route': '/orders/{id}',
    'http.response.status_code': 503,
  },
});
const parentCtx = trace.setSpan(context.active(), parent);
parent.addEvent('cart.loaded', { items: 3, vip: false, ratio: 0.25 });

const child = tracer.startSpan('publish OrderPlaced', {
  kind: SpanKind.PRODUCER,
  links: [{ context: parent.spanContext(), attributes: { 'link.reason': 'fan-in', n: 7 } }],
  attributes: { 'messaging.system': 'rabbitmq', 'messaging.destination.name': 'orders' },
}, parentCtx);
child.end();

const failing = tracer.startSpan('charge', { kind: SpanKind.CLIENT }, parentCtx);
failing.recordException(new TypeError('card declined'));
failing.setStatus({ code: SpanStatusCode.ERROR, message: 'card declined' });
logger?.emit({
  body: 'charge failed for o-1',
  severityNumber: SeverityNumber.ERROR,
  severityText: 'ERROR',
  attributes: { 'order.id': 'o-1', attempt: 2 },
  context: trace.setSpan(parentCtx, failing),
});
failing.end();

logger?.emit({
  body: { event: 'checkout.done', items: 3, tags: ['x', 'y'], paid: false },
  severityNumber: SeverityNumber.INFO,
  severityText: 'INFO',
  context: parentCtx,
});
parent.end();

// Shutdown flushes the batch processors and then shuts the exporters down.
const shutdowns = await Promise.allSettled([tracerProvider.shutdown(), loggerProvider?.shutdown()]);
for (const [i, outcome] of shutdowns.entries()) {
  if (outcome.status === 'rejected') {
    failures.push(`${i ? 'logger' : 'tracer'} provider shutdown: ${outcome.reason?.stack ?? outcome.reason}`);
  }
}

const expected = { spans: 3, logs: sendLogs ? 2 : 0 };
const exported = { spans: spans.counts.ok, logs: logs?.counts.ok ?? 0 };
if (exported.spans !== expected.spans || exported.logs !== expected.logs) {
  failures.push(`exported ${JSON.stringify(exported)}, expected ${JSON.stringify(expected)}`);
}
if (failures.length) {
  console.error(`export over ${transport} to ${endpoint} failed:\n${failures.join('\n')}`);
  process.exit(1);
}
console.log(JSON.stringify({
  trace_id: parent.spanContext().traceId,
  parent_span_id: parent.spanContext().spanId,
  child_span_id: child.spanContext().spanId,
  error_span_id: failing.spanContext().spanId,
  logs: exported.logs,
}));
process.exit(0);
