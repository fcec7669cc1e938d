"""OTLP/JSON → protobuf requests, per the OTLP specification's JSON mapping.

The protobuf JSON mapping already accepts what OTLP/JSON allows (lowerCamelCase or
original field names, 64-bit integers as strings or numbers, enums as integers or names);
the one difference is that OTLP/JSON spells trace and span ids as hex, not base64.
Unknown fields are ignored, as the specification requires of receivers.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tracekit.errors import DecodeError

_ID_FIELDS = ("traceId", "trace_id", "spanId", "span_id", "parentSpanId", "parent_span_id")


def _hex_ids_to_base64(obj: dict) -> None:
    for key in _ID_FIELDS:
        value = obj.get(key)
        if isinstance(value, str) and value:
            try:
                raw = bytes.fromhex(value)
            except ValueError:
                # Not hex: keep a value that decodes to the wrong length, so the item is
                # rejected in the partial success rather than failing the whole request.
                raw = b"\x00"
            obj[key] = base64.b64encode(raw).decode("ascii")


def _fix_ids(document: dict, resource_key: str, scope_key: str, items_key: str) -> None:
    for resource in _list(document.get(resource_key)):
        for scope in _list(_get(resource, scope_key)):
            for item in _list(_get(scope, items_key)):
                if isinstance(item, dict):
                    _hex_ids_to_base64(item)
                    for link in _list(item.get("links")):
                        if isinstance(link, dict):
                            _hex_ids_to_base64(link)


def _get(obj: Any, key: str) -> Any:
    if not isinstance(obj, dict):
        return None
    if key in obj:
        return obj[key]
    snake = "".join("_" + c.lower() if c.isupper() else c for c in key)
    return obj.get(snake)


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def parse_document(data: bytes | str) -> dict:
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"malformed JSON: {exc}") from None
    if not isinstance(document, dict):
        raise DecodeError("an OTLP/JSON request must be a JSON object")
    return document


def traces_request(document: dict) -> ExportTraceServiceRequest:
    """An ExportTraceServiceRequest from a decoded OTLP/JSON document.

    The document is consumed: its ids are re-encoded in place (no copy on the hot path).
    """
    _fix_ids(document, "resourceSpans", "scopeSpans", "spans")
    if "resource_spans" in document:
        _fix_ids(document, "resource_spans", "scope_spans", "spans")
    return _parse(document, ExportTraceServiceRequest())


def logs_request(document: dict) -> ExportLogsServiceRequest:
    """An ExportLogsServiceRequest from a decoded OTLP/JSON document (consumed, as above)."""
    _fix_ids(document, "resourceLogs", "scopeLogs", "logRecords")
    if "resource_logs" in document:
        _fix_ids(document, "resource_logs", "scope_logs", "log_records")
    return _parse(document, ExportLogsServiceRequest())


def _parse(document: dict, message: Any) -> Any:
    try:
        return json_format.ParseDict(document, message, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError, RecursionError) as exc:
        raise DecodeError(f"not a valid OTLP/JSON {type(message).__name__}: {exc}") from None
