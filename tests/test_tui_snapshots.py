"""SVG snapshots of the terminal UI's main screens, over a fixed store (tests/tui_data/shop.jsonl,
imported with `tracekit import`): what a person sees, compared with the approved picture.
Update after an intended change with `pytest tests/test_tui_snapshots.py --snapshot-update`."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import tracekit as cli
from tests.tui_data.screen import settle
from tui.app import make_app
from tui.compare_view import CompareScreen
from tui.flow_view import FlowScreen
from tui.span_detail import SpanScreen

FIXTURE = Path(__file__).parent / "tui_data" / "shop.jsonl"
SIZE = (120, 34)


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tui-snapshots")
    cli("import", "--db", str(folder / "shop.duckdb"), str(FIXTURE))
    return folder


@pytest.fixture
def app(shop, monkeypatch, tmp_path):
    # A relative path, so the status line reads the same on every machine.
    monkeypatch.chdir(shop)
    return make_app("shop.duckdb", live_interval=None, clock=lambda: 0.0,
                    sql_history=tmp_path / "sql_history")


async def analyzed(pilot) -> None:
    await settle(pilot, lambda: pilot.app.revision is not None)


async def open_flow(pilot, search: str) -> None:
    await analyzed(pilot)
    await pilot.press("2", "slash", *search, "enter")
    await settle(pilot)
    await pilot.press("enter")
    await settle(pilot, lambda: isinstance(pilot.app.screen, FlowScreen)
                 and pilot.app.screen.waterfall_data is not None)


def test_overview_of_flow_types(snap_compare, app):
    assert snap_compare(app, terminal_size=SIZE, run_before=analyzed)


def test_overview_at_80_by_24(snap_compare, app):
    assert snap_compare(app, terminal_size=(80, 24), run_before=analyzed)


def test_flows_list(snap_compare, app):
    async def run_before(pilot):
        await analyzed(pilot)
        await pilot.press("2")
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_failing_flow_waterfall_with_origin(snap_compare, app):
    async def run_before(pilot):
        await open_flow(pilot, "o-0007")
        await pilot.press("o")

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_choreographed_flow_waterfall_with_broker_waits(snap_compare, app):
    async def run_before(pilot):
        await open_flow(pilot, "c-0003")
        await pilot.press("down", "down", "down", "l")

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_span_detail_with_logs(snap_compare, app):
    async def run_before(pilot):
        await open_flow(pilot, "o-0007")
        await pilot.press("o", "d")
        await settle(pilot, lambda: isinstance(pilot.app.screen, SpanScreen)
                     and pilot.app.screen.detail is not None)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_failures_view(snap_compare, app):
    async def run_before(pilot):
        await analyzed(pilot)
        await pilot.press("3")
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_service_map(snap_compare, app):
    async def run_before(pilot):
        await analyzed(pilot)
        await pilot.press("4")
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_sql_console_with_a_result(snap_compare, app):
    async def run_before(pilot):
        await analyzed(pilot)
        await pilot.press("5")
        editor = pilot.app.query_one("#sql-editor")
        editor.text = ("SELECT service_name, count(*) AS spans, count(*) FILTER (status_code = 'ERROR') "
                       "AS errors FROM spans GROUP BY ALL ORDER BY spans DESC, service_name")
        editor.cursor_blink = False         # the picture must not depend on the blink phase
        editor.focus()
        await pilot.press("ctrl+r")
        await settle(pilot, lambda: "rows" in str(pilot.app.query_one("#sql-status").render()))

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_help_screen(snap_compare, app):
    async def run_before(pilot):
        await analyzed(pilot)
        await pilot.press("question_mark")
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_sql_completion_of_an_attribute_key(snap_compare, app):
    async def run_before(pilot):
        await analyzed(pilot)
        await pilot.press("5")
        await settle(pilot, lambda: bool(pilot.app.query_one("SqlConsole").attribute_keys))
        editor = pilot.app.query_one("#sql-editor")
        editor.text = ""
        editor.cursor_blink = False
        await pilot.press(*"SELECT count(*) FROM spans WHERE attributes['")
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_failing_flow_compared_with_a_typical_good_one(snap_compare, app):
    async def run_before(pilot):
        await open_flow(pilot, "o-0007")
        await pilot.press("c")
        await settle(pilot, lambda: isinstance(pilot.app.screen, CompareScreen)
                     and pilot.app.screen.comparison is not None)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
