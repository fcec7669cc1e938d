"""JSON-lines logs as ELK (Elastic Common Schema), Fluent Bit and the usual JSON loggers write
them → OTLP/JSON log records, so that they are stored and joined to their spans like logs
received over OTLP.

Each line is one record. Its fields are read under their common spellings, at the top level or
nested (`{"trace": {"id": ...}}` as ECS nests them, or the dotted key `trace.id`); every other
field becomes an attribute (nested objects flattened to dotted keys).
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

from tracekit.errors import DecodeError
from tracekit.formats.otlp_document import value

TIME_FIELDS = ("@timestamp", "timestamp", "time", "ts", "date", "datetime", "asctime")
LEVEL_FIELDS = ("level", "severity", "log.level", "levelname", "lvl", "severity_text", "severityText", "loglevel")
MESSAGE_FIELDS = ("message", "msg", "log", "body", "event")
TRACE_FIELDS = ("trace_id", "traceId", "trace.id", "traceid", "otelTraceID", "logging.googleapis.com/trace")
SPAN_FIELDS = ("span_id", "spanId", "span.id", "spanid", "otelSpanID")
SERVICE_FIELDS = ("service.name", "service", "service_name", "otelServiceName", "app",
                  "kubernetes.labels.app", "kubernetes.container_name")

# OTLP severity numbers: the first of each range (TRACE 1, DEBUG 5, INFO 9, WARN 13, ERROR 17, FATAL 21).
_SEVERITY = {"trace": 1, "debug": 5, "info": 9, "information": 9, "notice": 10, "warn": 13,
             "warning": 13, "error": 17, "err": 17, "critical": 21, "crit": 21, "fatal": 21,
             "panic": 21, "alert": 21, "emerg": 21, "emergency": 21}
# pino/bunyan's numeric levels.
_NUMERIC = {10: 1, 20: 5, 30: 9, 40: 13, 50: 17, 60: 21}
_FRACTION = re.compile(r"^(?P<head>[^.,]*T?[^.,]*?)[.,](?P<digits>\d+)(?P<tail>.*)$")


def looks_like_log_record(record: Any) -> bool:
    """Whether a parsed JSON line is a log record: an object with a time and a message."""
    return (isinstance(record, dict) and _first(record, TIME_FIELDS) is not None
            and _first(record, MESSAGE_FIELDS) is not None)


def _lookup(record: dict, key: str) -> Any:
    if key in record:
        return record[key]
    head, dot, rest = key.partition(".")
    if dot and isinstance(record.get(head), dict):
        return _lookup(record[head], rest)
    return None


def _first(record: dict, keys: tuple[str, ...]) -> Any:
    for key in keys:
        found = _lookup(record, key)
        if found is not None and not isinstance(found, dict | list):
            return found
    return None


def _remove(record: dict, keys: tuple[str, ...]) -> None:
    """Remove the first of `keys` found with a scalar value (the one `_first` read)."""
    for key in keys:
        if key in record and not isinstance(record[key], dict | list):
            del record[key]
            return
        head, dot, rest = key.partition(".")
        if dot and isinstance(record.get(head), dict) and _first(record[head], (rest,)) is not None:
            _remove(record[head], (rest,))
            if not record[head]:
                del record[head]
            return


def time_ns(raw: Any) -> int:
    """A timestamp as Unix nanoseconds: ISO 8601 text (any fraction of a second, Z or an
    offset; a naive time is UTC), or a number of seconds, milliseconds, microseconds or
    nanoseconds since the epoch (told apart by magnitude)."""
    if isinstance(raw, bool):
        raise DecodeError(f"timestamp {raw!r} is not a time")
    if isinstance(raw, str) and re.fullmatch(r"\d+(\.\d+)?", raw.strip()):
        raw = float(raw) if "." in raw else int(raw)
    if isinstance(raw, int | float):
        magnitude = abs(raw)
        scale = 1e9 if magnitude < 1e11 else 1e6 if magnitude < 1e14 else 1e3 if magnitude < 1e17 else 1
        return int(raw * scale)
    if not isinstance(raw, str):
        raise DecodeError(f"timestamp {raw!r} is not a time")
    text, nanos = raw.strip().replace(" ", "T", 1), 0
    if (match := _FRACTION.match(text)) is not None:
        digits = match["digits"]
        nanos = int(digits[:9].ljust(9, "0"))
        text = match["head"] + match["tail"]
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise DecodeError(f"timestamp {raw!r} is not ISO 8601 or a number since the epoch") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp()) * 1_000_000_000 + nanos


def severity(level: Any) -> tuple[int, str]:
    """(OTLP severity number, severity text) of a level field."""
    if level is None:
        return 0, ""
    if isinstance(level, int | float) and not isinstance(level, bool):
        return _NUMERIC.get(int(level), 0), str(level)
    text = str(level)
    return _SEVERITY.get(text.strip().lower(), 0), text


def _id(raw: Any, hex_digits: int) -> str:
    text = str(raw or "").strip().lower().replace("-", "")
    if not text or set(text) == {"0"}:
        return ""
    if not re.fullmatch(r"[0-9a-f]+", text) or len(text) > hex_digits:
        raise DecodeError(f"id {raw!r} is not hex of at most {hex_digits} digits")
    return text.rjust(hex_digits, "0")


def _flatten(record: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, item in record.items():
        name = f"{prefix}{key}"
        if isinstance(item, dict):
            out.update(_flatten(item, name + "."))
        else:
            out[name] = item
    return out


def to_record(record: Any) -> tuple[tuple, dict]:
    """(resource key, OTLP/JSON log record) of one parsed JSON line."""
    try:
        return _record(record)
    except (TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise DecodeError(f"not a log record tracekit reads: {exc}") from None


def _record(record: Any) -> tuple[tuple, dict]:
    if not isinstance(record, dict):
        raise DecodeError("a JSON-lines log record must be a JSON object")
    record = dict(record)
    stamp = _first(record, TIME_FIELDS)
    if stamp is None:
        raise DecodeError(f"the record has no time field ({', '.join(TIME_FIELDS[:4])})")
    number, text = severity(_first(record, LEVEL_FIELDS))
    message = _first(record, MESSAGE_FIELDS)
    trace_id = _id(_first(record, TRACE_FIELDS), 32)
    span_id = _id(_first(record, SPAN_FIELDS), 16)
    service = _first(record, SERVICE_FIELDS)
    for keys in (TIME_FIELDS, LEVEL_FIELDS, MESSAGE_FIELDS, TRACE_FIELDS, SPAN_FIELDS, SERVICE_FIELDS):
        if _first(record, keys) is not None:
            _remove(record, keys)
    out: dict[str, Any] = {"timeUnixNano": str(time_ns(stamp))}
    if number:
        out["severityNumber"] = number
    if text:
        out["severityText"] = text
    if message is not None:
        out["body"] = value(message)
    if trace_id:
        out["traceId"] = trace_id
    if span_id:
        out["spanId"] = span_id
    attributes = _flatten(record)
    if attributes:
        out["attributes"] = [{"key": k, "value": value(v)} for k, v in attributes.items()]
    return ((("service.name", str(service)),) if service is not None else ()), out
