"""The terminal UI driven by Pilot over real stores: the demo shop's (RabbitMQ, every fault
scenario) and a live collector fed by the OpenTelemetry SDK. Assertions read the screen."""

from __future__ import annotations

import asyncio

import pytest

import tracekit
from tests.tui_data.screen import screen_text, settle, wait_for_text
from tui.app import make_app
from tui.flow_view import FlowScreen
from tui.span_detail import SpanScreen
from tui.waterfall import Waterfall

SIZE = (140, 44)


@pytest.fixture(autouse=True)
def sql_history(tmp_path, monkeypatch):
    """Each test's own SQL history file: never the user's."""
    path = tmp_path / "state" / "sql_history"
    monkeypatch.setenv("TRACEKIT_SQL_HISTORY", str(path))
    return path


def run(coroutine):
    return asyncio.run(coroutine)


def _rows(db, query, params=None):
    with tracekit.open(db) as store:
        return store.arrow(query, params or []).to_pylist()


def _waterfall(app) -> Waterfall:
    return app.screen.query_one(Waterfall)


def _selected(app) -> str:
    return str(app.screen.query_one("#flow-selected").render())


async def _open_failed_payment_flow(pilot):
    """Flows view → failed only → search the payment gateway's error → open the first flow."""
    await settle(pilot, lambda: pilot.app.revision is not None)
    await pilot.press("2")
    await settle(pilot)
    await pilot.press("f")
    await pilot.press("slash")
    await pilot.press(*"PaymentGatewayError")
    await pilot.press("enter")
    await settle(pilot)
    await pilot.press("enter")
    await settle(pilot, lambda: isinstance(pilot.app.screen, FlowScreen)
                 and pilot.app.screen.waterfall_data is not None)


def test_overview_lists_the_demo_flow_types_with_their_styles(rabbitmq_demo_run):
    db = rabbitmq_demo_run["db"]

    async def scenario():
        app = make_app(db, live_interval=None)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, lambda: app.revision is not None)
            return screen_text(app)

    screen = run(scenario())
    for workflow, style in (("shopper order", "orchestrated"), ("shopper checkout", "choreographed"),
                            ("shopper return", "hybrid")):
        line = next((l for l in screen.splitlines() if workflow in l and style in l), None)
        assert line is not None, f"{workflow} ({style}) not listed:\n{screen}"
    [stored] = _rows(db, "SELECT (SELECT count(*) FROM flow_types) AS types, "
                         "(SELECT count(*) FROM flows) AS flows")
    assert f"{stored['types']} flow types" in screen
    assert f"{stored['flows']:,} flows" in screen


def test_failing_flow_shows_critical_path_and_failure_origin(rabbitmq_demo_run):
    async def scenario():
        app = make_app(rabbitmq_demo_run["db"], live_interval=None)
        async with app.run_test(size=SIZE) as pilot:
            await _open_failed_payment_flow(pilot)
            waterfall = _waterfall(app)
            data = waterfall.data
            lines = [waterfall.row_text(i) for i in range(len(waterfall.lines))]
            await pilot.press("o")                  # jump to the failure origin
            await pilot.pause()
            return screen_text(app), data, lines, _selected(app)

    screen, data, lines, selected = run(scenario())
    assert "failed" in screen.splitlines()[0]
    origin_lines = [l for l in lines if "✖ origin" in l]
    assert len(origin_lines) == 1, lines
    assert "payment" in origin_lines[0] and "charge card" in origin_lines[0]
    assert "payment charge card" in selected and "failure origin" in selected
    # Every span the analyzer puts on the critical path is marked ▌, and no other span.
    from tracekit.analysis.critical_paths import critical_path

    snap_paths = {s.span for s in critical_path(_analysis(rabbitmq_demo_run["db"]), data.flow_id)
                  if s.kind == "span"}
    marked = {row.key for row, line in zip(data.rows, lines) if line.startswith("▌") and not row.wait}
    assert marked == snap_paths
    assert "▌ critical path" in screen or "▌█ critical path" in screen


_ANALYSES = {}


def _analysis(db):
    from tracekit.analysis.run import analyze

    if db not in _ANALYSES:
        with tracekit.open(db) as store:
            _ANALYSES[db] = analyze(store)
    return _ANALYSES[db]


def test_following_a_link_reaches_the_consumer_trace_and_back(rabbitmq_demo_run):
    db = rabbitmq_demo_run["db"]
    [checkout] = _rows(db, """
        SELECT attributes['order.id']::VARCHAR AS order_id FROM spans
        WHERE kind = 'PRODUCER' AND attributes['messaging.rabbitmq.destination.routing_key'] = 'order.placed'
        ORDER BY start_time LIMIT 1""")

    async def scenario():
        app = make_app(db, live_interval=None)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, lambda: app.revision is not None)
            await pilot.press("2")
            await settle(pilot)
            await pilot.press("slash", *checkout["order_id"], "enter")
            await settle(pilot)
            await pilot.press("enter")
            await settle(pilot, lambda: isinstance(app.screen, FlowScreen)
                         and app.screen.waterfall_data is not None)
            waterfall = _waterfall(app)
            for _ in range(len(waterfall.lines)):          # down to the order.placed producer
                row = waterfall.row
                if row.kind == "PRODUCER" and "order.placed" in (row.destination or row.name):
                    break
                await pilot.press("down")
            producer = waterfall.row
            at_producer = _selected(app)
            await pilot.press("l")
            await pilot.pause()
            consumer = waterfall.row
            at_consumer = _selected(app)
            consumer_line = waterfall.row_text(waterfall.cursor)
            await pilot.press("left_square_bracket")
            await pilot.pause()
            back = _selected(app)
            await pilot.press("right_square_bracket")
            await pilot.pause()
            forward = _selected(app)
            return producer, consumer, at_producer, at_consumer, consumer_line, back, forward

    producer, consumer, at_producer, at_consumer, consumer_line, back, forward = run(scenario())
    assert producer.kind == "PRODUCER" and "link" in at_producer
    assert consumer.kind == "CONSUMER"
    assert consumer.trace_id != producer.trace_id          # another trace, joined by its link
    assert f"trace {consumer.trace_id}" in at_consumer and "CONSUMER" in at_consumer
    assert f"trace {producer.trace_id}" in back and f"span {producer.span_id}" in back
    assert f"span {consumer.span_id}" in forward
    assert consumer.service in consumer_line


def test_span_detail_shows_the_span_logs(rabbitmq_demo_run):
    db = rabbitmq_demo_run["db"]

    async def scenario():
        app = make_app(db, live_interval=None)
        async with app.run_test(size=SIZE) as pilot:
            await _open_failed_payment_flow(pilot)
            await pilot.press("o", "d")
            await settle(pilot, lambda: isinstance(app.screen, SpanScreen) and app.screen.detail is not None)
            return screen_text(app), app.screen.trace_id, app.screen.span_id

    screen, trace_id, span_id = run(scenario())
    logs = _rows(db, "SELECT body::VARCHAR AS body FROM logs WHERE trace_id = ? AND span_id = ?",
                 [trace_id, span_id])
    assert logs, "the demo's payment fault logs in its span"
    assert "payment charge card" in screen and "ERROR" in screen
    assert f"Logs of this span ({len(logs)})" in screen
    for log in logs:
        assert log["body"][:60] in screen.replace("\n ", " ")


def test_sql_console_runs_a_query_and_shows_its_result(rabbitmq_demo_run):
    db = rabbitmq_demo_run["db"]
    [expected] = _rows(db, "SELECT count(*) AS n FROM spans")

    async def scenario():
        app = make_app(db, live_interval=None)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("5")
            editor = app.query_one("#sql-editor")
            editor.text = "SELECT count(*) AS span_count FROM spans"
            editor.focus()
            await pilot.press("ctrl+r")
            await settle(pilot, lambda: "1 rows" in str(app.query_one("#sql-status").render()))
            first = screen_text(app)
            editor.text = "SELEC nonsense"
            await pilot.press("ctrl+r")
            await settle(pilot)
            error = str(app.query_one("#sql-status").render())
            await pilot.press("ctrl+up")
            previous = editor.text
            return first, error, previous

    first, error, previous = run(scenario())
    assert "span_count" in first
    assert str(expected["n"]) in first.replace(",", "")
    assert "syntax error" in error.lower()
    assert previous == "SELECT count(*) AS span_count FROM spans"


def test_sql_console_reads_the_analysis_tables(rabbitmq_demo_run):
    db = rabbitmq_demo_run["db"]

    async def scenario():
        app = make_app(db, live_interval=None)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, lambda: app.revision is not None)
            await pilot.press("5")
            editor = app.query_one("#sql-editor")
            editor.text = "SELECT count(*) AS failed_flows FROM flows WHERE failed"
            editor.focus()
            await pilot.press("ctrl+r")
            await settle(pilot, lambda: "rows" in str(app.query_one("#sql-status").render()))
            return screen_text(app)

    screen = run(scenario())
    [failed] = _rows(db, "SELECT count(*) AS n FROM flow_rows WHERE failed")
    assert "failed_flows" in screen
    assert str(failed["n"]) in screen


def test_new_spans_appear_while_a_collector_runs(collector):
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.trace import Link, SpanKind

    def export(workflow: str) -> None:
        provider = TracerProvider(resource=Resource.create({"service.name": "live-shop"}))
        provider.add_span_processor(SimpleSpanProcessor(
            OTLPSpanExporter(endpoint=collector.grpc, insecure=True)))
        tracer = provider.get_tracer("test")
        with tracer.start_as_current_span(workflow, kind=SpanKind.SERVER,
                                          attributes={"order.id": f"{workflow}-1"}):
            with tracer.start_as_current_span("publish", kind=SpanKind.PRODUCER) as producer:
                context = producer.get_span_context()
        with tracer.start_as_current_span("consume", kind=SpanKind.CONSUMER, links=[Link(context)],
                                          context=None):
            pass
        provider.shutdown()

    async def scenario():
        export("first-workflow")
        app = make_app(collector.db, live_interval=0.3)
        async with app.run_test(size=SIZE) as pilot:
            before = await wait_for_text(pilot, "live-shop first-workflow")
            export("second-workflow")          # while the app runs
            after = await wait_for_text(pilot, "live-shop second-workflow")
            status = str(app.query_one("#status").render())
            return before, after, status

    before, after, status = run(scenario())
    assert "second-workflow" not in before
    assert "first-workflow" in after
    assert "live via collector" in status


@pytest.mark.skipif(__import__("importlib").util.find_spec("tracekit.report") is None,
                    reason="tracekit.report is not in this version")
def test_report_key_writes_an_incident_report_next_to_the_store(rabbitmq_demo_run, tmp_path):
    import shutil

    db = tmp_path / "shop.duckdb"
    shutil.copy(rabbitmq_demo_run["db"], db)

    async def scenario():
        app = make_app(db, live_interval=None, stamp=lambda: "20261128T000000Z")
        notes = []      # what the app told the user (toasts vanish from the screen)
        notify = app.notify

        def recording_notify(message, **kwargs):
            notes.append((kwargs.get("title"), str(message)))
            return notify(message, **kwargs)

        app.notify = recording_notify
        async with app.run_test(size=SIZE) as pilot:
            await _open_failed_payment_flow(pilot)
            await pilot.press("R")
            target = tmp_path / "tracekit-report-20261128T000000Z.md"
            await settle(pilot, lambda: target.exists() or any(t == "Report failed" for t, _ in notes),
                         timeout=120)
            assert target.exists(), f"no report; the app said: {notes}"
            return target.read_text()

    report = run(scenario())
    assert "payment" in report


def test_the_cli_imports_the_ui_only_for_the_tui_command(tmp_path):
    import subprocess
    import sys

    code = ("import sys, tracekit.cli as cli; cli.build_parser(); "
            "print(sorted(m for m in ('tui', 'textual') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
    missing = subprocess.run([sys.executable, "-m", "tracekit", "tui", "--db", str(tmp_path / "none.duckdb")],
                             capture_output=True, text=True)
    assert missing.returncode == 1 and "no store at" in missing.stderr


def test_span_detail_link_leads_to_the_producer_and_back(tmp_path):
    from pathlib import Path

    from tests.conftest import tracekit as cli
    from textual.widgets import OptionList

    db = tmp_path / "shop.duckdb"
    cli("import", "--db", str(db), str(Path(__file__).parent / "tui_data" / "shop.jsonl"))

    async def scenario():
        app = make_app(db, live_interval=None)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, lambda: app.revision is not None)
            await pilot.press("2")
            await settle(pilot)
            await pilot.press("slash", *"c-0003", "enter")
            await settle(pilot)
            await pilot.press("enter")
            await settle(pilot, lambda: isinstance(app.screen, FlowScreen)
                         and app.screen.waterfall_data is not None)
            flow_screen = app.screen
            waterfall = _waterfall(app)
            while waterfall.row.kind != "CONSUMER":
                await pilot.press("down")
            consumer = waterfall.row
            await pilot.press("d")
            await settle(pilot, lambda: isinstance(app.screen, SpanScreen) and app.screen.detail is not None)
            detail = screen_text(app)
            app.screen.query_one(OptionList).focus()
            await pilot.press("enter")
            await settle(pilot, lambda: app.screen is flow_screen)
            producer = waterfall.row
            await pilot.press("d")      # the producer's detail names the consumer linking to it
            await settle(pilot, lambda: isinstance(app.screen, SpanScreen) and app.screen.detail is not None)
            producer_detail = screen_text(app)
            await pilot.press("escape")
            await settle(pilot, lambda: app.screen is flow_screen)
            await pilot.press("left_square_bracket")
            await pilot.pause()
            return consumer, detail, producer, producer_detail, waterfall.row, len(app.screen_stack)

    consumer, detail, producer, producer_detail, back, depth = run(scenario())
    assert "← linked from" in producer_detail and "order.placed process" in producer_detail
    assert "order.placed process" in detail and "→ links to" in detail
    assert producer.kind == "PRODUCER" and producer.trace_id != consumer.trace_id
    assert f"→ links to {producer.trace_id}:{producer.span_id}" in detail
    assert back.key == consumer.key
    assert depth == 2           # the main screen and the one flow screen: no stack of copies


def test_a_store_whose_analysis_lags_is_analyzed_at_start_with_progress_shown(tmp_path):
    from pathlib import Path

    from tracekit.analysis.ready import behind
    from tracekit.importer import StoreSink, import_files
    from tracekit.writable import WritableStore
    from tui.messages import Analyzing, StatsLoaded

    db = tmp_path / "shop.duckdb"
    store = WritableStore.open(db)          # spans written, the analysis tables left behind
    try:
        import_files([Path(__file__).parent / "tui_data" / "shop.jsonl"], StoreSink(store))
    finally:
        store.close()
    with tracekit.open(db) as store:
        assert behind(store) == 180
    messages = []

    async def scenario():
        app = make_app(db, live_interval=None)
        async with app.run_test(size=SIZE, message_hook=messages.append) as pilot:
            await settle(pilot, lambda: app.revision is not None)
            return screen_text(app)

    screen = run(scenario())
    loaded = [m for m in messages if isinstance(m, StatsLoaded)]
    assert [m.readable for m in loaded] == [False, True]     # figures first, then the analysis
    assert loaded[0].stats.behind == 180 and loaded[-1].stats.behind == 0
    progress = [(m.done, m.total) for m in messages if isinstance(m, Analyzing)]
    assert progress[0] == (0, 180) and progress[-1] == (180, 180)
    assert "2 flow types, 24 flows" in screen and "analyzing" not in screen
    with tracekit.open(db) as store:
        assert behind(store) == 0


# --- keyboard first: the path a newcomer takes with the keys alone -------------------------


@pytest.fixture(scope="module")
def shop_db(tmp_path_factory):
    """The small fixed shop (tests/tui_data/shop.jsonl), imported and analyzed."""
    from pathlib import Path

    from tests.conftest import tracekit as cli

    db = tmp_path_factory.mktemp("keys") / "shop.duckdb"
    cli("import", "--db", str(db), str(Path(__file__).parent / "tui_data" / "shop.jsonl"))
    return db


def _help_keys(app) -> set[str]:
    """The keys the open help screen lists (its first column, keys doing one thing together)."""
    from tui.help import HelpScreen

    assert isinstance(app.screen, HelpScreen)
    return {key for _, rows in app.screen.sections for keys, _ in rows for key in keys.split(" ")}


def _bound_keys(app, screen) -> set[str]:
    """Every key `screen` answers to now, as Textual's binding chain has it (enabled, named)."""
    return {app.get_key_display(b.binding) for b in screen.active_bindings.values()
            if b.enabled and b.binding.description and not b.binding.system}


def test_start_enter_enter_opens_a_flow_with_its_critical_path(shop_db):
    from textual.widgets import DataTable

    async def scenario():
        app = make_app(shop_db, live_interval=None)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, lambda: app.revision is not None)
            first_focus = app.focused
            type_name = str(first_focus.get_row_at(first_focus.cursor_row)[0])
            await pilot.press("enter")              # the first flow type's flows
            await settle(pilot)
            flows_focus, tab = app.focused, app.query_one("#views").active
            await pilot.press("enter")              # its first flow
            await settle(pilot, lambda: isinstance(app.screen, FlowScreen))
            waterfall = _waterfall(app)
            lines = [waterfall.row_text(i) for i in range(len(waterfall.lines))]
            return (first_focus, type_name, flows_focus, tab, app.screen.waterfall_data,
                    lines, screen_text(app), app.focused)

    first_focus, type_name, flows_focus, tab, data, lines, screen, last_focus = run(scenario())
    assert isinstance(first_focus, DataTable) and first_focus.id == "types"
    assert tab == "flows" and flows_focus.id == "flow-table"
    assert data.summary["type"] == type_name
    assert isinstance(last_focus, Waterfall)
    stored = {f"{r['trace_id']}:{r['span_id']}" for r in _rows(
        shop_db, "SELECT trace_id, span_id FROM critical_path WHERE flow_id = ? AND segment = 'span'",
        [data.flow_id])}
    marked = {row.key for row, line in zip(data.rows, lines) if line.startswith("▌") and not row.wait}
    assert stored and marked == stored
    assert "critical path" in screen


def test_slash_filters_escape_leaves_the_filter_then_goes_back(shop_db):
    async def scenario():
        app = make_app(shop_db, live_interval=None)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, lambda: app.revision is not None)
            await pilot.press("slash", *"checkout")
            await settle(pilot)
            in_filter = app.focused.id
            await pilot.press("escape")
            await settle(pilot)
            types = app.query_one("#types")
            after_filter = (app.focused.id, types.row_count, str(types.get_row_at(0)[0]))
            await pilot.press("enter")
            await settle(pilot)
            in_flows = (app.query_one("#views").active, app.focused.id)
            await pilot.press("enter")
            await settle(pilot, lambda: isinstance(app.screen, FlowScreen))
            await pilot.press("escape")             # the flow → its list
            await settle(pilot)
            from_flow = (len(app.screen_stack), app.focused.id)
            await pilot.press("backspace")          # the flows → their types
            await settle(pilot)
            return in_filter, after_filter, in_flows, from_flow, \
                (app.query_one("#views").active, app.focused.id)

    in_filter, after_filter, in_flows, from_flow, back = run(scenario())
    assert in_filter == "type-filter"
    assert after_filter[0] == "types" and after_filter[1] == 1 and "checkout" in after_filter[2]
    assert in_flows == ("flows", "flow-table")
    assert from_flow == (1, "flow-table")
    assert back == ("overview", "types")


def test_escape_in_the_flows_search_keeps_the_search_in_force(shop_db):
    async def scenario():
        app = make_app(shop_db, live_interval=None)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, lambda: app.revision is not None)
            await pilot.press("2", "slash", *"o-0007", "enter")
            await settle(pilot)
            await pilot.press("slash", *"zzz", "escape")
            await settle(pilot)
            view = app.query_one("FlowsView")
            return app.focused.id, view.flow_query.search, app.query_one("#flow-search").value

    focused, search, box = run(scenario())
    assert focused == "flow-table"
    assert search == box == "o-0007"


def test_help_lists_exactly_the_keys_bound_where_the_focus_is(shop_db):
    async def scenario():
        app = make_app(shop_db, live_interval=None)
        seen = {}
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, lambda: app.revision is not None)
            for place, keys in (("types", ()), ("flows", ("2",)), ("failures", ("3",))):
                await pilot.press(*keys)
                await settle(pilot)
                bound = _bound_keys(app, app.screen)
                await pilot.press("question_mark")
                await pilot.pause()
                seen[place] = (_help_keys(app), bound, screen_text(app))
                await pilot.press("escape")
                await pilot.pause()
            await pilot.press("enter")
            await settle(pilot, lambda: isinstance(app.screen, FlowScreen))
            bound = _bound_keys(app, app.screen)
            await pilot.press("f1")
            await pilot.pause()
            seen["flow"] = (_help_keys(app), bound, screen_text(app))
        return seen

    seen = run(scenario())
    for place, (listed, bound, _) in seen.items():
        assert listed == bound, place
    types, flows, failures, flow = (seen[p][0] for p in ("types", "flows", "failures", "flow"))
    assert {"r", "f", "x"} & types == set()             # the flow types do not bind them
    assert {"r", "f", "x"} & failures == set()
    assert {"r", "f", "x", "s", "/"} <= flows
    assert "R" in failures and "R" not in types
    assert {"d", "l", "o", "esc", "⌫"} <= flow and "1" not in flow      # views switch on the main screen
    assert "Failed only" in seen["flows"][2] and "Failed only" not in seen["types"][2]


def test_mouse_still_opens_views_and_rows(shop_db):
    async def scenario():
        app = make_app(shop_db, live_interval=None)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, lambda: app.revision is not None)
            await pilot.click("#views Tab#--content-tab-flows")
            await settle(pilot)
            clicked_tab = (app.query_one("#views").active, app.focused.id)
            third = app.query_one("FlowsView").flow_ids[2]
            await pilot.click("#flow-table", offset=(5, 3), times=2)       # the third row
            await settle(pilot, lambda: isinstance(app.screen, FlowScreen))
            return clicked_tab, app.screen.flow_id, third

    clicked_tab, opened, third = run(scenario())
    assert clicked_tab == ("flows", "flow-table")
    assert opened == third


# --- the SQL console -------------------------------------------------------------------------


async def _sql(pilot, text: str | None = None):
    """The SQL view, its editor focused and holding `text` with the cursor at its end."""
    app = pilot.app
    await settle(pilot, lambda: app.revision is not None)
    await pilot.press("5")
    await settle(pilot, lambda: bool(app.query_one("SqlConsole").tables))
    editor = app.query_one("#sql-editor")
    if text is not None:
        editor.text = text
        editor.move_cursor(editor.document.end)
    return editor


def _status(app) -> str:
    return str(app.query_one("#sql-status").render())


def _offered(app) -> list[str]:
    box = app.query_one("#sql-completions")
    return [c.text for c in app.query_one("SqlConsole")._offered] if box.display else []


def test_sql_editor_highlights_sql(shop_db):
    from textual.document._syntax_aware_document import SyntaxAwareDocument

    async def scenario():
        app = make_app(shop_db, live_interval=None)
        async with app.run_test(size=SIZE) as pilot:
            editor = await _sql(pilot)
            return app.focused is editor, editor.language, editor.document

    focused, language, document = run(scenario())
    assert focused                                  # the view arrives with the editor focused
    assert language == "sql" and isinstance(document, SyntaxAwareDocument)


def test_sql_completes_tables_columns_and_attribute_keys_from_the_store(shop_db):
    [keys] = _rows(shop_db, "SELECT list(key ORDER BY key) AS k FROM span_attribute_keys")
    key = next(k for k in keys["k"] if k.startswith("order"))

    async def scenario():
        app = make_app(shop_db, live_interval=None)
        async with app.run_test(size=SIZE) as pilot:
            editor = await _sql(pilot, "")
            seen = {}
            await pilot.press(*"select service_n")
            await pilot.pause()
            seen["column"] = _offered(app)
            await pilot.press("tab")
            await pilot.press(*" from sp")
            await pilot.pause()
            seen["table"] = _offered(app)
            await pilot.press("enter")
            await pilot.press(*" where attributes['", *key[:3])
            await pilot.pause()
            seen["key"] = _offered(app)
            await pilot.press("down", "up", "enter")
            seen["text"] = editor.text
            await pilot.press(*" = 'x' lim", "escape")
            await pilot.pause()
            seen["closed"] = (_offered(app), app.focused is editor)
            return seen

    seen = run(scenario())
    assert seen["column"][0] == "service_name"
    assert seen["table"][0] == "spans"
    assert key in seen["key"] and all(k in keys["k"] for k in seen["key"])
    assert seen["text"] == f"select service_name from spans where attributes['{key}']"
    assert seen["closed"] == ([], True)           # escape closes the list, the editor keeps the keys


def test_sql_history_is_kept_across_runs(shop_db, sql_history):
    async def session(query: str | None):
        app = make_app(shop_db, live_interval=None)
        async with app.run_test(size=SIZE) as pilot:
            editor = await _sql(pilot, query or "")
            if query:
                await pilot.press("ctrl+r")
                await settle(pilot, lambda: "rows" in _status(app))
                return None
            await pilot.press("ctrl+up")
            first = editor.text
            await pilot.press("ctrl+up")
            return first, editor.text

    run(session("SELECT 1 AS one"))
    run(session("SELECT 2 AS two"))
    recalled = run(session(None))
    assert recalled == ("SELECT 2 AS two", "SELECT 1 AS one")
    assert sql_history.exists() and "SELECT 1 AS one" in sql_history.read_text()


def test_sql_runs_the_statement_under_the_cursor_or_the_selection(shop_db):
    from textual.widgets.text_area import Selection

    async def scenario():
        app = make_app(shop_db, live_interval=None)
        async with app.run_test(size=SIZE) as pilot:
            editor = await _sql(pilot, "SELECT 1 AS first_one;\nSELECT 2 AS second_one;\nSELECT 3 AS third_one")
            editor.move_cursor((1, 4))
            await pilot.press("f5")
            await settle(pilot, lambda: "rows" in _status(app))
            under_cursor = app.query_one("SqlConsole").result.column_names
            editor.selection = Selection((2, 0), (2, 8))        # "SELECT 3"
            await pilot.press("ctrl+r")
            await settle(pilot, lambda: "rows" in _status(app))
            return under_cursor, app.query_one("SqlConsole").result

    under_cursor, selected = run(scenario())
    assert under_cursor == ["second_one"]
    assert selected.column_names == ["3"]


def test_a_running_query_is_cancelled_with_escape_and_errors_read_clearly(shop_db):
    async def scenario():
        app = make_app(shop_db, live_interval=None)
        async with app.run_test(size=SIZE) as pilot:
            console = app.query_one("SqlConsole")
            await _sql(pilot, "SELECT count(*) FROM range(1000000000000) t(i) WHERE i % 7 = 3")
            await pilot.press("f5")
            running = console.running
            while not running.started:          # DuckDB is running it (not just queued)
                await pilot.pause()
            await pilot.press("escape")
            await settle(pilot, lambda: console.running is None)
            cancelled = (_status(app), app.query_one("#views").active)
            console.query_one("#sql-editor").text = "SELEC nonsense"
            await pilot.press("f5")
            await settle(pilot, lambda: console.running is None)
            error = _status(app)
            console.query_one("#sql-editor").text = "SELECT 42 AS still_works"
            await pilot.press("f5")
            await settle(pilot, lambda: "rows" in _status(app))
            return cancelled, error, console.result.to_pylist()

    cancelled, error, after = run(scenario())
    assert cancelled == ("query cancelled", "sql")      # escape cancelled, it did not go back
    assert error.startswith("error: ") and "syntax error" in error.lower()
    assert after == [{"still_works": 42}]               # the store is still open and answers


def test_sql_export_asks_for_a_file_and_writes_csv_parquet_or_json(shop_db, tmp_path):
    import json

    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    from tui.export_prompt import ExportPrompt

    [expected] = _rows(shop_db, "SELECT count(*) AS n FROM spans")
    query = "SELECT span_id, service_name FROM spans ORDER BY span_id"

    async def scenario():
        app = make_app(shop_db, live_interval=None, stamp=lambda: "20261207T000000Z")
        async with app.run_test(size=SIZE) as pilot:
            await _sql(pilot, query)
            await pilot.press("ctrl+r")
            await settle(pilot, lambda: "rows" in _status(app))
            suggested = None
            for name in ("out.txt", "out.csv", "out.parquet", "out.json"):
                await pilot.press("ctrl+e")
                await settle(pilot, lambda: isinstance(app.screen, ExportPrompt))
                box = app.screen.query_one("#export-path")
                suggested = suggested or box.value
                box.value = ""
                await pilot.press(*str(tmp_path / name), "enter")
                if name == "out.txt":           # refused in the prompt, which stays open
                    await pilot.pause()
                    refused = str(app.screen.query_one("#export-error").render())
                    await pilot.press("escape")
                    continue
                await settle(pilot, lambda: (tmp_path / name).exists() and "exported" in _status(app))
            return suggested, refused

    suggested, refused = run(scenario())
    assert suggested.endswith("tracekit-query-20261207T000000Z.csv")
    assert "out.txt" in refused and ".parquet" in refused
    assert not (tmp_path / "out.txt").exists()
    csv = pcsv.read_csv(tmp_path / "out.csv")
    parquet = pq.read_table(tmp_path / "out.parquet")
    rows = json.loads((tmp_path / "out.json").read_text())
    assert csv.num_rows == parquet.num_rows == len(rows) == expected["n"]
    assert parquet.column_names == ["span_id", "service_name"] and set(rows[0]) == {"span_id", "service_name"}


def test_sql_keys_escape_leaves_the_editor_and_help_lists_the_console_keys(shop_db):
    async def scenario():
        app = make_app(shop_db, live_interval=None)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, lambda: app.revision is not None)
            await pilot.press("2")          # a view to come back to
            await settle(pilot)
            await _sql(pilot)
            bound = _bound_keys(app, app.screen)
            await pilot.press("f1")             # ? is a character in the editor
            await pilot.pause()
            listed = _help_keys(app)
            await pilot.press("escape")
            await pilot.pause()
            await pilot.press("escape")         # the editor → the result
            left = app.focused.id
            await pilot.press("escape")         # the SQL view → the one before
            await settle(pilot)
            return bound, listed, left, app.query_one("#views").active

    bound, listed, left, back = run(scenario())
    assert listed == bound
    assert {"f5", "^r", "^↑", "^↓", "^e", "^space"} <= listed
    assert "^e" in listed and left == "sql-result" and back == "flows"


def test_a_store_of_days_opens_on_its_last_hour_and_w_widens_it(tmp_path):
    """Over days of data the window "all" aggregates every stored flow; the UI opens on the
    newest hour (as Jaeger's search does) and `w` moves on to the wider windows."""
    from span_documents import request, span, write

    from tests.conftest import tracekit as cli

    hour_ms = 3_600_000
    spans = [span(f"{i + 1:032x}", f"{i + 1:016x}", f"GET /report/{name}", start_ms=at_ms)
             for i, (name, at_ms) in enumerate((("yesterday", 0), ("an-hour-ago", 22 * hour_ms),
                                                ("now", 24 * hour_ms)))]
    db = tmp_path / "days.duckdb"
    cli("import", "--db", str(db), str(write(tmp_path / "days.jsonl", request("reports", spans))))

    async def scenario():
        app = make_app(db, live_interval=None)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, lambda: app.revision is not None)
            opened = app.window_label, screen_text(app)
            await pilot.press("w")
            await settle(pilot)
            widened = app.window_label, screen_text(app)
            return opened, widened

    (label, screen), (wider, wide_screen) = run(scenario())
    assert label == "last 1h" and "last 1h" in screen
    assert "GET /report/now" in screen and "GET /report/yesterday" not in screen, screen
    assert "GET /report/an-hour-ago" not in screen, screen
    assert wider == "last 6h"
    assert "GET /report/an-hour-ago" in wide_screen and "GET /report/yesterday" not in wide_screen


def test_a_store_of_an_hour_or_less_opens_on_all_of_it(tmp_path):
    from tui.data import opening_window, window_label

    hour = 3600 * 10**9
    assert opening_window(0, hour) == "all"
    assert opening_window(0, hour + 1) == "last 1h"
    assert opening_window(None, None) == "all"
    assert window_label("15m") == window_label("last 15m") == "last 15m"
    with pytest.raises(ValueError, match="1h"):
        window_label("2h")


def test_the_highlighted_flow_type_shows_its_trends_under_the_list(tmp_path):
    from pathlib import Path

    from tests.conftest import tracekit as cli

    db = tmp_path / "shop.duckdb"
    cli("import", "--db", str(db), str(Path(__file__).parent / "tui_data" / "shop.jsonl"))

    async def scenario():
        app = make_app(db, live_interval=None)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, lambda: app.revision is not None)
            await pilot.press("down")
            await settle(pilot)
            return screen_text(app)

    screen = run(scenario())
    line = next((l for l in screen.splitlines() if "over the window:" in l), None)
    assert line is not None, screen
    assert "flows" in line and "errors" in line and "p95" in line
    assert any(c in line for c in "▁▂▃▄▅▆▇█"), line
