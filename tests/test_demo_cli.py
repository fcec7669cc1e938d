"""The demo's command line: schedules as people write them, and errors that say what to do."""

from __future__ import annotations

import pytest

from conftest import tracekit
from tracekit.demo.faults import FAULT_SCENARIOS
from tracekit.demo.traffic import Step, default_schedule, parse_duration, parse_schedule, tour


def test_schedule_reads_scenarios_with_their_lengths():
    assert parse_schedule("healthy:2m, payment-failure:90s,healthy:0.5h") == [
        Step("healthy", 120), Step("payment-failure", 90), Step("healthy", 1800)]
    assert parse_duration("250ms") == 0.25 and parse_duration("30") == 30


@pytest.mark.parametrize("spec, message", [
    ("healthy", "needs a length"),
    ("payment-failur:1m", "unknown scenario 'payment-failur'"),
    ("healthy:soon", "bad duration 'soon'"),
    ("", "the schedule is empty"),
])
def test_bad_schedules_are_refused_with_the_fix(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_schedule(spec)


def test_one_scenario_runs_between_healthy_thirds():
    steps = default_schedule(60, "consumer-down")
    assert [s.scenario for s in steps] == ["healthy", "consumer-down", "healthy"]
    assert sum(s.seconds for s in steps) == pytest.approx(60)


def test_without_a_scenario_short_runs_alternate_faults_with_healthy_stretches():
    steps = default_schedule(30)
    assert sum(s.seconds for s in steps) == pytest.approx(30)
    assert [s.scenario for s in steps[::2]] == ["healthy"] * len(steps[::2])
    assert len({s.scenario for s in steps[1::2]}) >= 2


def test_an_endless_run_visits_every_fault():
    first_round = tour(60, rounds=1)
    assert {s.scenario for s in first_round} == {"healthy", *FAULT_SCENARIOS}
    assert len(tour(60, rounds=3)) == 3 * len(first_round)


@pytest.mark.parametrize("args, code, message", [
    (["demo", "--schedule", "healthy:1m,meltdown:1m"], 2, "unknown scenario 'meltdown'"),
    (["demo", "--rate", "0"], 2, "--rate is in flows per second"),
    (["demo", "--duration", "a while"], 2, "bad duration"),
    (["demo", "service", "payment"], 1, "give --broker amqp://"),
    (["demo", "service", "warehouse"], 1, "unknown service 'warehouse'"),
    (["demo", "--broker", "kafka://localhost:9092", "--duration", "1s"], 2,
     "unsupported broker URL"),
])
def test_demo_refuses_bad_options_with_advice(tmp_path, args, code, message):
    result = tracekit(*args, "--db", str(tmp_path / "x.duckdb"), check=False) \
        if args[1] != "service" else tracekit(*args, check=False)
    assert result.returncode == code, result.stderr
    assert message in result.stderr.decode()


def test_an_unreachable_broker_is_named_without_its_password(tmp_path):
    from tracekit.demo.services.base import closed_port

    url = f"amqp://guest:s3cret@127.0.0.1:{closed_port()}/"
    result = tracekit("demo", "--db", str(tmp_path / "x.duckdb"), "--duration", "5s",
                      "--broker", url, check=False)
    stderr = result.stderr.decode()
    assert result.returncode == 1, stderr
    assert "cannot reach RabbitMQ at amqp://guest:***@127.0.0.1:" in stderr
    assert "s3cret" not in stderr and "Traceback" not in stderr
