"""Zipkin's protobuf encoding (zipkin.proto3 ListOfSpans, as `POST /api/v2/spans` takes it with
Content-Type application/x-protobuf) → the spans' Zipkin v2 JSON form.

The schema is openzipkin/zipkin-api's zipkin.proto3 (package zipkin.proto3), built here from
its field numbers rather than from generated code: no protoc step, and the messages never
leave this module.
"""

from __future__ import annotations

from functools import cache

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError as ProtobufDecodeError

from tracekit.errors import DecodeError
from tracekit.formats.zipkin import ip_text

_F = descriptor_pb2.FieldDescriptorProto
_KINDS = {1: "CLIENT", 2: "SERVER", 3: "PRODUCER", 4: "CONSUMER"}


def _field(message, name: str, number: int, kind: int, label: int = _F.LABEL_OPTIONAL,
           type_name: str = "") -> None:
    field = message.field.add(name=name, number=number, type=kind, label=label)
    if type_name:
        field.type_name = type_name


@cache
def list_of_spans():
    """The ListOfSpans message class."""
    proto = descriptor_pb2.FileDescriptorProto(name="tracekit_zipkin.proto3", package="zipkin.proto3",
                                               syntax="proto3")
    endpoint = proto.message_type.add(name="Endpoint")
    _field(endpoint, "service_name", 1, _F.TYPE_STRING)
    _field(endpoint, "ipv4", 2, _F.TYPE_BYTES)
    _field(endpoint, "ipv6", 3, _F.TYPE_BYTES)
    _field(endpoint, "port", 4, _F.TYPE_INT32)
    annotation = proto.message_type.add(name="Annotation")
    _field(annotation, "timestamp", 1, _F.TYPE_FIXED64)
    _field(annotation, "value", 2, _F.TYPE_STRING)
    span = proto.message_type.add(name="Span")
    tags = span.nested_type.add(name="TagsEntry")
    tags.options.map_entry = True
    _field(tags, "key", 1, _F.TYPE_STRING)
    _field(tags, "value", 2, _F.TYPE_STRING)
    kind = span.enum_type.add(name="Kind")
    for number, name in enumerate(["SPAN_KIND_UNSPECIFIED", "CLIENT", "SERVER", "PRODUCER", "CONSUMER"]):
        kind.value.add(name=name, number=number)
    _field(span, "trace_id", 1, _F.TYPE_BYTES)
    _field(span, "parent_id", 2, _F.TYPE_BYTES)
    _field(span, "id", 3, _F.TYPE_BYTES)
    _field(span, "kind", 4, _F.TYPE_ENUM, type_name=".zipkin.proto3.Span.Kind")
    _field(span, "name", 5, _F.TYPE_STRING)
    _field(span, "timestamp", 6, _F.TYPE_FIXED64)
    _field(span, "duration", 7, _F.TYPE_UINT64)
    _field(span, "local_endpoint", 8, _F.TYPE_MESSAGE, type_name=".zipkin.proto3.Endpoint")
    _field(span, "remote_endpoint", 9, _F.TYPE_MESSAGE, type_name=".zipkin.proto3.Endpoint")
    _field(span, "annotations", 10, _F.TYPE_MESSAGE, _F.LABEL_REPEATED, ".zipkin.proto3.Annotation")
    _field(span, "tags", 11, _F.TYPE_MESSAGE, _F.LABEL_REPEATED, ".zipkin.proto3.Span.TagsEntry")
    _field(span, "debug", 12, _F.TYPE_BOOL)
    _field(span, "shared", 13, _F.TYPE_BOOL)
    spans = proto.message_type.add(name="ListOfSpans")
    _field(spans, "spans", 1, _F.TYPE_MESSAGE, _F.LABEL_REPEATED, ".zipkin.proto3.Span")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("zipkin.proto3.ListOfSpans"))


def spans_from_protobuf(data: bytes) -> list[dict]:
    """The spans of a ListOfSpans body, in their JSON form."""
    try:
        message = list_of_spans().FromString(data)
    except (ProtobufDecodeError, RecursionError, ValueError) as exc:
        raise DecodeError(f"body is not a valid protobuf zipkin.proto3.ListOfSpans: {exc}") from None
    out = []
    for span in message.spans:
        if len(span.trace_id) not in (8, 16) or len(span.id) != 8:
            raise DecodeError("a Zipkin span needs an 8- or 16-byte trace_id and an 8-byte id "
                              f"(got {len(span.trace_id)} and {len(span.id)} bytes)")
        item: dict = {"traceId": span.trace_id.hex(), "id": span.id.hex(), "name": span.name}
        if span.parent_id:
            item["parentId"] = span.parent_id.hex()
        if span.kind in _KINDS:
            item["kind"] = _KINDS[span.kind]
        if span.timestamp:
            item["timestamp"] = span.timestamp
        if span.duration:
            item["duration"] = span.duration
        for field, key in (("local_endpoint", "localEndpoint"), ("remote_endpoint", "remoteEndpoint")):
            if span.HasField(field):
                endpoint = getattr(span, field)
                item[key] = {k: v for k, v in (
                    ("serviceName", endpoint.service_name),
                    ("ipv4", ip_text(endpoint.ipv4) if endpoint.ipv4 else ""),
                    ("ipv6", ip_text(endpoint.ipv6) if endpoint.ipv6 else ""),
                    ("port", endpoint.port)) if v}
        if span.annotations:
            item["annotations"] = [{"timestamp": a.timestamp, "value": a.value} for a in span.annotations]
        if span.tags:
            item["tags"] = dict(span.tags)
        if span.shared:
            item["shared"] = True
        out.append(item)
    return out
