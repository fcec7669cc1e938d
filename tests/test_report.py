"""Incident reports (`tracekit report`) on the demo shop's run through every fault scenario
(RabbitMQ), scored against the ground truth the demo recorded: the injected operation comes
first, the affected flow types are listed, a healthy window says so, the Mermaid parses with
Mermaid's own parser, the HTML fetches nothing, every printed query gives the figure quoted,
and masked attributes stay masked."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

import tracekit
from conftest import sql, start_collector
from conftest import tracekit as cli
from tracekit.demo.faults import FAULT_SCENARIOS
from tracekit.report import build, render
from tracekit.report.mermaid import check, label
from tracekit.report.window import detect

MERMAID_DIR = Path(__file__).parent / "mermaid"


def ns(value) -> int:
    return int(pd.Timestamp(value).value)


def scenario_window(truth, name, index=0) -> tuple[int, int]:
    found = [s for s in truth["scenarios"] if s["scenario"] == name][index]
    return ns(found["started_at"]), ns(found["ended_at"])


@pytest.fixture(scope="module")
def demo(rabbitmq_demo_run):
    return rabbitmq_demo_run


@pytest.fixture(scope="module")
def reports(demo):
    """One report per fault scenario (its window, the first healthy stretch as baseline, as
    the analyzer's own test scores `causes`), and one of the middle of a healthy stretch."""
    truth = demo["truth"]
    baseline = scenario_window(truth, "healthy")
    out = {}
    with tracekit.open(demo["db"]) as store:
        for name in FAULT_SCENARIOS:
            out[name] = build(store, window=scenario_window(truth, name), baseline=baseline)
        start, end = scenario_window(truth, "healthy")
        middle = (start + end) // 2
        out["healthy"] = build(store, window=(middle, end), baseline=(start, middle))
    return out


def test_report_names_the_injected_operation_as_top_root_cause(demo, reports):
    truth = {s["scenario"]: (s["service"], s["operation"]) for s in demo["truth"]["scenarios"]}
    answers = {}
    for name in FAULT_SCENARIOS:
        report = reports[name]
        top = report.suspects[0] if report.suspects else None
        answers[name] = (top.service, top.operation) if top else None
        if top:
            assert report.title.startswith(f"{top.service} {top.operation}")
    answers["healthy"] = "incident" if reports["healthy"].incident else None
    hits = sum(answers[name] == truth[name] for name in FAULT_SCENARIOS)
    hits += answers["healthy"] is None
    print(f"report: top root cause right for {hits} of {len(FAULT_SCENARIOS) + 1}: {answers}")
    assert hits >= 9, answers


def test_report_lists_the_flow_types_the_fault_affected(demo, reports):
    """The flows that carried an injected fault belong to types the report lists as affected."""
    with tracekit.open(demo["db"]) as store:
        flows = store.df("SELECT business_key, type_id, start_time FROM flows")
    faults = pd.DataFrame(demo["truth"]["faults"])
    listed = {}
    for name in FAULT_SCENARIOS:
        start, end = scenario_window(demo["truth"], name)
        hit = faults[faults["scenario"] == name]["order_id"]
        mine = flows[flows["business_key"].isin(set(hit))
                     & (flows["start_time"].astype("int64") >= start)
                     & (flows["start_time"].astype("int64") < end)]
        affected = {t.type_id for t in reports[name].impact.affected_types}
        listed[name] = sorted(affected)
        assert affected, f"{name}: no affected flow type listed"
        if len(mine):       # most of the faulted flows are of a type the report lists
            assert mine["type_id"].isin(affected).mean() >= 0.5, (name, mine["type_id"].value_counts())
        assert any(t.name in render(reports[name], "md") for t in reports[name].impact.affected_types)


def test_a_healthy_window_says_no_incident_in_every_format(demo, reports):
    report = reports["healthy"]
    assert not report.incident and not report.suspects
    assert report.title.startswith("No incident found in")
    assert render(report, "md").startswith("# No incident found in")
    assert json.loads(render(report, "json"))["incident"] is False
    assert "No incident found in" in render(report, "html")
    start, end = scenario_window(demo["truth"], "healthy")
    middle = (start + end) // 2
    for fmt in ("md", "json", "html"):
        result = cli("report", "--db", str(demo["db"]), "--from", str(pd.Timestamp(middle)),
                     "--to", str(pd.Timestamp(end)), "--baseline-from", str(pd.Timestamp(start)),
                     "--format", fmt)
        assert result.returncode == 0 and b"No incident found in" in result.stdout


def test_incident_window_is_found_from_shifts_when_none_is_given(demo):
    """Searching a range of healthy – fault – healthy finds a window over the fault."""
    truth = demo["truth"]["scenarios"]
    found = {}
    with tracekit.open(demo["db"]) as store:
        for name in FAULT_SCENARIOS:
            i = next(i for i, s in enumerate(truth) if s["scenario"] == name)
            fault = (ns(truth[i]["started_at"]), ns(truth[i]["ended_at"]))
            search = (ns(truth[i - 1]["started_at"]), ns(truth[i + 1]["ended_at"]))
            window = detect(store, search).window
            assert window is not None, name
            overlap = min(window.end_ns, fault[1]) - max(window.start_ns, fault[0])
            found[name] = (round(overlap / (fault[1] - fault[0]), 2),
                           round((window.length_ns - (fault[1] - fault[0])) / 1e9, 1))
    print(f"detected windows (share of the fault inside, seconds more than it lasted): {found}")
    # Most of the fault is inside, and not much else.
    # A 4 s fault is a weak signal for some scenarios (poison-message fails 30% of one
    # consumer's messages): like the ranking (9 of 10), at most one window may fall short.
    good = [name for name, (share, extra) in found.items() if share >= 0.5 and extra <= 4]
    assert len(good) >= len(found) - 1, found


def test_report_command_finds_the_window_itself(demo):
    """With no window, `tracekit report` looks over the data's last --since and reports."""
    result = cli("report", "--db", str(demo["db"]), "--since", "1h", "--format", "json")
    report = json.loads(result.stdout)
    assert report["window"]["how"] == "detected" and report["incident"]
    assert report["suspects"] and report["impact"]["affected_types"]


def _mermaid_parser():
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        message = f"{'node' if not node else 'npm'} is not on PATH: Mermaid's parser cannot run"
        if os.environ.get("CI"):
            pytest.fail(message + "; CI needs Node.js and npm")
        pytest.skip(message)
    installed = MERMAID_DIR / "node_modules" / ".package-lock.json"
    lock = MERMAID_DIR / "package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
        result = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=MERMAID_DIR,
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, f"npm ci in tests/mermaid: {result.stderr[-2000:]}"

    def parse(diagrams: list[str]) -> list[dict]:
        result = subprocess.run([node, str(MERMAID_DIR / "parse.mjs")], input=json.dumps(diagrams),
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)
    return parse


NASTY = ["a;b", "#1 fan", "x: y", "<script>", "a -> b", "end", "50% & more", "\"quoted\"",
         "{brace}", "line\nbreak", "semi;colon#hash<lt>gt:colon"]


def test_mermaid_diagrams_parse_with_mermaid_and_the_strict_check(reports):
    exemplars = [r.exemplar for r in reports.values() if r.exemplar is not None]
    assert len(exemplars) >= len(FAULT_SCENARIOS) - 1
    diagrams = [e.mermaid for e in exemplars]
    for exemplar in exemplars:
        assert check(exemplar.mermaid) == [], exemplar.mermaid
        assert "->>" in exemplar.mermaid                       # the calls
        if exemplar.origin:                                    # and where it failed
            assert "Note over" in exemplar.mermaid and "failure starts here" in exemplar.mermaid
        # Each broker first receives a message, then delivers it.
        lines = [line.strip() for line in exemplar.mermaid.splitlines()]
        brokers = [line.split()[1] for line in lines if line.startswith("participant") and " as broker " in line]
        for broker in brokers:
            first = next(line for line in lines if not line.startswith("participant") and broker + ":" in line
                         or line.startswith(broker + "-"))
            assert first.endswith(f"-){broker}: " + first.split(": ", 1)[1]) and ": publish " in first, exemplar.mermaid
    assert any("-)" in text for text in diagrams)             # messages through the broker
    escaped = "sequenceDiagram\n" + "".join(f"    participant p{i} as {label(t)}\n" for i, t in enumerate(NASTY))
    escaped += "".join(f"    p{i}->>p0: {label(t)}\n    Note over p{i}: {label(t)}\n" for i, t in enumerate(NASTY))
    assert check(escaped) == []
    parse = _mermaid_parser()
    results = parse(diagrams + [escaped])
    assert all(r["ok"] and r["type"] == "sequence" for r in results), results
    # The checks can fail: a statement Mermaid refuses is refused by both.
    broken = "sequenceDiagram\n    participant p0 as a\n    p0->>: no target\n"
    assert check(broken) and not parse([broken])[0]["ok"]


class _References(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs, self.tags, self.ids = [], set(), set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.ids.update(value for name, value in attrs if name == "id")
        for name, value in attrs:
            if name in ("src", "href", "srcset", "action", "poster", "data", "xlink:href") and value:
                self.refs.append((tag, name, value))


def test_html_report_is_self_contained_with_charts(reports):
    for name in ("payment-failure", "slow-inventory-db", "healthy"):
        html = render(reports[name], "html")
        parser = _References()
        parser.feed(html)
        external = [r for r in parser.refs if r[2].startswith(("http:", "https:", "//"))]
        assert external == [], external
        # Every link points inside the file, at a query that is there.
        assert parser.refs and all(v.startswith("#") and v[1:] in parser.ids for _, _, v in parser.refs)
        assert "script" not in parser.tags and "link" not in parser.tags
        assert "@import" not in html and "url(" not in html
        assert "svg" in parser.tags and "polyline" in parser.tags    # error rate and p95 charts
    assert html.count("<svg") >= 2
    slow = render(reports["slow-inventory-db"], "html")
    assert 'aria-label="critical path, exemplar against healthy"' in slow and "rect" in _tags(slow)
    assert 'aria-label="sequence diagram"' in slow               # drawn, not only Mermaid text


def _tags(html: str) -> set[str]:
    parser = _References()
    parser.feed(html)
    return parser.tags


def _same(quoted, answered) -> bool:
    if isinstance(quoted, float) or isinstance(answered, float):
        return (quoted is None and answered is None) or (
            quoted is not None and answered is not None
            and math.isclose(float(quoted), float(answered), rel_tol=1e-9, abs_tol=1e-9))
    if isinstance(quoted, list):
        return isinstance(answered, list) and len(quoted) == len(answered) and all(
            _same(q, a) for q, a in zip(quoted, answered))
    if isinstance(quoted, dict):
        return isinstance(answered, dict) and quoted.keys() == answered.keys() and all(
            _same(quoted[k], answered[k]) for k in quoted)
    if isinstance(quoted, str) and isinstance(answered, str) and quoted != answered:
        try:
            return pd.Timestamp(quoted) == pd.Timestamp(answered)
        except ValueError:
            return False
    return quoted == answered


def test_every_query_in_the_report_returns_the_figure_it_quotes(demo, reports):
    checked = 0
    for name in ("payment-failure", "healthy"):
        figures = json.loads(render(reports[name], "json"))["figures"]
        assert len(figures) >= 8
        answers = {}                    # one run per query; several figures may quote it
        for figure in figures:
            if figure["text"] not in answers:
                answers[figure["text"]] = sql(demo["db"], figure["text"])
            rows = answers[figure["text"]]
            answered = (rows[0][figure["column"]] if rows else None) if figure["column"] else rows
            assert _same(figure["value"], answered), (figure["name"], figure["value"], answered)
            checked += 1
    # And the Markdown prints those very queries.
    markdown = render(reports["payment-failure"], "md")
    for figure in json.loads(render(reports["payment-failure"], "json"))["figures"]:
        assert figure["text"].rstrip() in markdown
    assert checked >= 16
    # The ranking's own figures come back from the command the report prints.
    import shlex

    report = reports["payment-failure"]
    command = shlex.split(report.causes_command)
    assert command[:2] == ["tracekit", "causes"]
    ranked = json.loads(cli(*command[1:], "--json").stdout)["causes"]
    assert [(c["service"], c["operation"]) for c in ranked] == \
        [(s.service, s.operation) for s in report.suspects]
    assert math.isclose(ranked[0]["score"], report.suspects[0].score, rel_tol=1e-9)


def test_figures_quoted_in_the_text_are_the_queries_answers(reports):
    report = reports["payment-failure"]
    md = render(report, "md")
    assert f"Flows started in the window: **{report.impact.flows.value}**" in md
    assert f"Failed: **{report.impact.failed.value}**" in md
    assert report.impact.failed.value > 0 and report.path.grew is not None


def test_redacted_attributes_stay_redacted_in_every_format(tmp_path):
    from opentelemetry.trace import Status, StatusCode

    from otel_clients import pipeline

    secret = "s3cr3t-token-9f8e7d"
    running = start_collector(tmp_path / "store.duckdb")
    p = pipeline("gateway", "http", running.http)
    with p.tracer.start_as_current_span("GET /account", attributes={
            "http.request.header.authorization": f"Bearer {secret}",
            "http.response.status_code": 500, "order.id": "o-redact"}) as span:
        with p.tracer.start_as_current_span("SELECT accounts"):
            pass
        span.record_exception(RuntimeError("account service down"))
        span.set_status(Status(StatusCode.ERROR))
    p.flush()
    p.shutdown()
    try:
        outputs = {}
        for fmt in ("md", "html", "json"):
            outputs[fmt] = cli("report", "--db", str(running.db), "--flow", "o-redact",
                               "--format", fmt).stdout.decode()
        attributes = json.loads(outputs["json"])["exemplar"]["attributes"]
        assert attributes["http.request.header.authorization"] == "[REDACTED]"
        for fmt, text in outputs.items():
            assert "[REDACTED]" in text, fmt
            assert secret not in text, f"the raw value reached the {fmt} report"
    finally:
        assert running.stop() == 0


def test_report_command_picks_the_format_from_the_file_name(demo, tmp_path):
    start, end = scenario_window(demo["truth"], "circuit-breaker")
    for suffix, opening in ((".html", "<!doctype html>"), (".json", "{"), (".md", "# ")):
        out = tmp_path / f"report{suffix}"
        result = cli("report", "--db", str(demo["db"]), "--from", str(pd.Timestamp(start)),
                     "--to", str(pd.Timestamp(end)), "-o", str(out))
        assert result.stdout == b"" and out.read_text().startswith(opening)
    bad = cli("report", "--db", str(demo["db"]), "--to", "2026-01-01", check=False)
    assert bad.returncode == 2 and b"--to needs --from" in bad.stderr


def test_flow_type_restricts_the_report_to_that_workflows_flows(demo):
    start, end = scenario_window(demo["truth"], "payment-failure")
    baseline = scenario_window(demo["truth"], "healthy")
    with tracekit.open(demo["db"]) as store:
        report = build(store, window=(start, end), baseline=baseline, flow_type="shopper checkout")
    [row] = sql(demo["db"], f"""SELECT count(*) AS n FROM flows
        WHERE type_name LIKE '%shopper checkout%'
          AND epoch_ns(start_time) >= {start} AND epoch_ns(start_time) < {end}""")
    assert report.impact.flows.value == row["n"] > 0
    assert report.type_ids and all("shopper checkout" in t.name for t in report.impact.affected_types)
    assert (report.suspects[0].service, report.suspects[0].operation) == ("payment", "charge card")


def test_build_stays_the_function_after_a_report_was_built(tmp_path):
    import importlib

    import tracekit.report

    from tests.otlp_payloads import trace_request
    from tracekit.analysis import persist
    from tracekit.otlp.decode import decode_traces

    store = tmp_path / "small.duckdb"
    writer = tracekit.open(store, write=True)
    writer.append(decode_traces(trace_request(3, service="small")), "test")
    persist.update(writer.conn)
    writer.close()
    with tracekit.open(store) as reader:
        tracekit.report.build(reader)
    assert callable(importlib.import_module("tracekit.report").build)
    from tracekit.report import build as again
    assert not isinstance(again, type(tracekit.report))


def test_the_html_charts_time_labels_stay_inside_the_chart():
    """Each time label under a chart fits in the SVG's width (the last one was cut in half at
    the right edge), judged by its anchor and the width of its characters."""
    import re
    from types import SimpleNamespace

    from tracekit.report.html import _line_chart
    from tracekit.report.model import Bucket

    start = 1_796_000_000_000_000_000
    buckets = tuple(Bucket(start + i * 10**10, 10, 1, 0.1, 50.0 + i) for i in range(30))
    report = SimpleNamespace(window=SimpleNamespace(start_ns=start, end_ns=start + 10**11))
    svg = _line_chart(buckets, lambda b: b.p95_ms, "p95", str, report, "#000")
    width = float(re.search(r'<svg[^>]* width="(\d+)"', svg)[1])
    labels = re.findall(r'<text x="([\d.]+)" y="[\d.]+" text-anchor="(\w+)" font-size="11">(\d\d:\d\d:\d\d)</text>', svg)
    assert len(labels) == 3
    for x, anchor, text in labels:
        text_w = len(text) * 11 * 0.6
        left = float(x) - {"start": 0, "middle": text_w / 2, "end": text_w}[anchor]
        assert 0 <= left and left + text_w <= width, (x, anchor, text)
