"""Terminal UI benchmark: time to first paint, to the flow types of the default window, to
the flows list, the service map and the failures view, and to open a 500-span flow, on a
store of ~1M (or 10M) spans whose analysis tables are current, or on an existing store (such
as scale.py's; the 500-span flow is added to it and analyzed).

    . .venv/bin/activate
    python benchmarks/tui.py                              # makes the store once, 3 runs
    python benchmarks/tui.py --store /tmp/tui-10m.duckdb --spans 10000000 --runs 3 --json
    python benchmarks/tui.py --store /tmp/tracekit-bench/scale-100000000-1200s-analyzed.duckdb

The store: a real demo run (`tracekit demo --headless`, made once unless --source is given),
its span rows copied in DuckDB SQL with fresh trace, span, message and order ids until there
are --spans of them (as many independent flows of the same shapes, one copy after another in
time), plus one flow of 500 spans (one trace, a 4-ary call tree over eight services), one
ingest batch per second of data, and the analysis tables built as `tracekit analyze
--rebuild` builds them. It is built once and kept (--store). Each run starts the real app
headless (`app.run_test()`) and measures:

- first paint: app start → first screen rendered, in its loading state;
- store figures: → the store's span count and services known (cheap SQL);
- flow types listed: → the flow types of the default window (all) on screen, complete: one
  query over the stored `flows`;
- flows listed: `2` → the newest FLOWS_SHOWN flows of the window in the list;
- service map: `4` → the window's service graph on screen;
- failures ranked: `3` → the root-cause ranking on screen (window all: the last 5 minutes of
  data against the 5 before, analyzed from those flows' spans);
- open flow: `enter` on the 500-span flow in the flows list → its waterfall rendered, from
  an analysis of that flow's spans only (median of --openings openings per run).
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
from tracekit.analysis.ready import behind, bring_up_to_date  # noqa: E402
from tui.app import make_app  # noqa: E402
from tui.flow_view import FlowScreen  # noqa: E402
from tui.flows import FlowsView  # noqa: E402
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
       s.service_name, s.resource_id, 'bench', NULL, NULL, [], [], 1, 0, 0, 0, [], $batch
FROM range($n) AS t(i) JOIN services AS s ON s.n = i % 8
"""


def add_big_flow(db: Path) -> None:
    """The one 500-span flow, in an ingest batch of its own after the store's last, unless
    the store has it already (the analysis tables then lag by that batch)."""
    store = tracekit.open(db, write=True)
    try:
        [(has,)] = store.conn.execute("SELECT count(*) FROM span_rows WHERE trace_id = ?",
                                      [BIG_TRACE]).fetchall()
        if has:
            return
        [(t0, batch)] = store.conn.execute(
            "SELECT (SELECT epoch_ns(max(end_time)) FROM span_rows), "
            "(SELECT max(batch_id) + 1 FROM ingest_batches)").fetchall()
        store.conn.execute(BIG_FLOW, {"trace": BIG_TRACE, "t0": t0 + 1_000_000_000,
                                      "n": BIG_SPANS, "batch": batch})
        store.conn.execute("INSERT INTO ingest_batches (batch_id, received_at, source, spans, "
                           "logs, duplicates) VALUES (?, now(), 'benchmark', ?, 0, 0)",
                           [batch, BIG_SPANS])
    finally:
        store.close()


def build_store(source: Path, target: Path, spans: int) -> None:
    """Copies of the demo run one after another, each in ingest batches of its own, the one
    500-span flow in a batch after them, and the analysis tables built from scratch (as
    `tracekit analyze --rebuild` builds them)."""
    partial = target.with_suffix(".spans")
    replicate(source, partial, spans, logs=False, one_after_another=True, own_batches=True)
    add_big_flow(partial)
    started = time.monotonic()
    bring_up_to_date(partial, rebuild=True, on_progress=lambda done, total: print(
        f"\ranalyzing {target.name}: {done:,} of {total:,} spans "
        f"({done / max(time.monotonic() - started, 1e-9):,.0f} spans/s)",
        end="", file=sys.stderr, flush=True))
    print(file=sys.stderr)
    partial.rename(target)


async def until(condition, step: float = 0.002) -> None:
    """Wait for a condition without waiting for the app to go idle (as pilot.press does)."""
    while not condition():
        await asyncio.sleep(step)


async def timed(pilot, key: str, condition) -> float:
    """Seconds from `key` to `condition`; then the app is left to settle."""
    started = time.perf_counter()
    pilot.app.simulate_key(key)
    await until(condition)
    elapsed = time.perf_counter() - started
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    return elapsed


def _drawn(app, since: float) -> bool:
    """A flow's waterfall is on screen with lines drawn after `since`."""
    if not isinstance(app.screen, FlowScreen):
        return False
    found = app.screen.query(Waterfall)
    return bool(found) and found.first().rendered_at > since


def _text(app, selector: str) -> str:
    return str(app.query_one(selector).render())


async def one_run(db: Path, openings: int) -> dict:
    started = time.perf_counter()
    app = make_app(db, live_interval=None)
    figures: dict = {}
    async with app.run_test(size=(140, 40)) as pilot:
        figures["first_paint_s"] = time.perf_counter() - started
        await until(lambda: app.stats is not None)
        figures["store_figures_s"] = time.perf_counter() - started
        await until(lambda: app.query_one("#types").row_count > 0)
        figures["types_listed_s"] = time.perf_counter() - started
        figures["spans"], figures["flows"] = app.stats.spans, app.stats.flows
        await app.workers.wait_for_complete()
        figures["flows_listed_s"] = await timed(
            pilot, "2", lambda: "newest first" in _text(app, "#flows-note"))
        figures["service_map_s"] = await timed(
            pilot, "4", lambda: app.query_one("#service-map").row_count > 0)
        figures["failures_ranked_s"] = await timed(pilot, "3", lambda: any(
            text in _text(app, "#causes") for text in ("Root causes", "No clear cause")))
        flows = app.query_one(FlowsView)
        await pilot.press("2", "slash", *BIG_TRACE, "enter")
        await until(lambda: len(flows.flow_ids) == 1)
        await app.workers.wait_for_complete()
        await pilot.pause()
        app.query_one("#flow-table").focus()
        times = []
        for _ in range(openings):
            t = time.perf_counter()
            app.simulate_key("enter")
            await until(lambda: _drawn(app, t), 0.001)
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
    else:           # a store of another benchmark's (scale.py's): the flow added, analyzed
        add_big_flow(args.store)
        bring_up_to_date(args.store)
    with tracekit.open(args.store) as store:
        if behind(store) != 0:
            sys.exit(f"{args.store}: its analysis tables could not be brought up to date")
    runs = [asyncio.run(one_run(args.store, args.openings)) for _ in range(args.runs)]
    keys = ("first_paint_s", "store_figures_s", "types_listed_s", "flows_listed_s",
            "service_map_s", "failures_ranked_s", "open_flow_s")
    result = {"store": str(args.store), "spans": runs[0]["spans"], "flows": runs[0]["flows"],
              "runs": runs, **{k: statistics.median(r[k] for r in runs) for k in keys}}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"store {result['store']}: {result['spans']:,} spans, {result['flows']:,} flows; "
          f"medians of {len(runs)} runs")
    print(f"  first paint (loading state)      {result['first_paint_s']:.3f} s   target ≤ 1 s")
    print(f"  store figures on screen          {result['store_figures_s']:.3f} s")
    print(f"  flow types listed (window all)   {result['types_listed_s']:.3f} s   target ≤ 1 s")
    print(f"  flows listed (2)                 {result['flows_listed_s']:.3f} s")
    print(f"  service map (4)                  {result['service_map_s']:.3f} s")
    print(f"  failures ranked (3)              {result['failures_ranked_s']:.3f} s")
    print(f"  open a {BIG_SPANS}-span flow              {result['open_flow_s']:.3f} s   target ≤ 0.3 s")

if __name__ == "__main__":
    main()
