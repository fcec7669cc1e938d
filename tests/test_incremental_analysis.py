"""New spans extend the analysis without redoing the store, with the same answer."""

from __future__ import annotations

import pandas as pd
import pytest

import tracekit
from tracekit.analysis.incremental import LiveAnalysis
from tracekit.analysis.run import analyze_spans
from tracekit.analysis.spans import load


@pytest.fixture(scope="module")
def spans(rabbitmq_demo_run):
    with tracekit.open(rabbitmq_demo_run["db"]) as store:
        return load(store)


def summary(analysis):
    flows = analysis.flows.set_index("flow_id")[
        ["traces", "spans", "errors", "style", "status", "type_id", "failed"]].sort_index()
    edges = sorted(zip(analysis.edges["src"], analysis.edges["dst"], analysis.edges["kind"]))
    return flows, edges


def test_batches_analyzed_as_they_arrive_give_the_whole_store_answer(spans):
    whole = analyze_spans(spans)
    live = LiveAnalysis()
    batches = sorted(spans["batch_id"].unique())
    # Arrive in three uneven parts: consumers before or after their producers' batches.
    cuts = [batches[len(batches) // 5], batches[len(batches) // 2], batches[-1]]
    low = 0
    for cut in cuts:
        part = spans[(spans["batch_id"] > low) & (spans["batch_id"] <= cut)]
        live.update(part)
        low = cut
    assert live.last_batch == batches[-1]
    expected_flows, expected_edges = summary(whole)
    got_flows, got_edges = summary(live.analysis)
    pd.testing.assert_frame_equal(got_flows, expected_flows)
    assert got_edges == expected_edges


def test_an_update_reanalyzes_only_the_flows_it_touches(spans):
    live = LiveAnalysis()
    batches = sorted(spans["batch_id"].unique())
    live.update(spans[spans["batch_id"] <= batches[-2]])
    live.update(spans[spans["batch_id"] == batches[-1]])
    assert 0 < live.reanalyzed_spans < len(spans) / 4
    assert live.update(spans.iloc[0:0]) is live.analysis and live.reanalyzed_spans == 0
