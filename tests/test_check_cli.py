"""`tracekit check` as a CI job runs it after an end-to-end suite: the demo's example check file
passes on a healthy stretch of the demo and fails the right checks under its faults, an edge
baseline from a healthy stretch catches a new dependency, JUnit XML carries the failures, and a
bad check file or an empty window exits with its own code."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest

import tracekit
from conftest import tracekit as run_tracekit
from demo_store import rows
from tracekit.checks import evaluate, spec

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "examples" / "demo-checks.yaml"


def stretch(run, name: str) -> dict:
    """The demo run's first stretch of scenario `name`, from its ground truth (the first
    healthy one is before any fault)."""
    return [s for s in run["truth"]["scenarios"] if s["scenario"] == name][0]


def window(run, name: str) -> list[str]:
    """--from/--to of that stretch."""
    return ["--from", stretch(run, name)["started_at"], "--to", stretch(run, name)["ended_at"]]


def check(run, *args: str):
    return run_tracekit("check", "--db", str(run["db"]), *args, check=False)


def test_the_example_checks_pass_on_a_healthy_stretch_of_the_demo(rabbitmq_demo_run):
    result = check(rabbitmq_demo_run, str(EXAMPLE), *window(rabbitmq_demo_run, "healthy"))
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    lines = result.stdout.decode().splitlines()
    names = [c.name for c in spec.read(EXAMPLE).checks]
    assert [line.split(":")[0] for line in lines[:-1]] == [f"✓ {name}" for name in names]
    assert lines[-1] == f"{len(names)} of {len(names)} checks passed"
    assert "p95 duration" in result.stdout.decode() and "≤ 2,500 ms" in result.stdout.decode()


@pytest.mark.parametrize("scenario, failing, figure", [
    ("payment-failure", {"every order completes", "payment never fails"},
     ("payment never fails", r"^[\d,]+ of [\d,]+ spans failed \(> 0 allowed\)$")),
    ("slow-inventory-db", {"checkout latency", "order latency"},
     ("order latency", r"p50 duration [\d,]+ ms > 1,000 ms")),
    ("consumer-down", {"no message waits a second in the broker"},
     ("no message waits a second in the broker", r"^max wait [\d,]+ ms > 1,000 ms$")),
    ("poison-message", {"fraud-detection handles every order it is sent", "no new dependency"},
     ("no new dependency", r"^not in the baseline: .*broker:order\.placed → notification")),
])
def test_a_fault_fails_the_checks_it_breaks_with_flows_to_look_at(rabbitmq_demo_run, tmp_path,
                                                                   scenario, failing, figure):
    junit = tmp_path / "checks.xml"
    result = check(rabbitmq_demo_run, str(EXAMPLE), *window(rabbitmq_demo_run, scenario),
                   "--json", "--junit", str(junit))
    assert result.returncode == 1, result.stderr.decode()
    answer = json.loads(result.stdout)
    failed = {c["name"]: c for c in answer["checks"] if not c["passed"]}
    assert failing <= failed.keys(), answer
    flows = {r["flow_id"] for r in rows(rabbitmq_demo_run["db"], "SELECT flow_id FROM flow_rows")}
    for name in failing:
        assert failed[name]["offenders"], name
        assert {o["flow_id"] for o in failed[name]["offenders"]} <= flows  # `tracekit flow ID` finds them
        for outcome in failed[name]["outcomes"]:
            if not outcome["passed"]:
                assert outcome["measured"] and outcome["bound"] is not None

    suite = ET.parse(junit).getroot().find("testsuite")
    assert int(suite.get("tests")) == len(answer["checks"])
    assert int(suite.get("failures")) == len(failed)
    failures = {case.get("name"): case.find("failure") for case in suite.iter("testcase")
                if case.find("failure") is not None}
    assert failures.keys() == failed.keys()
    for name in failing:
        message = failures[name].get("message")
        assert message == "; ".join(o["text"] for o in failed[name]["outcomes"] if not o["passed"])
        assert "tracekit flow " in failures[name].text
    name, pattern = figure          # the figure measured against its bound
    assert re.search(pattern, failures[name].get("message")), failures[name].get("message")


def test_an_edge_baseline_of_a_healthy_stretch_catches_a_new_dependency(rabbitmq_demo_run, tmp_path):
    run = rabbitmq_demo_run
    written = check(run, "--write-baseline", str(tmp_path / "edges.json"), *window(run, "healthy"))
    assert written.returncode == 0, written.stderr.decode()
    assert b"of 3 workflows" in written.stderr
    checks = tmp_path / "checks.yaml"
    checks.write_text("baseline: edges.json\n"
                      "checks:\n"
                      "  - name: checkouts call nothing new\n"
                      "    flows: {flow_type: shopper checkout}\n"
                      "    expect: {edges: subset}\n"
                      "  - name: every workflow takes the baseline's edges\n"
                      "    flows: all\n"
                      "    expect: {edges: equal}\n")
    same = check(run, str(checks), *window(run, "healthy"))
    assert same.returncode == 0, same.stdout.decode()

    poisoned = check(run, str(checks), *window(run, "poison-message"))
    assert poisoned.returncode == 1
    out = poisoned.stdout.decode()
    # Dead-lettered order.placed messages reach the operators' alert in notification.
    assert "✗ checkouts call nothing new: not in the baseline: broker:order.placed → notification" in out
    assert "    look at: tracekit flow " in out


def test_a_window_without_flows_exits_3_and_junit_says_why(rabbitmq_demo_run, tmp_path):
    junit = tmp_path / "checks.xml"
    result = check(rabbitmq_demo_run, str(EXAMPLE), "--from", "2020-01-01T00:00:00",
                   "--to", "2020-01-01T01:00:00", "--junit", str(junit))
    assert result.returncode == 3
    assert b"no data in 2020-01-01 00:00:00.000" in result.stderr
    suite = ET.parse(junit).getroot().find("testsuite")
    errors = [case.find("error") for case in suite.iter("testcase")]
    assert len(errors) == len(spec.read(EXAMPLE).checks) and all(e is not None for e in errors)
    assert suite.get("errors") == str(len(errors))


def test_a_check_that_selects_nothing_fails_unless_it_expects_nothing(rabbitmq_demo_run, tmp_path):
    text = """
checks:
  - name: a misspelt service
    spans: {service: paymnet}
    expect: {errors: 0}
  - name: no breaker fails fast while healthy
    spans: {name: circuit-breaker payment}
    expect: {count: 0}
  - name: a flow type that never ran
    flows: {flow_type: shopper refund}
    expect: {status: complete}
"""
    checks = spec.parse(text, tmp_path / "checks.yaml").checks
    healthy = stretch(rabbitmq_demo_run, "healthy")
    bounds = (pd.Timestamp(healthy["started_at"]).value, pd.Timestamp(healthy["ended_at"]).value)
    with tracekit.open(rabbitmq_demo_run["db"]) as store:
        results = {r.check.name: r for r in evaluate.run(store, checks, bounds)}
    misspelt = results["a misspelt service"]
    assert not misspelt.passed
    assert misspelt.outcomes[0].text == ("0 spans selected, expected ≥ 1: check the selector "
                                         "(names are exact), or the window")
    assert results["no breaker fails fast while healthy"].passed
    assert "no flow type matches 'shopper refund'" in results["a flow type that never ran"].outcomes[0].text


BAD = [
    ("checks:\n  - name: x\n    flows: {flow_type: a\n",
     ":4: not valid YAML: expected ',' or '}', but got '<stream end>', while parsing a flow "
     "mapping on line 3"),
    ("checks:\n  - name: x\n\tflows: all\n", ":3: not valid YAML: found character '\\t'"),
    ("", ": the file is empty; it needs `checks:`"),
    ("check:\n  - name: x\n", ":1: unknown key 'check' in the file; expected one of checks, baseline"),
    ("checks:\n  - flows: all\n    expect: {status: complete}\n", ":2: a check needs a `name:`"),
    ("checks:\n  - name: x\n    flows: all\n    spans: all\n    expect: {errors: 0}\n",
     ":2: check 'x' needs exactly one of `flows:`, `spans:` or `messages:`"),
    ("checks:\n  - name: x\n    flows: all\n", ":2: check 'x' needs `expect:`"),
    ("checks:\n  - name: x\n    flows: all\n    expect:\n      status: finished\n",
     ":5: `status` 'finished' is not a flow status; expected complete or degraded"),
    ("checks:\n  - name: x\n    flows: all\n    expect:\n      duration: {p95: 250}\n",
     ":5: `duration.p95` must be a duration with its unit, e.g. 250ms, 2s"),
    ("checks:\n  - name: x\n    flows: all\n    expect:\n      errors: 0\n",
     ":5: unknown key 'errors' in `expect` of flows; expected one of status, max_failure_share"),
    ("checks:\n  - name: x\n    flows: all\n    expect: {max_failure_share: 150%}\n",
     ":4: `max_failure_share` must be a share of the flows: 5% or 0.05"),
    ("checks:\n  - name: x\n    spans: {kind: server, kind: client}\n    expect: {errors: 0}\n",
     ":3: 'kind' appears twice in `spans` (the selector)"),
    ("checks:\n  - name: x\n    spans: {kind: sever}\n    expect: {errors: 0}\n",
     ":3: `kind` is 'SEVER'; expected one of INTERNAL, SERVER"),
    ("checks:\n  - name: x\n    messages: all\n    expect: {count: {min: 3, max: 1}}\n",
     ":4: `count` has max 1 below min 3"),
    ("checks:\n  - name: x\n    flows: all\n    expect: {edges: same}\n",
     ":4: `edges` is 'same'; expected `subset`"),
    ("checks:\n  - name: x\n    messages: all\n    expect: {count: 1}\n"
     "  - name: x\n    messages: all\n    expect: {count: 2}\n",
     ":5: another check is named 'x' (line 2)"),
]


@pytest.mark.parametrize("text, message", BAD)
def test_a_mistake_in_a_check_file_is_named_by_line_and_key(text, message):
    with pytest.raises(spec.CheckFileError) as raised:
        spec.parse(text, Path("checks.yaml"))
    assert str(raised.value).startswith(f"checks.yaml{message}")
    assert raised.value.exit_code == 2


def test_a_bad_check_file_exits_2_before_the_store_is_opened(tmp_path):
    bad = tmp_path / "checks.yaml"
    bad.write_text("checks:\n  - name: slow\n    flows: all\n    expect:\n      duration: {p95: fast}\n")
    result = run_tracekit("check", str(bad), "--db", str(tmp_path / "none.duckdb"), check=False)
    assert result.returncode == 2
    assert result.stderr.decode().strip() == (
        f"tracekit: {bad}:5: `duration.p95` must be a duration with its unit, e.g. 250ms, 2s, 1m")


def test_check_help_documents_the_exit_codes():
    help_text = " ".join(run_tracekit("check", "--help").stdout.decode().split())
    assert "0 every check passed, 1 a check failed" in help_text
    assert "3 no flow started in the window" in help_text


def test_edge_checks_without_a_baseline_exit_2(tmp_path):
    checks = tmp_path / "checks.yaml"
    checks.write_text("checks:\n  - name: edges\n    flows: all\n    expect: {edges: subset}\n")
    result = run_tracekit("check", str(checks), "--db", str(tmp_path / "none.duckdb"), check=False)
    assert result.returncode == 2
    assert b"`edges:` checks compare with a baseline" in result.stderr


def test_a_check_file_reads_shares_statuses_and_durations_as_written():
    [check] = spec.parse("checks:\n  - name: c\n    flows: {flow_type: checkout}\n    expect:\n"
                         "      status: [complete, degraded]\n      max_failure_share: 5%\n"
                         "      duration: {p50: 250ms, p99: 2s}\n", Path("c.yaml")).checks
    assert check.statuses == ("complete", "degraded")
    assert check.max_failure_share == pytest.approx(0.05)
    assert check.percentiles_ms == (("p50", 250.0), ("p99", 2000.0))
    assert (check.count_min, check.count_max, check.line) == (1, None, 2)
    [share_only] = spec.parse("checks:\n  - name: c\n    flows: all\n    expect:\n"
                              "      max_failure_share: 0.1\n", Path("c.yaml")).checks
    assert "failed" not in share_only.statuses and "incomplete" not in share_only.statuses


def test_checks_run_through_the_collector_an_end_to_end_suite_exported_to(collector, tmp_path):
    """The CI job's order: the suite exports to a running `tracekit collect`, then the checks
    read the store through it (the collector holds the file)."""
    import urllib.request

    from span_documents import request, span

    spans = []
    for i in range(1, 11):
        trace, failed = f"{i:032x}", i > 8
        spans += [span(trace, f"{i:08x}00000001", "POST /checkout", start_ms=i * 1000,
                       duration_ms=50, error=failed),
                  span(trace, f"{i:08x}00000002", "charge", kind=3, parent=f"{i:08x}00000001",
                       start_ms=i * 1000 + 5, duration_ms=30, error=failed,
                       attributes={"peer.service": "payment"})]
    with urllib.request.urlopen(urllib.request.Request(
            f"http://{collector.http}/v1/traces", data=json.dumps(request("frontend", spans)).encode(),
            headers={"Content-Type": "application/json"}), timeout=30) as response:
        assert response.status == 200
    checks = tmp_path / "checks.yaml"
    checks.write_text("checks:\n"
                      "  - name: ten checkouts\n    flows: all\n    expect: {count: 10}\n"
                      "  - name: most checkouts complete\n    flows: all\n"
                      "    expect: {status: complete, max_failure_share: 25%}\n"
                      "  - name: charges succeed\n    spans: {service: frontend, name: charge, kind: CLIENT}\n"
                      "    expect: {errors: 0, attributes: {peer.service: payment}}\n")
    result = run_tracekit("check", str(checks), "--db", str(collector.db), check=False)
    assert result.returncode == 1, result.stderr.decode()
    assert result.stdout.decode().splitlines() == [
        "✓ ten checkouts: 10 flows selected",
        "✓ most checkouts complete: 10 flows selected; not complete: 2 of 10 flows (20.0%: failed 2) "
        "≤ 25% allowed",
        "✗ charges succeed: 2 of 10 spans failed (> 0 allowed)",
        f"    look at: tracekit flow {9:032x}, tracekit flow {10:032x}  e.g. frontend charge failed",
        "2 of 3 checks passed, 1 failed"]
