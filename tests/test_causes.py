"""The root-cause ranking on small stores made for one behaviour each (the demo's scenarios
are in test_analyzer_demo.py)."""

from __future__ import annotations

import json

import pytest

from conftest import tracekit
from span_documents import T0, request, span, write

CALLER_ATTRIBUTES = {"peer.service": "payment", "server.address": "payment",
                     "rpc.service": "oteldemo.PaymentService"}


def _checkout(i: int, at_ms: float, arrived: bool, failed: bool) -> list[dict]:
    """A checkout whose call to the payment service fails before it arrives (an error on the
    client), or succeeds, with a server span in `paymentservice` when `arrived`."""
    trace = f"{i:032x}"
    spans = [
        [span(trace, f"{i:08x}00000001", "POST /checkout", kind=2, start_ms=at_ms, duration_ms=50,
              error=failed),
         span(trace, f"{i:08x}00000002", "oteldemo.PaymentService/Charge", kind=3,
              parent=f"{i:08x}00000001", start_ms=at_ms + 5, duration_ms=30,
              attributes=CALLER_ATTRIBUTES, error=failed)],
        [span(trace, f"{i:08x}00000003", "oteldemo.PaymentService/Charge", kind=2,
              parent=f"{i:08x}00000002", start_ms=at_ms + 10, duration_ms=20)] if arrived else [],
    ]
    return spans


def _store(tmp_path, traced_callee: bool) -> str:
    """Ten healthy checkouts (the callee traced or not), then ten whose payment call fails."""
    frontend, payment = [], []
    for i in range(1, 21):
        in_window = i > 10
        at_ms = (60_000 if in_window else 0) + i * 1000
        mine, theirs = _checkout(i, at_ms, arrived=traced_callee and not in_window, failed=in_window)
        frontend += mine
        payment += theirs
    documents = [request("frontend", frontend)] + ([request("paymentservice", payment)] if payment else [])
    db = tmp_path / "store.duckdb"
    tracekit("import", "--db", str(db), str(write(tmp_path / "spans.jsonl", *documents)))
    return str(db)


def _causes(db: str) -> list[dict]:
    def at(seconds: int) -> str:
        ns = T0 + seconds * 10**9
        return json.loads(tracekit("sql", "--db", db, "--format", "json",
                                   f"SELECT make_timestamp_ns({ns})::VARCHAR AS t").stdout)[0]["t"]
    out = tracekit("causes", "--db", db, "--from", at(60), "--to", at(125),
                   "--baseline-from", at(0), "--baseline-to", at(60), "--json").stdout
    return json.loads(out)["causes"]


def test_an_unreachable_callee_is_named_by_the_service_that_serves_those_calls(tmp_path):
    causes = _causes(_store(tmp_path, traced_callee=True))
    assert causes and causes[0]["service"] == "paymentservice"
    assert causes[0]["failed_flows"] == 10


def test_an_unreachable_callee_never_seen_arriving_is_named_by_its_peer_service(tmp_path):
    causes = _causes(_store(tmp_path, traced_callee=False))
    assert causes and causes[0]["service"] == "payment"
    assert all(c["service"] in ("payment", "frontend") for c in causes)


@pytest.mark.parametrize("attributes, kind, failed", [
    ({}, 2, False),
    ({"error.type": "timeout"}, 2, True),                  # set only when the operation failed
    ({"http.response.status_code": "503"}, 2, True),
    ({"http.response.status_code": "404"}, 2, False),      # a client's mistake, not the server's
    ({"http.response.status_code": "404"}, 3, True),       # ... but the client's call failed
    ({"rpc.grpc.status_code": "14"}, 2, True),             # UNAVAILABLE
    ({"rpc.grpc.status_code": "5"}, 2, False),             # NOT_FOUND: not a server error
])
def test_spans_without_a_status_fail_by_the_semantic_conventions(tmp_path, attributes, kind, failed):
    trace = "ab" * 16
    documents = [request("shop", [span(trace, "1" * 16, "GET /item", kind=kind, attributes=attributes)])]
    db = tmp_path / "store.duckdb"
    tracekit("import", "--db", str(db), str(write(tmp_path / "spans.jsonl", *documents)))
    [row] = json.loads(tracekit("sql", "--db", str(db), "--format", "json",
                                "SELECT error FROM flow_spans").stdout)
    assert row["error"] is failed
