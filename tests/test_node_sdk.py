"""The real OpenTelemetry JS SDK (tests/node/send.mjs, default exporter settings) exports to
`tracekit collect` over OTLP/HTTP JSON, OTLP/HTTP protobuf and gRPC; `tracekit sql` reads the
spans and logs back while the collector still runs, with ids, kinds and value types intact.

Needs Node.js and npm: the packages pinned in tests/node/package-lock.json are installed with
`npm ci` on first use. Without node/npm the tests skip, except in CI (env CI set), where they fail.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time

import pytest

from tests.conftest import sql

NODE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "node")
MIN_NODE = (18, 19)  # the engines range of the pinned @opentelemetry packages
TRANSPORTS = ["http-json", "http-protobuf", "grpc"]


def _unavailable(message: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI needs Node.js and npm for the JS SDK tests")
    pytest.skip(message)


def _node_env() -> dict[str, str]:
    """The environment without OTEL_* settings or proxies, so only the script configures the SDK."""
    proxies = {"http_proxy", "https_proxy", "grpc_proxy", "all_proxy", "no_proxy", "no_grpc_proxy"}
    return {k: v for k, v in os.environ.items()
            if not k.startswith("OTEL_") and k.lower() not in proxies}


@pytest.fixture(scope="session")
def js_sdk() -> str:
    """tests/node with its node_modules installed (`npm ci` when missing or older than the lock)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        _unavailable(f"{'node' if not node else 'npm'} is not on PATH")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    match = re.match(r"v(\d+)\.(\d+)", version)
    if not match or tuple(map(int, match.groups())) < MIN_NODE:
        _unavailable(f"Node.js {version or '?'} is too old: the OpenTelemetry JS SDK needs "
                     f">= {MIN_NODE[0]}.{MIN_NODE[1]}")
    installed = os.path.join(NODE_DIR, "node_modules", ".package-lock.json")
    lock = os.path.join(NODE_DIR, "package-lock.json")
    if not os.path.exists(installed) or os.path.getmtime(installed) < os.path.getmtime(lock):
        started = time.monotonic()
        result = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, env=_node_env(),
                                capture_output=True, text=True, timeout=600)
        if result.returncode != 0:
            _unavailable(f"`npm ci` in tests/node exited {result.returncode}: "
                         f"{(result.stderr or result.stdout)[-2000:]}")
        print(f"npm ci in tests/node took {time.monotonic() - started:.1f}s")
    return NODE_DIR


def _send(js_sdk: str, collector, transport: str, service: str) -> dict:
    """Run send.mjs against the collector; its JSON line holds the ids the SDK generated."""
    address = collector.grpc if transport == "grpc" else collector.http
    result = subprocess.run(["node", "send.mjs", transport, address, service], cwd=js_sdk,
                            env=_node_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, (f"send.mjs over {transport} exited {result.returncode}\n"
                                    f"stdout: {result.stdout}\nstderr: {result.stderr}")
    assert collector.process.poll() is None, "collector must still be running"
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_js_sdk_spans_are_stored_with_types_over(js_sdk, collector, transport):
    service = f"js-{transport}"
    ids = _send(js_sdk, collector, transport, service)

    # It went through the receiver for that transport.
    sources = {row["source"] for row in sql(collector.db, "SELECT DISTINCT source FROM ingest_batches")}
    assert sources == {"otlp-grpc" if transport == "grpc" else "otlp-http"}

    spans = {row["name"]: row for row in sql(collector.db, f"""
        SELECT name, kind, trace_id, span_id, parent_span_id, status_code, status_message,
               service_name, scope_name, scope_version, duration_ns, ingest_notes,
               epoch_ns(end_time) - epoch_ns(start_time) AS computed_ns,
               resource_attributes['k8s.pod.name']::VARCHAR AS pod
        FROM spans WHERE service_name = '{service}'""")}
    assert set(spans) == {"checkout", "publish OrderPlaced", "charge"}
    root, child, failing = spans["checkout"], spans["publish OrderPlaced"], spans["charge"]
    assert {s["trace_id"] for s in spans.values()} == {ids["trace_id"]}
    assert root["span_id"] == ids["parent_span_id"] and root["parent_span_id"] is None
    assert child["span_id"] == ids["child_span_id"] and child["parent_span_id"] == ids["parent_span_id"]
    assert failing["span_id"] == ids["error_span_id"] and failing["parent_span_id"] == ids["parent_span_id"]
    assert (root["kind"], child["kind"], failing["kind"]) == ("SERVER", "PRODUCER", "CLIENT")
    assert failing["status_code"] == "ERROR" and failing["status_message"] == "card declined"
    assert root["status_code"] == child["status_code"] == "UNSET"
    assert root["scope_name"] == "tests.node" and root["scope_version"] == "1.2.3"
    assert root["duration_ns"] == root["computed_ns"] > 0
    assert root["pod"] == "pod-js"
    assert all(not s["ingest_notes"] for s in spans.values())

    # Attribute values keep their types: ints compare as ints, arrays index, doubles stay doubles.
    [typed] = sql(collector.db, f"""
        SELECT attributes['i'] + 1 AS i_plus_one,
               attributes['neg'] + 0 AS neg,
               attributes['f']::DOUBLE * 2 AS f_doubled,
               attributes['b']::BOOLEAN AS b,
               attributes['s']::VARCHAR AS s,
               attributes['strings'][2]::VARCHAR AS second_string,
               attributes['ints'][3] + 0 AS third_int,
               attributes['floats'][2]::DOUBLE AS second_float,
               attributes['bools'][2]::BOOLEAN AS second_bool,
               attributes['http.route']::VARCHAR AS route,
               attributes['http.response.status_code'] >= 500 AS is_5xx,
               variant_typeof(attributes['i']) AS i_type,
               variant_typeof(attributes['f']) AS f_type,
               variant_typeof(attributes['s']) AS s_type,
               variant_typeof(attributes['b']) AS b_type,
               variant_typeof(attributes['ints']) AS ints_type,
               events[1].name AS event_name,
               events[1].attributes['items'] + 0 AS event_items,
               events[1].attributes['vip']::BOOLEAN AS event_vip,
               events[1].attributes['ratio']::DOUBLE AS event_ratio
        FROM spans WHERE service_name = '{service}' AND name = 'checkout'""")
    assert typed == {
        "i_plus_one": 43, "neg": -7, "f_doubled": 3.0, "b": True, "s": "text",
        "second_string": "b", "third_int": 3, "second_float": 2.5, "second_bool": False,
        "route": "/orders/{id}", "is_5xx": True,
        "i_type": typed["i_type"], "f_type": "DOUBLE", "s_type": "VARCHAR", "b_type": "BOOL_TRUE",
        "ints_type": typed["ints_type"],
        "event_name": "cart.loaded", "event_items": 3, "event_vip": False, "event_ratio": 0.25,
    }
    assert "INT" in typed["i_type"] and typed["ints_type"].startswith("ARRAY")

    [link] = sql(collector.db, f"""
        SELECT len(links) AS n_links, links[1].trace_id AS trace_id, links[1].span_id AS span_id,
               links[1].attributes['link.reason']::VARCHAR AS reason,
               links[1].attributes['n'] + 0 AS n
        FROM spans WHERE service_name = '{service}' AND name = 'publish OrderPlaced'""")
    assert link == {"n_links": 1, "trace_id": ids["trace_id"], "span_id": ids["parent_span_id"],
                    "reason": "fan-in", "n": 7}

    [exception] = sql(collector.db, f"""
        SELECT e.name, e.attributes['exception.type']::VARCHAR AS type,
               e.attributes['exception.message']::VARCHAR AS message,
               e.attributes['exception.stacktrace']::VARCHAR LIKE '%send.mjs%' AS has_stack
        FROM (SELECT unnest(events) AS e FROM spans
              WHERE service_name = '{service}' AND name = 'charge')""")
    assert exception == {"name": "exception", "type": "TypeError", "message": "card declined",
                         "has_stack": True}

    # Logs are sent (over OTLP/HTTP JSON) alongside the http transports only.
    [count] = sql(collector.db, f"SELECT count(*) AS n FROM logs WHERE service_name = '{service}'")
    assert count["n"] == ids["logs"] == (0 if transport == "grpc" else 2)


def test_js_sdk_logs_are_stored_with_trace_context(js_sdk, collector):
    service = "js-logs"
    ids = _send(js_sdk, collector, "http-json", service)

    logs = sql(collector.db, f"""
        SELECT l.body::VARCHAR AS body, variant_typeof(l.body) AS body_type,
               l.severity_number, l.severity_text, l.trace_id, l.span_id, l.trace_flags,
               l.scope_name, l.scope_version,
               l.attributes['order.id']::VARCHAR AS order_id, l.attributes['attempt'] + 0 AS attempt,
               l.resource_attributes['k8s.pod.name']::VARCHAR AS pod,
               s.name AS span
        FROM logs l LEFT JOIN spans s USING (trace_id, span_id)
        WHERE l.service_name = '{service}' ORDER BY l.severity_number DESC""")
    assert len(logs) == 2
    error, info = logs
    assert error == {
        "body": "charge failed for o-1", "body_type": "VARCHAR",
        "severity_number": 17, "severity_text": "ERROR",
        "trace_id": ids["trace_id"], "span_id": ids["error_span_id"], "trace_flags": 1,
        "scope_name": "tests.node.logs", "scope_version": "4.5.6",
        "order_id": "o-1", "attempt": 2, "pod": "pod-js", "span": "charge",
    }
    assert info["severity_number"] == 9 and info["severity_text"] == "INFO"
    assert info["trace_id"] == ids["trace_id"] and info["span_id"] == ids["parent_span_id"]
    assert info["span"] == "checkout"

    # A structured body stays structured.
    [body] = sql(collector.db, f"""
        SELECT body['event']::VARCHAR AS event, body['items'] + 0 AS items,
               body['paid']::BOOLEAN AS paid, body['tags'][2]::VARCHAR AS second_tag
        FROM logs WHERE service_name = '{service}' AND severity_number = 9""")
    assert body == {"event": "checkout.done", "items": 3, "paid": False, "second_tag": "y"}
