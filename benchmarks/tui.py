"""Terminal UI benchmark: time to first paint, to a filled overview, and to open a 500-span flow
on a store of ~1M spans.

    . .venv/bin/activate
    python benchmarks/tui.py                              # makes the stores once, 3 runs
    python benchmarks/tui.py --store /tmp/tui-1m.duckdb --runs 5 --json

The store: a real demo run (`tracekit demo --headless`, made once unless --source is given),
its span rows copied in DuckDB SQL with fresh trace, span, message and order ids until there
are --spans of them (as many independent flows of the same shapes), plus one flow of 500 spans
(one trace, a 4-ary call tree over eight services). It is built once and kept (--store).
Each run starts the real app headless (`app.run_test()`) and measures:

- first paint: app start → first screen rendered, in its loading state;
- store figures: → the loading state shows the store's span count and services (cheap SQL);
- flow types listed: → the first flow types on screen (on a large store, a preview: the
  newest 50,000 spans analyzed first);
- overview filled: → the whole store analyzed and shown (not the first-paint target,
  reported as measured);
- open flow: `enter` on the 500-span flow in the flows list → its waterfall rendered
  (median of 5 openings per run).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import tracekit  # noqa: E402
from stores import demo_store, replicate  # noqa: E402
from tui.app import make_app  # noqa: E402
from tui.flow_view import FlowScreen  # noqa: E402
from tui.overview import OverviewView  # noqa: E402
from tui.waterfall import Waterfall  # noqa: E402

BIG_TRACE = "b16f10000000000000000000000000b1"
BIG_SPANS = 500


BIG_FLOW = """
INSERT INTO span_rows
WITH services AS (SELECT row_number() OVER (ORDER BY resource_id) - 1 AS n, service_name, resource_id
                  FROM resources WHERE service_name <> 'tracekit-demo')
SELECT $trace, printf('%016x', i + 1),
       CASE WHEN i = 0 THEN NULL ELSE printf('%016x', (i - 1) // 4 + 1) END,
       NULL, 'step ' || i, CASE WHEN i % 2 = 0 THEN 'SERVER' ELSE 'CLIENT' END,
       make_timestamp_ns($t0 + i * 10000), make_timestamp_ns($t0 + 600000000 - i * 10000),
       600000000 - 2 * i * 10000, CASE WHEN i % 97 = 13 THEN 'ERROR' ELSE 'OK' END, NULL,
       s.service_name, s.resource_id, 'bench', NULL, NULL, [], [], 1, 0, 0, 0, [], 1
FROM range($n) AS t(i) JOIN services AS s ON s.n = i % 8
"""


def build_store(source: Path, target: Path, spans: int) -> None:
    """Copies of the demo run overlapping in time, then the one 500-span flow after them."""
    replicate(source, target, spans, logs=False, one_after_another=False)
    store = tracekit.open(target, write=True)
    try:
        t0 = store.conn.execute("SELECT epoch_ns(max(end_time)) FROM span_rows").fetchall()[0][0]
        store.conn.execute(BIG_FLOW, {"trace": BIG_TRACE, "t0": t0 + 1_000_000_000, "n": BIG_SPANS})
    finally:
        store.close()


async def one_run(db: Path, openings: int) -> dict:
    started = time.perf_counter()
    app = make_app(db, live_interval=None)
    figures: dict = {}
    async with app.run_test(size=(140, 40)) as pilot:
        figures["first_paint_s"] = time.perf_counter() - started
        while app.stats is None:
            await pilot.pause(0.005)
        await pilot.pause()
        figures["store_figures_s"] = time.perf_counter() - started
        while app.snapshot is None or not app.query_one(OverviewView).query_one("#types").row_count:
            await pilot.pause(0.02)
        await pilot.pause()
        figures["types_listed_s"] = time.perf_counter() - started      # the preview, on 1M spans
        while not app.analysis_complete:
            await pilot.pause(0.05)
        await app.workers.wait_for_complete()
        await pilot.pause()
        figures["overview_filled_s"] = time.perf_counter() - started
        figures["spans"] = app.stats.spans
        figures["flows"] = len(app.snapshot.flows)
        await pilot.press("2", "slash", *BIG_TRACE, "enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        while app.query_one("#flow-table").row_count != 1:     # the list is remounted when filled
            await pilot.pause(0.01)
        app.query_one("#flow-table").focus()
        times = []
        for _ in range(openings):
            # Not pilot.press: it also waits for the whole process to go idle.
            t = time.perf_counter()
            app.simulate_key("enter")
            while not (isinstance(app.screen, FlowScreen) and app.screen.waterfall_data is not None
                       and app.screen.query_one(Waterfall).rendered_at > t):
                await asyncio.sleep(0.001)
            times.append(app.screen.query_one(Waterfall).rendered_at - t)   # lines drawn
            assert len(app.screen.waterfall_data.rows) >= BIG_SPANS
            await pilot.press("escape")
            await app.workers.wait_for_complete()
            await pilot.pause()
        figures["open_flow_s"] = statistics.median(times)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, default=Path(tempfile.gettempdir()) / "tracekit-tui-1m.duckdb",
                        help="the benchmark store (built once if missing)")
    parser.add_argument("--source", type=Path, help="a demo store to replicate (default: make one)")
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--openings", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not args.store.exists():
        source = args.source or demo_store(args.store.parent, "tui-bench-demo.duckdb", "45s")
        build_store(source, args.store, args.spans)
    runs = [asyncio.run(one_run(args.store, args.openings)) for _ in range(args.runs)]
    keys = ("first_paint_s", "store_figures_s", "types_listed_s", "overview_filled_s", "open_flow_s")
    result = {"store": str(args.store), "spans": runs[0]["spans"], "flows": runs[0]["flows"],
              "runs": runs, **{k: statistics.median(r[k] for r in runs) for k in keys}}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"store {result['store']}: {result['spans']:,} spans, {result['flows']:,} flows; "
          f"medians of {len(runs)} runs")
    print(f"  first paint (loading state)      {result['first_paint_s']:.3f} s   target ≤ 1 s")
    print(f"  store figures on screen          {result['store_figures_s']:.3f} s")
    print(f"  flow types listed (preview)      {result['types_listed_s']:.3f} s")
    print(f"  overview filled (analysis done)  {result['overview_filled_s']:.3f} s")
    print(f"  open a {BIG_SPANS}-span flow              {result['open_flow_s']:.3f} s   target ≤ 0.5 s")


if __name__ == "__main__":
    main()
