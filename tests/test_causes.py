"""The root-cause ranking on small stores made for one behaviour each (the demo's scenarios
are in test_analyzer_demo.py)."""

from __future__ import annotations

import json

import pytest

from conftest import tracekit
from span_documents import T0, log, log_request, request, span, when, write

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



def _causes_json(db: str) -> dict:
    out = tracekit("causes", "--db", db, "--from", when(60), "--to", when(125),
                   "--baseline-from", when(0), "--baseline-to", when(60), "--json").stdout
    return json.loads(out)


def _causes(db: str) -> list[dict]:
    return _causes_json(db)["causes"]


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


def _logged_store(tmp_path, window_errors_at: str, baseline_logs: bool = True) -> str:
    """Forty bookings through gateway → orders → pricing, twenty in the baseline minute and
    twenty after it, with no span status anywhere (as in instrumentation that records none).
    Every service logs at INFO; after the baseline the service `window_errors_at` writes an
    ERROR log inside its span and answers anyway, and the gateway logs a WARN about the answer.
    Throughout, every other gateway request logs an ERROR of its own (a steady noise that a
    baseline cancels)."""
    spans = {"gateway": [], "orders": [], "pricing": []}
    logs = {"gateway": [], "orders": [], "pricing": []}
    for i in range(1, 41):
        in_window = i > 20
        at_ms = (60_000 + (i - 20) * 2500) if in_window else i * 2500
        trace, ids = f"{i:032x}", {s: f"{i:08x}{n:08x}" for n, s in enumerate(spans, 1)}
        spans["gateway"].append(span(trace, ids["gateway"], "POST /book", start_ms=at_ms, duration_ms=40))
        spans["orders"].append(span(trace, ids["orders"], "POST /orders", parent=ids["gateway"],
                                    start_ms=at_ms + 5, duration_ms=30))
        spans["pricing"].append(span(trace, ids["pricing"], "GET /price", parent=ids["orders"],
                                     start_ms=at_ms + 10, duration_ms=10))
        if not (in_window or baseline_logs):
            continue
        for service in spans:
            logs[service].append(log(trace, ids[service], f"{service} handled request {i}",
                                     at_ms=at_ms + 12))
        if i % 2 == 0:
            logs["gateway"].append(log(trace, ids["gateway"], "session refresh failed", severity=17,
                                       at_ms=at_ms + 38))
        if in_window:
            logs[window_errors_at].append(log(trace, ids[window_errors_at], severity=17, at_ms=at_ms + 15,
                                              body=f"lookup failed for order {i}: NullPointerException"))
            logs["gateway"].append(log(trace, ids["gateway"], "empty answer", severity=13, at_ms=at_ms + 35))
    documents = ([request(service, s) for service, s in spans.items()]
                 + [log_request(service, records) for service, records in logs.items() if records])
    db = tmp_path / "store.duckdb"
    tracekit("import", "--db", str(db), str(write(tmp_path / "telemetry.jsonl", *documents)))
    return str(db)


@pytest.mark.parametrize("service", ["orders", "pricing"])
def test_an_error_log_inside_a_span_counts_as_that_operations_failure(tmp_path, service):
    causes = _causes(_logged_store(tmp_path, service))
    assert causes, "spans without status, but the window's error logs point somewhere"
    top = causes[0]
    assert (top["service"], top["failed_flows"], top["error_log_flows"]) == (service, 20, 20)
    assert list(top["error_logs"]) == ["lookup failed for order <*> NullPointerException"]
    # Warnings are not failures: the gateway's WARN about the answer ranks nothing.
    assert all(c["service"] != "gateway" for c in causes)
    # The flow's own detail starts its failure where the log was written, and quotes it.
    db = str(tmp_path / "store.duckdb")
    origin = json.loads(tracekit("flow", "--db", db, top["exemplars"][0], "--json").stdout)["failure_origin"]
    assert origin["service"] == service and origin["error_log"].startswith("lookup failed for order")


def test_steady_error_logs_in_window_and_baseline_rank_nothing(tmp_path):
    db = _logged_store(tmp_path, "pricing")
    # Two halves of the baseline minute: the same steady noise on both sides, in 5 flows of 10.
    out = tracekit("causes", "--db", db, "--from", when(26), "--to", when(51),
                   "--baseline-from", when(1), "--baseline-to", when(26), "--json").stdout
    assert json.loads(out)["causes"] == []


def test_a_baseline_without_logs_is_named_as_a_limit(tmp_path):
    result = _causes_json(_logged_store(tmp_path, "orders", baseline_logs=False))
    assert result["causes"][0]["service"] == "orders"
    assert any("baseline holds no logs" in limit for limit in result["limits"])
    (tmp_path / "with").mkdir()
    assert _causes_json(_logged_store(tmp_path / "with", "orders"))["limits"] == []


def test_a_slower_call_in_a_minority_of_flows_is_found_without_being_told_when(tmp_path):
    """Checkouts call pricing and inventory in parallel, five a second for two minutes. For
    30 s, one checkout in three waits 400 ms on inventory instead of 10: the checkouts'
    median duration does not move, so only the operation's tail shows it. The report finds
    that stretch by itself and names inventory."""
    gateway, pricing, inventory = [], [], []
    for i in range(600):
        at_ms = i * 200
        slow = 80_000 <= at_ms < 110_000 and i % 3 == 0
        stock_ms = 400 if slow else 10
        trace = f"{i + 1:032x}"
        root, calls = f"{i + 1:08x}00000001", (f"{i + 1:08x}00000002", f"{i + 1:08x}00000003")
        gateway += [span(trace, root, "POST /checkout", start_ms=at_ms, duration_ms=stock_ms + 12),
                    span(trace, calls[0], "GET", kind=3, parent=root, start_ms=at_ms + 1,
                         duration_ms=10, attributes={"server.address": "pricing"}),
                    span(trace, calls[1], "GET", kind=3, parent=root, start_ms=at_ms + 1,
                         duration_ms=stock_ms + 1, attributes={"server.address": "inventory"})]
        pricing.append(span(trace, f"{i + 1:08x}00000004", "GET /price", parent=calls[0],
                            start_ms=at_ms + 1.5, duration_ms=9))
        inventory.append(span(trace, f"{i + 1:08x}00000005", "GET /stock", parent=calls[1],
                              start_ms=at_ms + 1.5, duration_ms=stock_ms))
    db = tmp_path / "store.duckdb"
    tracekit("import", "--db", str(db), str(write(tmp_path / "spans.jsonl", request("gateway", gateway),
                                                  request("pricing", pricing),
                                                  request("inventory", inventory))))
    report = json.loads(tracekit("report", "--db", str(db), "--since", "120s", "--format", "json").stdout)
    window = report["window"]
    assert report["incident"] and window["how"] == "detected", window
    slow_from, slow_to = T0 + 80 * 10**9, T0 + 110 * 10**9
    overlap = min(window["end_ns"], slow_to) - max(window["start_ns"], slow_from)
    assert overlap >= 0.8 * (slow_to - slow_from), window
    assert window["end_ns"] - window["start_ns"] <= 1.5 * (slow_to - slow_from), window
    assert report["suspects"][0]["service"] == "inventory"


def test_calls_no_longer_made_point_at_the_operation_that_stopped_making_them(tmp_path):
    """Bookings through gateway → orders → pricing → tax, no status, no error log, the same
    durations. After the first minute, orders answers half the bookings early without asking
    pricing (an exception caught and turned into an empty answer): the calls below it stop
    too, but the path changed at orders."""
    gateway, orders, pricing = [], [], []
    for i in range(1, 81):
        in_window = i > 40
        at_ms = (60_000 + (i - 40) * 1400) if in_window else i * 1400
        trace = f"{i:032x}"
        ids = [f"{i:08x}{n:08x}" for n in range(1, 6)]
        early = in_window and i % 2 == 0
        gateway += [span(trace, ids[0], "POST /book", start_ms=at_ms, duration_ms=40),
                    span(trace, ids[1], "POST", kind=3, parent=ids[0], start_ms=at_ms + 2, duration_ms=35)]
        orders.append(span(trace, ids[2], "POST /orders", parent=ids[1], start_ms=at_ms + 3, duration_ms=33))
        if not early:
            orders.append(span(trace, ids[3], "GET", kind=3, parent=ids[2], start_ms=at_ms + 5, duration_ms=20))
            pricing += [span(trace, ids[4], "GET /price", parent=ids[3], start_ms=at_ms + 6, duration_ms=18),
                        span(trace, f"{i:08x}00000006", "SELECT tax", kind=3, parent=ids[4],
                             start_ms=at_ms + 7, duration_ms=5)]
    db = tmp_path / "store.duckdb"
    tracekit("import", "--db", str(db), str(write(tmp_path / "spans.jsonl", request("gateway", gateway),
                                                  request("orders", orders), request("pricing", pricing))))
    causes = _causes(str(db))
    assert causes and (causes[0]["service"], causes[0]["operation"]) == ("orders", "POST /orders"), causes
    assert causes[0]["path_share"] >= 0.4
    assert any(change.startswith("- orders GET") for change in causes[0]["path_changes"])
    # Neither the callee that is no longer asked nor the callers above are blamed.
    assert all(c["service"] != "pricing" for c in causes)


def _shop(tmp_path, slow_side: str) -> list[dict]:
    """Browsing (frontend → cart, catalog) and checkouts (frontend → checkout → cart, catalog,
    payment), 40 of each a minute; every call a client span and its server span. In the second
    minute the time between them grows by 300 ms: on every call checkout makes
    (`slow_side="caller"`: its CPU starved, its network slowed) or on every call to cart, from
    both of its callers (`"callee"`). No server span gets slower."""
    by_service: dict[str, list[dict]] = {}
    ids = iter(range(1, 10**6))

    def add(service, trace, span_id, name, at_ms, ms, parent=None, kind=2):
        by_service.setdefault(service, []).append(
            span(trace, span_id, name, kind=kind, parent=parent, start_ms=at_ms, duration_ms=ms))

    def calls(caller, parent, trace, callees, at_ms, in_window) -> float:
        """The calls one after the other from at_ms; how long they took."""
        took = 0.0
        for callee, operation in callees:
            slowed = in_window and (caller == "checkout" if slow_side == "caller" else callee == "cart")
            gap = 302 if slowed else 2
            client = f"{next(ids):016x}"
            add(caller, trace, client, operation, at_ms + took, 5 + gap, parent, kind=3)
            add(callee, trace, f"{next(ids):016x}", operation, at_ms + took + gap / 2, 5, client)
            took += 5 + gap + 1       # the next call leaves a little after the answer
        return took

    for i in range(160):
        in_window, at_ms, trace = i >= 80, i * 1500.0, f"{i + 1:032x}"
        root = f"{next(ids):016x}"
        if i % 2:
            took = calls("frontend", root, trace, (("cart", "GetCart"), ("catalog", "ListProducts")),
                         at_ms + 1, in_window)
            add("frontend", trace, root, "GET /browse", at_ms, took + 2)
        else:
            client, order = f"{next(ids):016x}", f"{next(ids):016x}"
            took = calls("checkout", order, trace, (("cart", "GetCart"), ("catalog", "GetProduct"),
                                                    ("payment", "Charge")), at_ms + 3, in_window)
            add("checkout", trace, order, "PlaceOrder", at_ms + 2, took + 2, client)
            add("frontend", trace, client, "PlaceOrder", at_ms + 1, took + 4, root, kind=3)
            add("frontend", trace, root, "POST /checkout", at_ms, took + 6)
    db = tmp_path / "store.duckdb"
    tracekit("import", "--db", str(db), str(write(tmp_path / "spans.jsonl",
                                                  *(request(s, spans) for s, spans in by_service.items()))))
    out = tracekit("causes", "--db", str(db), "--from", when(120), "--to", when(241),
                   "--baseline-from", when(0), "--baseline-to", when(120), "--json").stdout
    return json.loads(out)["causes"]


def test_calls_slowed_on_the_callers_side_point_at_the_caller_not_its_callees(tmp_path):
    causes = _shop(tmp_path, "caller")
    assert causes and (causes[0]["service"], causes[0]["operation"]) == ("checkout", "PlaceOrder"), causes
    assert all(c["service"] not in ("cart", "catalog", "payment") for c in causes), causes


def test_calls_to_one_service_slowed_from_all_its_callers_point_at_that_callee(tmp_path):
    causes = _shop(tmp_path, "callee")
    assert causes and (causes[0]["service"], causes[0]["operation"]) == ("cart", "GetCart"), causes
    assert all(c["service"] not in ("frontend", "checkout") for c in causes), causes


def test_a_slowdown_of_a_kind_of_flow_that_is_a_few_of_the_windows_flows_is_named(tmp_path):
    """Page views (19 in 20 flows) and checkouts that call payment. In the second minute,
    payment answers 300 ms later: over all the window's flows that is 15 ms each, below what
    counts as a slowdown of the window, but every checkout took twice as long."""
    web, payment = [], []
    for i in range(400):
        in_window, at_ms, trace = i >= 200, i * 300.0, f"{i + 1:032x}"
        root = f"{i + 1:08x}00000001"
        if i % 20:
            web.append(span(trace, root, "GET /page", start_ms=at_ms, duration_ms=20))
            continue
        charge_ms = 310 if in_window else 10
        call = f"{i + 1:08x}00000002"
        web += [span(trace, root, "POST /checkout", start_ms=at_ms, duration_ms=charge_ms + 300),
                span(trace, call, "POST /charge", kind=3, parent=root, start_ms=at_ms + 290,
                     duration_ms=charge_ms + 2)]
        payment.append(span(trace, f"{i + 1:08x}00000003", "POST /charge", parent=call,
                            start_ms=at_ms + 291, duration_ms=charge_ms))
    db = tmp_path / "store.duckdb"
    tracekit("import", "--db", str(db), str(write(tmp_path / "spans.jsonl", request("web", web),
                                                  request("payment", payment))))
    out = tracekit("causes", "--db", str(db), "--from", when(60), "--to", when(121),
                   "--baseline-from", when(0), "--baseline-to", when(60), "--json").stdout
    causes = json.loads(out)["causes"]
    assert causes and (causes[0]["service"], causes[0]["operation"]) == ("payment", "POST /charge"), causes
    assert causes[0]["slowdown_share"] >= 0.3


def test_a_service_slower_in_its_own_work_on_a_few_calls_is_named_not_its_callers(tmp_path):
    """Searches (most flows) and a few bookings a minute: gateway → booking → contacts. In the
    second minute contacts' CPU is starved: five of its eight calls take 300 ms longer inside
    contacts itself (whole scheduling periods lost), the others as usual. Over the window, or
    over the eight bookings, that is too few flows for a slowdown; in contacts' own time, against
    its usual, it is clear. Booking and gateway only wait for it."""
    gateway, search, booking, contacts = [], [], [], []
    for minute in (0, 1):
        for i in range(126):
            n = minute * 126 + i + 1
            trace, at_ms = f"{n:032x}", minute * 60_000 + i * 470.0
            ids = [f"{n:08x}{k:08x}" for k in range(1, 6)]
            if i % 16:
                gateway += [span(trace, ids[0], "GET /search", start_ms=at_ms, duration_ms=52),
                            span(trace, ids[1], "GET", kind=3, parent=ids[0], start_ms=at_ms + 1, duration_ms=50)]
                search.append(span(trace, ids[2], "GET /search", parent=ids[1], start_ms=at_ms + 2, duration_ms=48))
                continue
            slowed = minute == 1 and (i // 16) % 3 != 0
            ms = 310 if slowed else 10
            gateway += [span(trace, ids[0], "POST /book", start_ms=at_ms, duration_ms=ms + 406),
                        span(trace, ids[1], "POST", kind=3, parent=ids[0], start_ms=at_ms + 1, duration_ms=ms + 404)]
            booking += [span(trace, ids[2], "POST /book", parent=ids[1], start_ms=at_ms + 2, duration_ms=ms + 402),
                        span(trace, ids[3], "GET", kind=3, parent=ids[2], start_ms=at_ms + 3, duration_ms=ms + 2)]
            contacts.append(span(trace, ids[4], "GET /contacts/{id}", parent=ids[3], start_ms=at_ms + 4,
                                 duration_ms=ms))
    db = tmp_path / "store.duckdb"
    tracekit("import", "--db", str(db), str(write(tmp_path / "spans.jsonl", request("gateway", gateway),
                                                  request("search", search), request("booking", booking),
                                                  request("contacts", contacts))))
    causes = _causes(str(db))
    assert causes and (causes[0]["service"], causes[0]["operation"]) == ("contacts", "GET /contacts/{id}"), causes
    assert "5 of 8 spans" in causes[0]["own_time"]
    assert all(c["service"] not in ("booking", "gateway", "search") for c in causes), causes
    # The report shows the evidence that ranked it: the own time, not only SQL's figures.
    report = tracekit("report", "--db", str(db), "--from", when(60), "--to", when(125),
                      "--baseline-from", when(0), "--baseline-to", when(60)).stdout.decode()
    assert "**1. contacts GET /contacts/{id}**" in report
    assert "own time (outside its calls)" in report and "5 of 8 spans" in report
