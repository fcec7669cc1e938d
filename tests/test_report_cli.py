"""`tracekit report` and `tracekit causes` as a person or a script runs them: the windows they
take, what they say when a window holds nothing, and how their exit codes tell."""

from __future__ import annotations

import json

import pytest

from conftest import tracekit
from span_documents import request, span, when, write


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    """Twenty checkouts a second apart, the last ten failing in their payment call."""
    folder = tmp_path_factory.mktemp("report_cli")
    spans = []
    for i in range(1, 21):
        trace, failed = f"{i:032x}", i > 10
        spans += [span(trace, f"{i:08x}00000001", "POST /checkout", start_ms=i * 1000,
                       duration_ms=50, error=failed),
                  span(trace, f"{i:08x}00000002", "charge", kind=3, parent=f"{i:08x}00000001",
                       start_ms=i * 1000 + 5, duration_ms=30, error=failed,
                       attributes={"peer.service": "payment"})]
    db = folder / "store.duckdb"
    tracekit("import", "--db", str(db), str(write(folder / "spans.jsonl", request("frontend", spans))))
    return str(db)


@pytest.mark.parametrize("since", ["1d", "2 days", "1day", "36hours"])
@pytest.mark.parametrize("command", ["report", "causes"])
def test_report_and_causes_take_a_window_in_days(store, command, since):
    result = tracekit(command, "--db", store, "--since", since, check=False)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout


def test_a_window_in_an_unknown_unit_is_a_usage_error_naming_the_units(store):
    result = tracekit("report", "--db", store, "--since", "1 fortnight", check=False)
    assert result.returncode == 2
    assert b"bad duration '1 fortnight': use e.g. 90s, 15m, 12h, 7d" in result.stderr


@pytest.mark.parametrize("fmt", ["md", "html", "json"])
def test_a_report_over_a_window_without_data_says_so_and_exits_3(store, fmt, tmp_path):
    window = ["--from", "2020-01-01T00:00:00", "--to", "2020-01-01T01:00:00"]
    result = tracekit("report", "--db", store, *window, "--format", fmt, check=False)
    assert result.returncode == 3, result.stderr.decode()
    text = result.stdout.decode()
    if fmt == "json":
        answer = json.loads(text)
        assert answer["no_data"] is True and answer["incident"] is False
        text = answer["title"] + "\n" + answer["summary"]
    assert "No data in 2020-01-01 00:00:00.000 – 01:00:00.000 UTC" in text
    assert "No incident found" not in text
    assert "no flow started in the window" in text
    written = tmp_path / f"report.{fmt}"
    assert tracekit("report", "--db", store, *window, "-o", str(written), check=False).returncode == 3
    assert "No data in" in written.read_text()


def test_a_report_over_a_window_with_flows_exits_0(store):
    result = tracekit("report", "--db", store, "--format", "json", check=False)
    assert result.returncode == 0
    assert json.loads(result.stdout)["no_data"] is False


def test_report_help_documents_the_exit_codes():
    help_text = " ".join(tracekit("report", "--help").stdout.decode().split())
    assert "3 no flow started in the window" in help_text


def test_a_report_says_what_its_data_lacks_in_its_limits(tmp_path):
    """Spans of no named service and error logs with no trace context cannot be put on an
    operation: the report's limits count them, and a store without them lists neither."""
    from span_documents import log, log_request

    spans, unnamed = [], []
    for i in range(1, 21):
        trace = f"{i:032x}"
        spans.append(span(trace, f"{i:08x}00000001", "POST /checkout", start_ms=i * 1000,
                          duration_ms=50, error=i > 10))
        unnamed.append(span(trace, f"{i:08x}00000002", "charge", kind=3, parent=f"{i:08x}00000001",
                            start_ms=i * 1000 + 5, duration_ms=30, error=i > 10))
    no_service = {"resourceSpans": [{"resource": {"attributes": []},
                                     "scopeSpans": [{"scope": {"name": "test"}, "spans": unnamed}]}]}
    untraced = log_request("frontend", [log(None, None, "payment gateway timed out", severity=17,
                                           at_ms=15_000)])
    db = tmp_path / "store.duckdb"
    tracekit("import", "--db", str(db), str(write(tmp_path / "spans.jsonl", request("frontend", spans),
                                                  no_service, untraced)))
    report = json.loads(tracekit("report", "--db", str(db), "--from", when(11), "--to", when(21),
                                 "--baseline-from", when(1), "--baseline-to", when(11),
                                 "--format", "json").stdout)
    limits = {limit["kind"]: limit["text"] for limit in report["limits"]}
    assert limits["spans_without_service"].startswith("10 spans of no named service")
    assert limits["logs_without_trace_context"].startswith("1 warning and error log")
    causes = json.loads(tracekit("causes", "--db", str(db), "--from", when(11), "--to", when(21),
                                 "--baseline-from", when(1), "--baseline-to", when(11),
                                 "--json").stdout)     # the ranking says the same
    assert {limits["spans_without_service"], limits["logs_without_trace_context"]} <= set(causes["limits"])

    (tmp_path / "clean").mkdir()
    clean = tmp_path / "clean" / "store.duckdb"
    tracekit("import", "--db", str(clean), str(write(tmp_path / "clean" / "spans.jsonl",
                                                     request("frontend", spans + unnamed))))
    report = json.loads(tracekit("report", "--db", str(clean), "--from", when(11), "--to", when(21),
                                 "--baseline-from", when(1), "--baseline-to", when(11),
                                 "--format", "json").stdout)
    kinds = {limit["kind"] for limit in report["limits"]}
    assert not kinds & {"spans_without_service", "logs_without_trace_context"}


def test_hops_received_before_they_were_sent_are_named_as_clocks_that_disagree(tmp_path):
    """Consumers on a host whose clock is five minutes behind the producers': each message is
    received 'before' it was sent. The flows are still stitched by message id; the report's
    limits say their clocks disagree."""
    producers, consumers = [], []
    for i in range(1, 11):
        message = {"messaging.message.id": f"m-{i}", "messaging.destination.name": "orders.placed",
                   "messaging.system": "rabbitmq"}
        producers.append(span(f"{i:032x}", f"{i:08x}00000001", "orders.placed publish", kind=4,
                              start_ms=i * 1000, duration_ms=5, attributes=message))
        consumers.append(span(f"{i + 100:032x}", f"{i + 100:08x}00000001", "orders.placed process",
                              kind=5, start_ms=i * 1000 + 20 - 300_000, duration_ms=30,
                              attributes=message))
    db = tmp_path / "store.duckdb"
    tracekit("import", "--db", str(db), str(write(tmp_path / "spans.jsonl", request("orders", producers),
                                                  request("shipping", consumers))))
    flows = json.loads(tracekit("sql", "--db", str(db), "--format", "json",
                                "SELECT count(*) AS n, sum(traces) AS traces FROM flows").stdout)
    assert flows == [{"n": 10, "traces": 20}]       # each message's two traces, one flow
    report = json.loads(tracekit("report", "--db", str(db), "--from", when(-400), "--to", when(60),
                                 "--format", "json").stdout)
    limits = {limit["kind"]: limit["text"] for limit in report["limits"]}
    assert limits["hops_received_before_sent"].startswith("10 hops through a broker received before")
