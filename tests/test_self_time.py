"""A span's own time: its duration minus what its calls covered, overlaps counted once."""

from __future__ import annotations

import pandas as pd

from tracekit.analysis.flows import self_times


def test_self_time_subtracts_the_union_of_clipped_children():
    spans = pd.DataFrame({"key": ["p", "a", "b", "c", "d", "q"],
                          "start_ns": [0, 10, 20, 60, 90, 200],
                          "end_ns": [100, 30, 50, 70, 120, 260]})
    edges = pd.DataFrame({"src": ["p", "p", "p", "p", "a"], "dst": ["a", "b", "c", "d", "b"],
                          "kind": ["call"] * 4 + ["message"]})
    own = dict(zip(spans["key"], self_times(spans, edges)))
    # Children cover 10-50 (a and b overlap), 60-70 and 90-100 (d clipped): 60 of 100.
    assert own["p"] == 40
    assert own["a"] == 20          # b is a's message child: not subtracted
    assert own["q"] == 60          # no children
