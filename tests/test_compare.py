"""Comparing two flows (tracekit.analysis.compare) on hand-built flows: steps align by service
and operation and by their repeat under the same parent; what is only in one flow, the time,
the critical path, the attributes and the errors that differ."""

from __future__ import annotations

from tracekit.analysis.compare import FlowSide, Step, compare, volatile
from tracekit.analysis.compare_text import as_dict, markdown, text

MS = 1_000_000


def step(key, service, name, start, end, parent=None, self_ms=None, **extra) -> Step:
    return Step(key=key, parent=parent, service=service, name=name, start_ns=start * MS,
                end_ns=end * MS, self_ns=(end - start if self_ms is None else self_ms) * MS, **extra)


def flow(flow_id, steps, critical=(), status="complete") -> FlowSide:
    """A flow; `critical`: (key, ms) on its critical path (segment span)."""
    return FlowSide(flow_id, tuple(steps), {(k, "span"): ms * MS for k, ms in critical}, status,
                    max(s.end_ns for s in steps) - min(s.start_ns for s in steps))


def checkout(prefix, attempts: int, *, fail_last=False, extra=()) -> list[Step]:
    """A checkout whose orders service calls payment `attempts` times (retries), each
    attempt with the server span below it."""
    p = prefix
    out = [step(f"{p}root", "frontend", "POST /checkout", 0, 100),
           step(f"{p}orders", "orders", "POST /orders", 1, 99, f"{p}root")]
    for i in range(attempts):
        failing = fail_last and i == attempts - 1 or i < attempts - 1
        out += [step(f"{p}call{i}", "orders", "POST", 2 + i * 20, 20 + i * 20, f"{p}orders",
                     kind="CLIENT", target="payment/charge", error=failing),
                step(f"{p}charge{i}", "payment", "POST /charge", 3 + i * 20, 19 + i * 20,
                     f"{p}call{i}", error=failing, status="ERROR" if failing else "OK",
                     status_message="503" if failing else None)]
    return out + list(extra)


def test_the_nth_retry_pairs_with_the_nth_and_extra_retries_are_only_in_one_flow():
    a = flow("A", checkout("a", 3))
    b = flow("B", checkout("b", 1))
    c = compare(a, b)
    paired = {(p.a.key, p.b.key) for p in c.pairs if p.a and p.b}
    assert {("aroot", "broot"), ("aorders", "borders"), ("acall0", "bcall0"),
            ("acharge0", "bcharge0")} == paired
    assert [(lone.step.key, lone.below) for lone in c.only_in_a] == [("acall1", 1), ("acall2", 1)]
    assert c.only_in_b == ()
    assert c.only_in_a[0].path[-1] == "orders POST → payment/charge #2"


def test_repeats_align_under_their_own_aligned_parent_not_across_the_flow():
    """Each of two loops' iterations runs a query: the query under A's second iteration pairs
    with the one under B's second, not with the second query of the flow."""
    def loop(p, queries_in_second):
        steps = [step(f"{p}root", "inventory", "reserve", 0, 50),
                 step(f"{p}it0", "inventory", "item", 1, 10, f"{p}root"),
                 step(f"{p}q00", "inventory", "SELECT", 2, 4, f"{p}it0"),
                 step(f"{p}it1", "inventory", "item", 11, 40, f"{p}root")]
        steps += [step(f"{p}q1{j}", "inventory", "SELECT", 12 + j * 5, 15 + j * 5, f"{p}it1")
                  for j in range(queries_in_second)]
        return steps

    c = compare(flow("A", loop("a", 3)), flow("B", loop("b", 1)))
    pairs = {p.a.key: p.b.key for p in c.pairs if p.a and p.b}
    assert pairs["aq00"] == "bq00" and pairs["aq10"] == "bq10"
    assert [lone.step.key for lone in c.only_in_a] == ["aq11", "aq12"]
    assert all(lone.path[-2] == "inventory item #2" for lone in c.only_in_a)


def test_a_step_only_in_b_is_reported_with_the_steps_below_it():
    shipping = [step("bship", "orders", "POST", 60, 90, "borders", kind="CLIENT", target="shipping"),
                step("bship-s", "shipping", "POST /shipments", 61, 89, "bship"),
                step("bship-db", "shipping", "INSERT", 62, 70, "bship-s")]
    c = compare(flow("A", checkout("a", 1)), flow("B", checkout("b", 1, extra=shipping)))
    [lone] = c.only_in_b
    assert lone.step.key == "bship" and lone.below == 2 and lone.side == "b"
    assert sum(1 for p in c.pairs if p.a is None) == 3


def test_time_differences_are_sorted_by_the_largest_self_time_change():
    a = flow("A", [step("ar", "api", "GET /x", 0, 300, self_ms=10),
                   step("adb", "api", "SELECT", 5, 290, "ar", self_ms=285),
                   step("ac", "api", "cache get", 291, 299, "ar", self_ms=8)])
    b = flow("B", [step("br", "api", "GET /x", 0, 60, self_ms=10),
                   step("bdb", "api", "SELECT", 5, 50, "br", self_ms=45),
                   step("bc", "api", "cache get", 51, 53, "br", self_ms=2)])
    c = compare(a, b)
    assert [t.path[-1] for t in c.timings] == ["api SELECT", "api cache get", "api GET /x"]
    assert c.timings[0].self_delta_ms == 240 and c.timings[0].delta_ms == 240
    assert c.timings[-1].self_delta_ms == 0 and c.timings[-1].delta_ms == 240


def test_critical_path_lists_steps_on_one_path_only_then_the_changes_of_shared_steps():
    a_steps = [step("ar", "api", "GET /x", 0, 100), step("adb", "api", "SELECT", 1, 90, "ar"),
               step("ac", "api", "cache get", 1, 5, "ar")]
    b_steps = [step("br", "api", "GET /x", 0, 40), step("bdb", "api", "SELECT", 1, 10, "br"),
               step("bc", "api", "cache get", 1, 35, "br")]
    a = flow("A", a_steps, critical=[("ar", 11), ("adb", 89)])
    b = flow("B", b_steps, critical=[("br", 6), ("bc", 34)])
    changes = {(c.path[-1], c.where): (c.a_ms, c.b_ms) for c in compare(a, b).critical_path}
    assert changes == {("api SELECT", "a"): (89, 0), ("api cache get", "b"): (0, 34),
                       ("api GET /x", "both"): (11, 6)}
    order = [c.where for c in compare(a, b).critical_path]
    assert order == ["a", "b", "both"]


def test_attributes_differ_except_ids_and_times():
    a = flow("A", [step("a", "payment", "charge card", 0, 10, attributes={
        "payment.amount": 335.77, "order.id": "o-1", "card.brand": "visa",
        "http.url": "http://payment/orders/o-3f2a9c81d0", "messaging.rabbitmq.message.delivery_tag": 175,
        "thread.id": 7, "retry.reason": "timeout"})])
    b = flow("B", [step("b", "payment", "charge card", 0, 10, attributes={
        "payment.amount": 55.75, "order.id": "o-2", "card.brand": "visa",
        "http.url": "http://payment/orders/o-77be01a3c2", "messaging.rabbitmq.message.delivery_tag": 61,
        "thread.id": 9})])
    changes = {(x.key, x.a, x.b) for x in compare(a, b).attributes}
    assert changes == {("payment.amount", "335.77", "55.75"), ("retry.reason", "timeout", None)}
    assert volatile("order.id") and volatile("http.request.start_time") and not volatile("http.route")


def test_errors_show_where_one_flow_failed_and_the_other_did_not():
    fail = dict(error=True, status="ERROR", status_message="card declined",
                exception="PaymentGatewayError: card declined", error_log="charge declined")
    a = flow("A", [step("ar", "orders", "POST /orders", 0, 50, error=True, status="ERROR"),
                   step("ac", "payment", "charge card", 5, 20, "ar", **fail)], status="failed")
    b = flow("B", [step("br", "orders", "POST /orders", 0, 50),
                   step("bc", "payment", "charge card", 5, 20, "br")])
    c = compare(a, b)
    assert [(e.path[-1], e.b) for e in c.errors] == [("orders POST /orders", None),
                                                      ("payment charge card", None)]
    assert c.errors[1].a.summary == "PaymentGatewayError: card declined; error log: charge declined"
    assert [e.a_starts for e in c.errors] == [False, True]     # the deepest failing step
    # the same failure in both, an id apart, is no difference
    same = flow("C", [step("cr", "orders", "POST /orders", 0, 50, error=True, status="ERROR"),
                      step("cc", "payment", "charge card", 5, 20, "cr", **fail)])
    assert compare(a, same).errors == ()


def test_text_markdown_and_json_name_the_failing_step():
    a = flow("A", checkout("a", 2, fail_last=True), status="failed")
    b = flow("B", checkout("b", 1))
    c = compare(a, b)
    printed = text(c, "a typical one")
    assert "B picked as a typical one" in printed
    assert "payment POST /charge" in printed.split("Errors that differ")[1].split("Steps only")[0]
    assert markdown(c).startswith("# Flow A compared with B")
    doc = as_dict(c)
    assert doc["only_in_a"][0]["step"] == "orders POST → payment/charge #2"
    failed = [(e["path"][-2:], e["in_b"]) for e in doc["errors"] if e["step"] == "payment POST /charge"]
    assert failed == [(["orders POST → payment/charge #1", "payment POST /charge"], True),
                      (["orders POST → payment/charge #2", "payment POST /charge"], False)]
