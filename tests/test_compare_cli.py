"""`tracekit compare A [B]` as a person runs it: on the demo shop's run through every fault
scenario, a failing checkout against the good one it picks names the failing step; on a small
made-up store, retries only in A, the typical flow it picks, and unknown ids exit 2."""

from __future__ import annotations

import json

import pytest

from conftest import tracekit
from demo_store import rows
from span_documents import request, span, write

RETRIED = f"{10:032x}"       # the trace of the checkout that retried its payment call


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    """Ten checkouts a second apart (41 ms typical); the tenth called payment three times,
    each call failing. Then a refund that failed, the only one."""
    folder = tmp_path_factory.mktemp("compare_cli")
    spans = []
    for i in range(1, 11):
        trace, root, failed = f"{i:032x}", f"{i:08x}00000001", i == 10
        spans.append(span(trace, root, "POST /checkout", start_ms=i * 1000,
                          duration_ms=40 + i % 3, error=failed))
        for n in range(3 if failed else 1):
            spans.append(span(trace, f"{i:08x}0000010{n}", "charge", kind=3, parent=root,
                              start_ms=i * 1000 + 1 + n * 12, duration_ms=10, error=failed,
                              attributes={"peer.service": "payment"}))
    spans.append(span(f"{11:032x}", f"{11:08x}00000001", "POST /refund", start_ms=11_000,
                      duration_ms=5, error=True))
    db = folder / "store.duckdb"
    tracekit("import", "--db", str(db), str(write(folder / "spans.jsonl", request("frontend", spans))))
    return str(db)


def test_retries_only_in_a_are_listed_with_their_repeat_number(store):
    printed = tracekit("compare", RETRIED, f"{1:032x}", "--db", store).stdout.decode()
    only_in_a = printed.split("Steps only in A")[1].split("Steps only in B")[0]
    assert "frontend charge → payment #2" in only_in_a and "frontend charge → payment #3" in only_in_a
    assert "picked" not in printed


def test_without_b_a_complete_flow_of_median_duration_is_picked_and_named(store):
    result = json.loads(tracekit("compare", RETRIED, "--db", store, "--json").stdout)
    assert result["b"]["status"] == "complete" and result["b"]["duration_ms"] == pytest.approx(41.0)
    assert "nearest the median 41.0 ms of 9" in result["b_picked"]
    printed = tracekit("compare", RETRIED, "--db", store).stdout.decode()
    assert f"B: flow {result['b']['flow_id']}" in printed and "B picked as a complete flow" in printed


def test_a_flow_without_a_good_one_of_its_kind_exits_1_asking_for_b(store):
    result = tracekit("compare", f"{11:032x}", "--db", store, check=False)
    assert result.returncode == 1
    assert b"no complete flow of the type or workflow" in result.stderr
    assert b"`tracekit compare A B`" in result.stderr


def test_markdown_has_a_section_per_difference(store):
    printed = tracekit("compare", RETRIED, "--db", store, "--format", "markdown").stdout.decode()
    assert printed.startswith("# Flow ")
    assert "## Errors that differ" in printed and "## Critical path" in printed


@pytest.mark.parametrize("ids", [["nope"], [RETRIED, "nope"]])
def test_an_unknown_flow_id_exits_2_saying_how_to_list_them(store, ids):
    result = tracekit("compare", *ids, "--db", store, check=False)
    assert result.returncode == 2
    assert b"no flow matches 'nope'" in result.stderr and b"`tracekit flows` lists them" in result.stderr


def test_failing_checkout_of_a_fault_scenario_against_the_picked_good_one_names_the_failing_step(
        rabbitmq_demo_run):
    db = str(rabbitmq_demo_run["db"])
    [fault] = [s for s in rabbitmq_demo_run["truth"]["scenarios"] if s["scenario"] == "poison-message"]
    [failed] = rows(db, """
        SELECT flow_id FROM flows WHERE status = 'failed' AND type_name LIKE '%checkout%'
          AND start_time >= ?::TIMESTAMP AND start_time < ?::TIMESTAMP
        ORDER BY start_time LIMIT 1""", [fault["started_at"], fault["ended_at"]])
    result = tracekit("compare", failed["flow_id"], "--db", db)
    printed = result.stdout.decode()
    assert "B picked as a complete flow" in printed
    errors = printed.split("Errors that differ")[1].split("Steps only in A")[0]
    assert f"{fault['service']} {fault['operation']}" in errors     # fraud-detection process order.placed
    assert "B: no error" in errors
