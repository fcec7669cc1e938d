"""Decoding OTLP payloads: in the collector's process where the compiled decoders cover the
request, else in worker processes (`collectors.decode_pool` chooses).

The compiled decoders (`tracekit.otlp.fast_decode`) take a 512-span trace request, protobuf or
OTLP/JSON, in about a millisecond, less than sending the request to a worker and its decoded
rows back (pickled Arrow: at ~50k spans/s a third of a core in the worker and the collector
together). So trace requests up to `INLINE_MAX_BYTES` are decoded where they arrive, and the
rest go to a worker: logs, larger requests, and whatever the compiled decoders leave to the
Python decoders (a corner case to note or repair, invalid input to refuse). Python decoding
in the collector's own process competed for the GIL with the writer, whose DuckDB calls need
it between statements, and ingest stayed near one core.

Everything a worker runs returns a `Refusal` instead of raising, so that the answer crosses
the process boundary intact.
"""

from __future__ import annotations

import gc
import multiprocessing
import multiprocessing.connection
import os
import threading
import zlib
from dataclasses import dataclass

import orjson
from google.protobuf.message import DecodeError as ProtobufDecodeError
from google.protobuf.json_format import MessageToJson
from google.rpc import code_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tracekit.errors import DecodeError
from tracekit.formats import zipkin, zipkin_proto
from tracekit.otlp import json as otlp_json, utf8
from tracekit.otlp.batches import DecodedBatch
from tracekit.otlp.decode import decode_logs, decode_traces
from tracekit.otlp.fast_decode import decode_traces_fast, decode_traces_json_fast
from tracekit.otlp.json_decode import decode_logs_json, decode_traces_json
from tracekit.redaction import DEFAULT_PATTERNS, redactor_for
from tracekit.threads import name_os_thread


PROTOBUF = "application/x-protobuf"
JSON = "application/json"
TRACES = "traces"
LOGS = "logs"


@dataclass(frozen=True)
class Refusal:
    """Why a payload was refused: an HTTP status and the google.rpc code for gRPC."""

    http_status: int
    rpc_code: int
    message: str
    retry_after_s: float | None = None    # the client may retry after this long (503)


GRPC = "grpc"          # a gRPC message: compressed or not, as its first bytes say
_CHUNK = 256 * 1024
# Trace requests up to this size (inflated) are decoded in the collector's process, holding
# the GIL for ~5 ms at most; larger ones in a worker.
INLINE_MAX_BYTES = 1 << 20


def inflate(body: bytes, encoding: str, limit: int) -> bytes | Refusal:
    """The body without its Content-Encoding, refusing anything over `limit` bytes inflated.

    A gzip bomb costs the CPU to inflate `limit` bytes, never the memory: the size is counted
    first in small pieces that are thrown away, and only a body within the limit is kept."""
    encoding = encoding.strip().lower()
    if encoding == GRPC:
        encoding = _grpc_encoding(body)
    if encoding in ("", "identity"):
        return body if len(body) <= limit else _too_large(limit)
    if encoding not in ("gzip", "deflate"):
        return Refusal(415, code_pb2.INVALID_ARGUMENT,
                       f"unsupported Content-Encoding {encoding!r}: use gzip or none")
    wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
    try:
        refusal = _check_size(body, wbits, encoding, limit)
        if refusal is not None:
            return refusal
        out, rest = [], body
        while rest:  # a gzip body may hold several members (RFC 1952)
            inflater = zlib.decompressobj(wbits)
            out.append(inflater.decompress(rest))
            rest = inflater.unused_data
    except zlib.error as exc:
        return Refusal(400, code_pb2.INVALID_ARGUMENT, f"body is not valid {encoding}: {exc}")
    return b"".join(out)


def _check_size(body: bytes, wbits: int, encoding: str, limit: int) -> Refusal | None:
    """None if `body` inflates to at most `limit` bytes and is whole, else why not."""
    size, rest = 0, body
    while True:
        inflater = zlib.decompressobj(wbits)
        pending = rest
        while pending:
            size += len(inflater.decompress(pending, _CHUNK))
            if size > limit:
                return _too_large(limit)
            pending = inflater.unconsumed_tail
        while not inflater.eof:          # output still buffered in the inflater
            piece = inflater.decompress(b"", _CHUNK)
            if not piece:
                break
            size += len(piece)
            if size > limit:
                return _too_large(limit)
        if not inflater.eof:
            return Refusal(400, code_pb2.INVALID_ARGUMENT, f"body is truncated {encoding}")
        rest = inflater.unused_data
        if not rest:
            return None
        if encoding != "gzip":
            return Refusal(400, code_pb2.INVALID_ARGUMENT,
                           f"bytes after the end of the {encoding} stream")


def _grpc_encoding(message: bytes) -> str:
    """How a gRPC message is compressed. The receiver leaves decompression to `inflate`
    (gRPC's own would inflate a bomb up to the limit in memory), and gRPC does not tell the
    handler the message's grpc-encoding; the bytes do: an ExportTrace/LogsServiceRequest starts
    with field 1 (0x0a), a gzip stream with 1f 8b, a zlib ("deflate") stream with a header
    whose first two bytes are a multiple of 31 and whose method is 8."""
    if message[:2] == b"\x1f\x8b":
        return "gzip"
    if len(message) >= 2 and message[0] & 0x0F == 8 and (message[0] << 8 | message[1]) % 31 == 0:
        return "deflate"
    return "identity"


def _too_large(limit: int) -> Refusal:
    return Refusal(413, code_pb2.RESOURCE_EXHAUSTED,
                   f"body is over the {limit} byte limit after decompression; send smaller batches")


def decode_payload(kind: str, content_type: str, encoding: str, body: bytes, limit: int,
                   redact_patterns: tuple[str, ...] = DEFAULT_PATTERNS) -> DecodedBatch | Refusal:
    """An OTLP export body (traces or logs, protobuf or JSON) as a DecodedBatch, with the
    values of secret-looking attribute keys masked."""
    redact = redactor_for(redact_patterns)
    data = inflate(body, encoding, limit)
    if isinstance(data, Refusal):
        return data
    message_type = ExportTraceServiceRequest if kind == TRACES else ExportLogsServiceRequest
    try:
        if content_type == PROTOBUF:
            if kind == TRACES and (fast := decode_traces_fast(data, redact)) is not None:
                return fast
            try:
                request = message_type.FromString(data)
            except (ProtobufDecodeError, RecursionError, ValueError) as exc:
                if "UTF-8" not in str(exc):
                    raise DecodeError(f"body is not a valid protobuf {message_type.__name__}: {exc}") from None
                # Strings that are not UTF-8 are repaired with U+FFFD, not refused (utf8.py).
                try:
                    return (utf8.decode_traces_repairing(data, redact) if kind == TRACES
                            else utf8.decode_logs_repairing(data, redact))
                except (ProtobufDecodeError, RecursionError, ValueError) as again:
                    raise DecodeError(f"body is not a valid protobuf {message_type.__name__}: {again}") from None
        else:
            if kind == TRACES and (fast := decode_traces_json_fast(data, redact)) is not None:
                return fast
            document = otlp_json.parse_document(data)
            return (decode_traces_json(document, redact) if kind == TRACES
                    else decode_logs_json(document, redact))
    except DecodeError as exc:
        return Refusal(400, code_pb2.INVALID_ARGUMENT, str(exc))
    return decode_traces(request, redact) if kind == TRACES else decode_logs(request, redact)


def decode_zipkin_payload(content_type: str, encoding: str, body: bytes, limit: int,
                          redact_patterns: tuple[str, ...] = DEFAULT_PATTERNS,
                          keep_proxy_spans: bool = False) -> DecodedBatch | Refusal:
    """A Zipkin v2 body (JSON or zipkin.proto3 ListOfSpans) as a DecodedBatch, converted to
    OTLP/JSON first so that its rows are those an OTLP export of the same spans gives."""
    data = inflate(body, encoding, limit)
    if isinstance(data, Refusal):
        return data
    try:
        if content_type == PROTOBUF:
            spans = zipkin_proto.spans_from_protobuf(data)
        else:
            try:
                parsed = orjson.loads(data)
            except orjson.JSONDecodeError as exc:
                raise DecodeError(f"malformed JSON: {exc}") from None
            spans = zipkin.spans_from_json(parsed)
        return decode_traces_json(zipkin.to_otlp(spans, keep_proxy_spans), redactor_for(redact_patterns))
    except DecodeError as exc:
        return Refusal(400, code_pb2.INVALID_ARGUMENT, str(exc))


def decode_inline(kind: str, content_type: str, encoding: str, body: bytes,
                  redact_patterns: tuple[str, ...]) -> DecodedBatch | None:
    """The request's rows from the compiled decoders, in this process, or None: it is not a
    trace request they cover within INLINE_MAX_BYTES (a worker decodes it, or refuses it)."""
    if kind != TRACES or len(body) > INLINE_MAX_BYTES or content_type not in (PROTOBUF, JSON):
        return None
    data = inflate(body, encoding, INLINE_MAX_BYTES)
    if isinstance(data, Refusal):
        return None   # too large here, or refused: a worker says which, with the real limit
    redact = redactor_for(redact_patterns)
    with _INLINE:   # the decoders' notes of clipped values are a module-level list
        return (decode_traces_fast(data, redact) if content_type == PROTOBUF
                else decode_traces_json_fast(data, redact))


_INLINE = threading.Lock()


def ready() -> bool:
    """A task a worker answers once it has started (`DecodePool.warm_up`)."""
    return True


def start_worker(redact_patterns: tuple[str, ...]) -> None:
    """Worker initializer (after `collectors.decode_worker.start`): exit with the collector, and decode a small request of each kind
    and form once, so the first exports do not pay for lazy imports and compiled patterns
    (the first two exports after a start took 0.5-0.9 s each)."""
    name_os_thread("tracekit-decode")
    exit_with_parent()
    from collectors.admission import return_freed_memory_to_the_system

    return_freed_memory_to_the_system()
    # A parsed OTLP/JSON request is tens of thousands of small dicts and lists, each of which
    # counts towards Python's next cyclic collection (every 700 allocations by default), and
    # those collections made up a third of JSON decoding. Nothing decoded here makes cycles;
    # refcounting frees it. At 50,000: ~37k instead of ~25k spans/s (benchmarks/ingest.py
    # payloads, one worker).
    gc.set_threshold(50_000, 20, 100)
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    traces = ExportTraceServiceRequest()
    span = traces.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name = b"\x01" * 16, b"\x01" * 8, "warm-up"
    logs = ExportLogsServiceRequest()
    logs.resource_logs.add().scope_logs.add().log_records.add().body.string_value = "warm-up"
    for kind, request in ((TRACES, traces), (LOGS, logs)):
        body = request.SerializeToString()
        decode_payload(kind, PROTOBUF, "identity", body, len(body), redact_patterns)
        decode_payload(kind, JSON, "identity", otlp_json_text(request), 1 << 20, redact_patterns)


def exit_with_parent() -> None:
    """Worker initializer: exit as soon as the collector process is gone, even after kill -9
    (an orphaned worker would otherwise hold its memory until the machine restarts)."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        name_os_thread()
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(0)

    threading.Thread(target=watch, name="collector-watch", daemon=True).start()


def otlp_json_text(request) -> bytes:
    return MessageToJson(request).encode()
