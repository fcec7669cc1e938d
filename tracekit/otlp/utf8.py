"""Protobuf requests whose strings are not all UTF-8: repaired with U+FFFD, not refused.

Proto3 requires UTF-8 and Python's protobuf refuses such a message whole, while the
OpenTelemetry Collector's Go receiver passes the bytes on, and the OTLP specification
recommends replacing invalid sequences with U+FFFD. One SDK's bug should not cost a batch of
good spans, so a request that fails only on UTF-8 is parsed again with every string field
read as bytes, repaired, and decoded as usual; the spans whose strings (or whose resource's or
scope's) were repaired carry the note `invalid_utf8_replaced`. Log records have no notes and
are repaired silently. This is the slow path: only such requests take it.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import pyarrow as pa
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import FieldDescriptor
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tracekit.otlp.batches import DecodedBatch, Rejections, concat
from tracekit.otlp.columns import DEFAULT_REDACTOR
from tracekit.otlp.decode import decode_logs, decode_traces
from tracekit.redaction import Redactor

NOTE = "invalid_utf8_replaced"


@cache
def _lenient(message: Any) -> Any:
    """A message class like `message`'s, in its own descriptor pool, with every string field
    declared bytes (the same wire format, without the UTF-8 check)."""
    pool = descriptor_pool.DescriptorPool()
    added: set[str] = set()

    def add(file: Any) -> None:
        if file.name in added:
            return
        for dependency in file.dependencies:
            add(dependency)
        proto = descriptor_pb2.FileDescriptorProto()
        file.CopyToProto(proto)
        for message_type in proto.message_type:
            _strings_to_bytes(message_type)
        pool.Add(proto)
        added.add(file.name)

    add(message.DESCRIPTOR.file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(message.DESCRIPTOR.full_name))


def _strings_to_bytes(message_type: descriptor_pb2.DescriptorProto) -> None:
    for field in message_type.field:
        if field.type == descriptor_pb2.FieldDescriptorProto.TYPE_STRING:
            field.type = descriptor_pb2.FieldDescriptorProto.TYPE_BYTES
    for nested in message_type.nested_type:
        _strings_to_bytes(nested)


def _repair(message: Any, strict: Any) -> bool:
    """Replace invalid UTF-8 in `message`'s string fields (bytes here; `strict` is the
    descriptor that says which are strings) in place; whether anything was replaced."""
    repaired = False
    for field, value in message.ListFields():
        strict_field = strict.fields_by_name[field.name]
        if strict_field.type == FieldDescriptor.TYPE_STRING:
            values = value if field.is_repeated else [value]
            for i, raw in enumerate(values):
                try:
                    raw.decode("utf-8")
                    continue
                except UnicodeDecodeError:
                    fixed = raw.decode("utf-8", errors="replace").encode()
                repaired = True
                if field.is_repeated:
                    value[i] = fixed
                else:
                    setattr(message, field.name, fixed)
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            children = value if field.is_repeated else [value]
            for child in children:
                repaired |= _repair(child, strict_field.message_type)
    return repaired


def decode_traces_repairing(data: bytes, redact: Redactor = DEFAULT_REDACTOR) -> DecodedBatch:
    """A trace request that failed on UTF-8 only: spans with repaired strings get NOTE."""
    lenient = _lenient(ExportTraceServiceRequest).FromString(data)
    strict = ExportTraceServiceRequest.DESCRIPTOR
    resource_spans_d = strict.fields_by_name["resource_spans"].message_type
    scope_spans_d = resource_spans_d.fields_by_name["scope_spans"].message_type
    span_d = scope_spans_d.fields_by_name["spans"].message_type
    marked: set[tuple[int, int, int]] = set()
    for r, resource_spans in enumerate(lenient.resource_spans):
        resource_hit = _repair(resource_spans.resource, resource_spans_d.fields_by_name["resource"].message_type)
        for s, scope_spans in enumerate(resource_spans.scope_spans):
            scope_hit = _repair(scope_spans.scope, scope_spans_d.fields_by_name["scope"].message_type)
            for k, span in enumerate(scope_spans.spans):
                if _repair(span, span_d) or resource_hit or scope_hit:
                    marked.add((r, s, k))
    # Schema URLs and anything else outside resource, scope and spans.
    _repair(lenient, strict)
    request = ExportTraceServiceRequest.FromString(lenient.SerializeToString())
    clean, repaired = _split(request, marked)
    batches = [decode_traces(clean, redact), _noted(decode_traces(repaired, redact))]
    merged = concat(batches)
    merged.rejected_spans = Rejections()
    for batch in batches:
        merged.rejected_spans.count += batch.rejected_spans.count
        merged.rejected_spans.reasons.update(batch.rejected_spans.reasons)
    return merged


def _split(request: ExportTraceServiceRequest, marked: set[tuple[int, int, int]]):
    """(the request without the marked spans, the request with only them)."""
    clean, repaired = ExportTraceServiceRequest(), ExportTraceServiceRequest()
    clean.CopyFrom(request)
    repaired.CopyFrom(request)
    for r, (clean_rs, repaired_rs) in enumerate(zip(clean.resource_spans, repaired.resource_spans)):
        for s, (clean_ss, repaired_ss) in enumerate(zip(clean_rs.scope_spans, repaired_rs.scope_spans)):
            for k in reversed(range(len(clean_ss.spans))):
                del (clean_ss.spans if (r, s, k) in marked else repaired_ss.spans)[k]
    return clean, repaired


def _noted(batch: DecodedBatch) -> DecodedBatch:
    if batch.spans is None:
        return batch
    column = batch.spans.schema.get_field_index("ingest_notes")
    notes = [(n or []) + [NOTE] for n in batch.spans.column(column).to_pylist()]
    batch.spans = batch.spans.set_column(column, batch.spans.schema.field(column),
                                         pa.array(notes, batch.spans.schema.field(column).type))
    return batch


def decode_logs_repairing(data: bytes, redact: Redactor = DEFAULT_REDACTOR) -> DecodedBatch:
    """A logs request that failed on UTF-8 only, repaired (log records have no notes)."""
    lenient = _lenient(ExportLogsServiceRequest).FromString(data)
    _repair(lenient, ExportLogsServiceRequest.DESCRIPTOR)
    return decode_logs(ExportLogsServiceRequest.FromString(lenient.SerializeToString()), redact)
