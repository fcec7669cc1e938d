"""Comparing two flows in the terminal UI, driven by Pilot with keys alone over the fixed shop
store (tests/tui_data/shop.jsonl): `c` on a failing flow compares it with a typical good one,
`m` then `c` in the flows list compares the two flows chosen, escape goes back."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.conftest import tracekit as cli
from tests.tui_data.screen import screen_text, settle
from tui.app import make_app
from tui.compare_view import CompareScreen
from tui.flow_view import FlowScreen

FIXTURE = Path(__file__).parent / "tui_data" / "shop.jsonl"
SIZE = (140, 44)


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("tui-compare") / "shop.duckdb"
    cli("import", "--db", str(db), str(FIXTURE))
    return db


def compared(app) -> bool:
    return isinstance(app.screen, CompareScreen) and app.screen.comparison is not None


async def search_flows(pilot, text: str) -> None:
    await settle(pilot, lambda: pilot.app.revision is not None)
    await pilot.press("2", "slash", *text, "enter")
    await settle(pilot)


def test_c_on_a_failing_flow_compares_it_with_a_typical_good_one_and_escape_goes_back(shop):
    async def scenario():
        app = make_app(shop, live_interval=None)
        async with app.run_test(size=SIZE) as pilot:
            await search_flows(pilot, "o-0007")
            await pilot.press("enter")
            await settle(pilot, lambda: isinstance(app.screen, FlowScreen))
            await pilot.press("c")
            await settle(pilot, lambda: compared(app))
            c = app.screen.comparison
            assert c.a.flow_id == app.screen.a and c.a.status == "failed"
            assert c.b.status == "complete"
            screen = screen_text(app)
            assert "B picked as a complete flow of its type" in screen
            errors = screen.split("Errors that differ")[1].split("Steps only in A")[0]
            assert "payment charge card" in errors and "card declined by the gateway" in errors
            await pilot.press("escape")
            await settle(pilot)
            assert isinstance(app.screen, FlowScreen)

    asyncio.run(scenario())


def test_m_marks_a_flow_in_the_list_and_c_on_another_compares_the_two(shop):
    async def scenario():
        app = make_app(shop, live_interval=None)
        async with app.run_test(size=SIZE) as pilot:
            await search_flows(pilot, "orders")
            flows = app.screen.query_one("FlowsView")
            await pilot.press("m")
            marked = flows.flow_ids[0]
            assert app.marked_flow == marked
            await pilot.press("down", "down", "c")
            await settle(pilot, lambda: compared(app))
            assert (app.screen.comparison.a.flow_id, app.screen.comparison.b.flow_id) == \
                (flows.flow_ids[2], marked)
            assert "picked" not in screen_text(app)

    asyncio.run(scenario())
