"""Zipkin v2 spans → an OTLP/JSON trace export, mapped as the OpenTelemetry Collector's zipkin
receiver maps them (collector-contrib pkg/translator/zipkin/zipkinv2), plus two repairs that
tracekit's flow analysis needs:

- Shared spans: Zipkin lets a client and a server report one span id (B3 "shared span
  context", the server half flagged `shared: true`). Stored as they are, the second would be a
  duplicate of the first. The server half gets a new span id derived from the trace and span
  ids (the same on every re-send, so a retried export is deduplicated) and the client span as
  its parent; spans of the same request whose parent is the shared id are the server's own
  work and move under it.
- Sidecar proxies (Istio/Envoy, `component: proxy`): a sidecar hop is reported under the
  proxy's own name (`reviews.default`). By default its spans are given the service of the
  workload the sidecar sits beside (`istio.canonical_service`, else the pod in `node_id`), so
  the hop is part of the call it carries and not a service of its own;
  `keep_proxy_spans=True` keeps the proxy's name. Both ways they carry `tracekit.proxy`.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from typing import Any

from tracekit.errors import DecodeError
from tracekit.formats.otlp_document import (
    SPAN_KIND_CLIENT, SPAN_KIND_CONSUMER, SPAN_KIND_INTERNAL, SPAN_KIND_PRODUCER, SPAN_KIND_SERVER,
    SPAN_KIND_UNSPECIFIED, STATUS_ERROR, STATUS_OK, STATUS_UNSET, hex_id, span_document,
    traces_document,
)

_KINDS = {"CLIENT": SPAN_KIND_CLIENT, "SERVER": SPAN_KIND_SERVER,
          "PRODUCER": SPAN_KIND_PRODUCER, "CONSUMER": SPAN_KIND_CONSUMER}
_STATUS = {"STATUS_CODE_UNSET": STATUS_UNSET, "STATUS_CODE_OK": STATUS_OK,
           "STATUS_CODE_ERROR": STATUS_ERROR, "UNSET": STATUS_UNSET, "OK": STATUS_OK,
           "ERROR": STATUS_ERROR}
# Tags that describe the process, not the span: the collector moves the resource semantic
# conventions' attributes to the resource.
_RESOURCE_PREFIXES = ("service.", "host.", "k8s.", "container.", "process.", "telemetry.sdk.",
                      "cloud.", "os.", "deployment.")
_SCOPE_TAGS = ("otel.scope.name", "otel.library.name")
_SCOPE_VERSION_TAGS = ("otel.scope.version", "otel.library.version")
# A Deployment's pod: <name>-<replicaset hash>-<pod suffix>.
_POD = re.compile(r"^(?P<workload>.+?)(?:-v\d+)?-[a-z0-9]{6,10}-[a-z0-9]{5}$")
PROXY_ATTRIBUTE = "tracekit.proxy"


def spans_from_json(document: Any) -> list[dict]:
    """The spans of a Zipkin v2 JSON body: a list of spans, or of traces (lists of spans) as
    Zipkin's /api/v2/traces answers."""
    if not isinstance(document, list):
        got = "an object" if isinstance(document, dict) else f"a {type(document).__name__}"
        raise DecodeError(f"a Zipkin v2 body must be a JSON list of spans (got {got})")
    spans: list[dict] = []
    for item in document:
        if isinstance(item, list):
            spans.extend(item)
        else:
            spans.append(item)
    for span in spans:
        if not isinstance(span, dict):
            raise DecodeError(f"a Zipkin v2 span must be a JSON object, got {span!r:.60}")
        if "traceId" not in span or "id" not in span:
            raise DecodeError("a Zipkin v2 span needs traceId and id "
                              f"(got the keys {sorted(span)[:8]})")
    return spans


def looks_like_zipkin(document: Any) -> bool:
    """Whether a parsed JSON document is Zipkin v2 spans (or traces of them)."""
    if not isinstance(document, list) or not document:
        return False
    first = document[0]
    if isinstance(first, list) and first:
        first = first[0]
    return isinstance(first, dict) and "traceId" in first and "id" in first


def shared_server_id(trace_id: str, span_id: str, service: str) -> str:
    """The span id a shared span's server half is stored under: fixed by the ids and the
    reporting service, so a re-sent span gets the same one (and is stored once), and a sidecar
    and its application that both joined the span keep a span each."""
    digest = hashlib.sha256(f"zipkin-shared-server:{trace_id}:{span_id}:{service}".encode()).hexdigest()
    return digest[:16] if digest[:16] != "0" * 16 else "1".rjust(16, "0")


def is_sidecar(tags: dict) -> bool:
    """An Istio/Envoy sidecar's span: `component: proxy` with a sidecar node id or an Istio
    inbound/outbound upstream cluster. Gateways (`router~` node ids) are services of their own."""
    if tags.get("component") != "proxy":
        return False
    node = str(tags.get("node_id", ""))
    if node:
        return node.startswith("sidecar~")
    return str(tags.get("upstream_cluster", "")).startswith(("inbound|", "outbound|"))


def sidecar_workload(tags: dict, proxy_service: str) -> str:
    """The service a sidecar sits beside."""
    if tags.get("istio.canonical_service"):
        return str(tags["istio.canonical_service"])
    parts = str(tags.get("node_id", "")).split("~")
    if len(parts) >= 3 and parts[2]:
        pod = parts[2].split(".")[0]
        match = _POD.match(pod)
        return match.group("workload") if match else pod
    return proxy_service.split(".")[0] if proxy_service else proxy_service


def to_otlp(spans: list[dict], keep_proxy_spans: bool = False) -> dict:
    """An OTLP/JSON trace export document of Zipkin v2 spans (from `spans_from_json`)."""
    client_ids = {(str(s.get("traceId")), str(s.get("id"))) for s in spans
                  if s.get("kind") == "CLIENT"}
    # (trace, shared id) -> the new id of the server half that the shared id's children move
    # under: the application's own, where a sidecar reported the same id too.
    moved: dict[tuple[str, str], str] = {}
    for span in sorted(spans, key=lambda s: not is_sidecar(_tags(s))):
        key = (str(span.get("traceId")), str(span.get("id")))
        if _is_shared_server(span, client_ids):
            moved[key] = shared_server_id(hex_id(key[0], 32), hex_id(key[1], 16), _service(span))
    try:
        return traces_document(_span(span, moved, client_ids, keep_proxy_spans) for span in spans)
    except (TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise DecodeError(f"not a valid Zipkin v2 span: {exc}") from None


def _is_shared_server(span: dict, client_ids: set) -> bool:
    return span.get("kind") == "SERVER" and bool(
        span.get("shared") or (str(span.get("traceId")), str(span.get("id"))) in client_ids)


def _tags(span: dict) -> dict[str, str]:
    tags = span.get("tags")
    return {str(k): v if isinstance(v, str) else str(v) for k, v in tags.items()} if isinstance(tags, dict) else {}


def _service(span: dict) -> str:
    local = span.get("localEndpoint")
    return str(local.get("serviceName") or "") if isinstance(local, dict) else ""


def _span(span: dict, moved: dict, client_ids: set, keep_proxy_spans: bool
          ) -> tuple[tuple, str | None, dict]:
    trace_id, span_id = str(span.get("traceId")), str(span.get("id"))
    parent = span.get("parentId")
    parent = str(parent) if parent else None
    tags = _tags(span)
    local = span.get("localEndpoint") if isinstance(span.get("localEndpoint"), dict) else {}
    remote = span.get("remoteEndpoint") if isinstance(span.get("remoteEndpoint"), dict) else {}
    kind = _KINDS.get(str(span.get("kind") or "").upper(), SPAN_KIND_UNSPECIFIED)
    if kind == SPAN_KIND_UNSPECIFIED and tags.pop("span.kind", None) == "internal":
        kind = SPAN_KIND_INTERNAL

    # The shared span's server half becomes the client span's child; spans whose parent is the
    # shared id are the server's own work (a client span has no children of its own in Zipkin's
    # model: the B3 headers it sends carry its id to the server) and follow it.
    out_id, out_parent = hex_id(span_id, 16), hex_id(parent, 16) if parent and parent != span_id else ""
    shared = _is_shared_server(span, client_ids)
    if shared:
        out_id = shared_server_id(hex_id(trace_id, 32), out_id, _service(span))
        out_parent = hex_id(span_id, 16)
    elif parent and (trace_id, parent) in moved:
        out_parent = moved[(trace_id, parent)]

    status: dict[str, Any] = {}
    if "otel.status_code" in tags:
        status["code"] = _STATUS.get(tags.pop("otel.status_code").upper(), STATUS_UNSET)
        if "otel.status_description" in tags:
            status["message"] = tags.pop("otel.status_description")
    if "error" in tags:
        message = tags.pop("error")
        status["code"] = STATUS_ERROR
        if message and message.lower() != "true":
            status["message"] = message

    service = str(local.get("serviceName") or "")
    if is_sidecar(tags):
        tags[PROXY_ATTRIBUTE] = "sidecar"
        if not keep_proxy_spans:
            tags["proxy.service_name"] = service
            service = sidecar_workload(tags, service)
    resource = {"service.name": service} if service else {}
    for key in [k for k in tags if k.startswith(_RESOURCE_PREFIXES)]:
        resource[key] = tags.pop(key)
    scope = next((tags.pop(k) for k in _SCOPE_TAGS if k in tags), None)
    for key in _SCOPE_VERSION_TAGS:
        tags.pop(key, None)
    trace_state = tags.pop("w3c.tracestate", "")

    attributes: dict[str, Any] = dict(tags)
    _endpoint(local, "network.local", attributes)
    _endpoint(remote, "network.peer", attributes)
    if remote.get("serviceName"):
        attributes["peer.service"] = str(remote["serviceName"])
    if kind in (SPAN_KIND_CLIENT, SPAN_KIND_PRODUCER):
        address = remote.get("serviceName") or remote.get("ipv4") or remote.get("ipv6")
        if address:
            attributes["server.address"] = str(address)
        if _port(remote):
            attributes["server.port"] = _port(remote)
    if shared:
        attributes["zipkin.shared"] = True

    annotations = [a for a in span.get("annotations") or [] if isinstance(a, dict)]
    start_us = span.get("timestamp")
    if not start_us and annotations:
        start_us = min(int(a.get("timestamp") or 0) for a in annotations)
    start_us = int(start_us or 0)
    end_us = start_us + int(span.get("duration") or 0)
    events = [{"timeUnixNano": str(int(a.get("timestamp") or 0) * 1000),
               "name": str(a.get("value") or "")} for a in annotations]
    return tuple(resource.items()), scope, span_document(
        hex_id(trace_id, 32), out_id, str(span.get("name") or ""), kind, start_us, end_us,
        attributes, parent=out_parent, status=status, trace_state=trace_state, events=events)


def _port(endpoint: dict) -> int | None:
    port = endpoint.get("port")
    return int(port) if isinstance(port, int | str) and str(port).isdigit() and int(port) > 0 else None


def _endpoint(endpoint: dict, prefix: str, attributes: dict) -> None:
    address = endpoint.get("ipv6") or endpoint.get("ipv4")
    if address:
        attributes[f"{prefix}.address"] = str(address)
    if _port(endpoint):
        attributes[f"{prefix}.port"] = _port(endpoint)


def ip_text(raw: bytes) -> str:
    """A protobuf endpoint's 4- or 16-byte address as text."""
    return str(ipaddress.ip_address(raw)) if len(raw) in (4, 16) else raw.hex()
