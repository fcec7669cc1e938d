"""What the terminal UI reads from a store's analysis tables for a time window, and one flow's
waterfall from that flow's spans alone, over the fixed shop store (tests/tui_data/shop.jsonl:
orders every 500 ms, 7, 9 and 10 failing at payment, and checkouts 200 ms after each)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import tracekit
from tests.conftest import tracekit as cli
from tests.tui_data.generate import MS, T0
from tui import flow_data, window_data
from tui.window_data import FlowQuery

FIXTURE = Path(__file__).parent / "tui_data" / "shop.jsonl"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    db = tmp_path_factory.mktemp("tui-data") / "shop.duckdb"
    cli("import", "--db", str(db), str(FIXTURE))
    with tracekit.open(db) as opened:
        yield opened


def _window(from_ms: float, to_ms: float) -> tuple[int, int]:
    return T0 + int(from_ms * MS), T0 + int(to_ms * MS)


def _by_name(rows) -> dict:
    return {r["name"].rsplit(" #", 1)[0]: r for r in rows.to_dict(orient="records")}


def test_flow_types_count_only_the_flows_started_in_the_window(store):
    early = _by_name(window_data.type_rows(store, _window(0, 2000)))
    late = _by_name(window_data.type_rows(store, _window(3400, 5600)))
    whole = _by_name(window_data.type_rows(store, None))

    order, checkout = "load-generator shopper order", "load-generator shopper checkout"
    assert {k: (r["flows"], r["failed"]) for k, r in early.items()} == {order: (4, 0), checkout: (4, 0)}
    assert {k: (r["flows"], r["failed"]) for k, r in late.items()} == {order: (5, 3), checkout: (4, 0)}
    assert late[order]["error_rate"] == pytest.approx(0.6)
    assert {k: r["flows"] for k, r in whole.items()} == {order: 12, checkout: 12}
    assert whole[order]["style"] == "orchestrated" and whole[checkout]["style"] == "choreographed"
    assert whole[order]["p50_ms"] == pytest.approx(60.0)
    assert len(whole[order]["trend"]) == 16


def test_flow_types_filter_by_text_and_sort_in_sql(store):
    by_name = window_data.type_rows(store, None, sort="name")
    assert list(by_name["name"]) == sorted(by_name["name"])
    by_errors = window_data.type_rows(store, None, sort="error_rate")
    assert by_errors["error_rate"].iat[0] == pytest.approx(0.25)
    assert list(window_data.type_rows(store, None, text="CHOREO")["style"]) == ["choreographed"]


def test_flows_list_is_filtered_sorted_and_limited_by_the_query(store):
    rows, total = window_data.flow_rows(store, FlowQuery(), limit=5)
    assert total == 24 and len(rows) == 5
    assert list(rows["start_ns"]) == sorted(rows["start_ns"], reverse=True)     # newest first

    failed, total = window_data.flow_rows(store, FlowQuery(failed_only=True, sort="start",
                                                           descending=False))
    assert total == 3 and list(failed["key"]) == ["o-0007", "o-0009", "o-0010"]

    longest, _ = window_data.flow_rows(store, FlowQuery(sort="duration"), limit=12)
    assert set(longest["key"].str[:2]) == {"o-"}          # orders take 60 ms, checkouts 47

    type_id = store.scalar("SELECT type_id FROM flow_types WHERE root_name = 'shopper checkout'")
    windowed, total = window_data.flow_rows(store, FlowQuery(type_id=type_id,
                                                             window=_window(0, 1000)))
    assert total == 2 and list(windowed["key"]) == ["c-0001", "c-0000"]


@pytest.mark.parametrize("search, keys", [
    ("o-0007", ["o-0007"]),                                    # a business key
    ("declined by the gateway", ["o-0010", "o-0009", "o-0007"]),    # error text
    ("PaymentGatewayError", ["o-0010", "o-0009", "o-0007"]),        # an exception type
])
def test_flows_list_search_finds_flows_by_key_and_by_error_text(store, search, keys):
    rows, total = window_data.flow_rows(store, FlowQuery(search=search))
    assert list(rows["key"]) == keys and total == len(keys)


def test_flows_list_search_finds_a_flow_by_a_trace_of_it_and_by_its_id(store):
    consumer = store.scalar("SELECT trace_id FROM spans WHERE kind = 'CONSUMER' "
                            "AND service_name = 'fraud-detection' "
                            "AND attributes['order.id']::VARCHAR = 'c-0003'")
    by_trace, _ = window_data.flow_rows(store, FlowQuery(search=consumer.upper()))
    assert list(by_trace["key"]) == ["c-0003"]              # the consumer's trace is in its flow
    flow_id = by_trace["flow_id"].iat[0]
    by_id, _ = window_data.flow_rows(store, FlowQuery(search=flow_id[:10]))
    assert list(by_id["flow_id"]) == [flow_id]
    by_service, total = window_data.flow_rows(store, FlowQuery(search="fraud-detection"))
    assert total == 12 and set(by_service["key"].str[:2]) == {"c-"}


def test_service_map_of_all_time_is_the_stored_service_edges(store):
    columns = ["src_service", "dst_service", "kind", "calls", "errors", "error_rate", "p50_ms",
               "p95_ms", "p99_ms"]
    mine = window_data.service_map(store, None)[columns]
    stored = store.df(f"SELECT {', '.join(columns)} FROM service_edges "
                      "ORDER BY src_service, kind, dst_service")
    pd.testing.assert_frame_equal(mine, stored)
    early = window_data.service_map(store, _window(0, 1000))
    assert set(early["calls"]) == {2}                       # orders 0-1, checkouts 0-1


def test_root_causes_compare_the_window_with_as_long_before_it():
    assert window_data.cause_windows((100, 150), None) == ((100, 150), (50, 100))
    # No window: the newer half of the data against the older, at most the last 5 minutes.
    assert window_data.cause_windows(None, (0, 99)) == ((50, 100), (0, 50))
    five = window_data.CAUSES_LENGTH_NS
    hour = 12 * five
    assert window_data.cause_windows(None, (0, hour - 1)) == ((hour - five, hour),
                                                              (hour - 2 * five, hour - five))
    assert window_data.cause_windows(None, None) == (None, None)


def test_failures_analyze_only_the_flows_of_the_window_and_its_baseline(store, monkeypatch):
    from tracekit.analysis import windowed

    read = []
    real = windowed.window_analysis
    monkeypatch.setattr(windowed, "window_analysis",
                        lambda s, start, end, *rest: read.append((start, end)) or real(s, start, end, *rest))
    found = window_data.causes(store, _window(3400, 5600))
    assert (found.window, found.baseline) == (_window(3400, 5600), _window(1200, 3400))
    assert read == [_window(1200, 5600)]
    assert found.ranked == []        # 3 of 5 flows failed against 0 of 4: not significant yet


def test_waterfall_of_a_flow_marks_the_stored_critical_path_and_the_origin(store):
    flow_id = store.scalar("SELECT flow_id FROM flows WHERE business_key = 'o-0007'")
    waterfall = flow_data.waterfall(store, flow_id)

    assert len(waterfall.rows) == 8 and waterfall.summary["status"] == "failed"
    assert waterfall.summary["type"].startswith("load-generator shopper order")
    critical = {r.key for r in waterfall.rows if r.critical and not r.wait}
    stored = store.arrow("SELECT trace_id || ':' || span_id AS key FROM critical_path "
                         "WHERE flow_id = ? AND segment = 'span'", [flow_id]).column(0).to_pylist()
    assert critical == set(stored)
    [origin] = [r for r in waterfall.rows if r.origin]
    assert (origin.service, origin.name) == ("payment", "charge card")


def test_waterfall_of_an_unknown_flow_says_so(store):
    from tracekit.errors import TracekitError

    with pytest.raises(TracekitError, match="not in the store's analysis"):
        flow_data.waterfall(store, "no-such-flow")


# --- the SQL console's text, history, cancellation and export --------------------------------


def test_statement_at_the_cursor_ignores_quoted_and_commented_semicolons():
    from tui.sql_text import statement_at

    text = "SELECT ';' AS a; -- not; here\nSELECT 2 /* ; */ AS b;\n\n"
    assert statement_at(text, 3) == "SELECT ';' AS a"
    assert statement_at(text, text.index("2")) == "-- not; here\nSELECT 2 /* ; */ AS b"
    assert statement_at(text, len(text)) == statement_at(text, text.index("2"))    # blank tail


def test_completion_offers_the_stores_names_and_attribute_keys():
    from tui.sql_text import completions, word_before

    tables = {"spans": ["span_id", "service_name"], "span_rows": ["span_id"]}
    names = [c.text for c in completions(word_before("SELECT * FROM sp"), tables, [])]
    assert names[:2] == ["spans", "span_rows"] and "span_id" in names
    keys = completions(word_before("WHERE attributes['ord"), tables, ["http.method", "order.id"])
    assert [(c.text, c.kind) for c in keys] == [("order.id", "attribute key")]
    assert word_before("SELECT ") is None


def test_sql_history_file_survives_a_torn_line_and_keeps_the_newest(tmp_path, monkeypatch):
    from tui import sql_history
    from tui.sql_history import SqlHistory, default_path

    monkeypatch.setattr(sql_history, "KEPT", 3)
    path = tmp_path / "state" / "sql_history"
    first = SqlHistory(path)
    for query in ("SELECT 1", "SELECT 2", "SELECT 2", "SELECT\n3"):
        first.add(query)
    with path.open("a") as out:
        out.write('{"sql": "SELECT 4')         # a crash while writing
    again = SqlHistory(path)
    assert again.queries == ["SELECT 1", "SELECT 2", "SELECT\n3"]
    again.add("SELECT 5")
    assert SqlHistory(path).queries == ["SELECT 2", "SELECT\n3", "SELECT 5"]
    assert default_path({"XDG_STATE_HOME": "/x"}) == Path("/x/tracekit/sql_history")
    assert default_path({"TRACEKIT_SQL_HISTORY": "/y/h", "XDG_STATE_HOME": "/x"}) == Path("/y/h")


def test_a_cancelled_query_raises_query_cancelled_and_the_store_goes_on(store):
    from tracekit.errors import QueryCancelled
    from tracekit.readonly import Cancellation

    cancel = Cancellation()
    cancel.cancel()
    with pytest.raises(QueryCancelled):
        store.arrow("SELECT count(*) FROM spans", cancel=cancel)
    assert store.scalar("SELECT count(*) FROM spans") == 180


def test_export_writes_the_format_its_extension_names(store, tmp_path):
    import json

    import pyarrow.parquet as pq

    from tui import data

    table = data.run_sql(store, "SELECT span_id, attributes FROM spans ORDER BY span_id", max_rows=None)
    assert pq.read_table(data.export(table, tmp_path / "a.parquet")).num_rows == 180
    rows = json.loads(data.export(table, tmp_path / "a.JSON").read_text())
    assert len(rows) == 180 and isinstance(rows[0]["attributes"], dict)
    assert (data.export(table, tmp_path / "a.csv")).read_text().count("\n") == 181
    with pytest.raises(ValueError, match=r"\.csv, \.parquet, \.json"):
        data.export(table, tmp_path / "a.xlsx")


def test_a_flow_types_trends_show_its_flows_error_rate_and_p95_per_stretch_of_the_window():
    per_bucket = [{"bucket": 0, "flows": 10, "failed": 10, "p95_ms": 100.0},
                  {"bucket": 2, "flows": 5, "failed": 0, "p95_ms": 50.0},
                  {"bucket": 3, "flows": 10, "failed": 5, "p95_ms": 100.0}]
    flows, errors, p95 = window_data._trends(per_bucket, 4)
    assert flows[1] == errors[1] == p95[1] == " "            # nothing started then
    assert errors[0] == "█" and errors[2] == "▁"             # all failed; none failed
    assert "▁" < errors[3] < "█"                             # half of them
    assert flows[0] == flows[3] == p95[0] == "█" and flows[2] < "█" and p95[2] < "█"
