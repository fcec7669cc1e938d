"""Critical paths on hand-built traces: Jaeger UI's answers within a trace, and tracekit's
continuation through broker waits across traces."""

from __future__ import annotations

import pytest

from tracekit.analysis.critical_path import Node, flow_critical_path, trace_critical_path
from tracekit.analysis.model import Section


def tree(spec: dict[str, tuple[int, int, str | None]]) -> dict[str, Node]:
    """{key: (start, end, parent)} → nodes with children filled in (in the given order)."""
    nodes = {k: Node(k, s, e, p) for k, (s, e, p) in spec.items()}
    for node in nodes.values():
        if node.parent:
            nodes[node.parent].children.append(node.key)
    return nodes


def path(sections: list[Section]) -> list[tuple]:
    return [(s.span, s.start_ns, s.end_ns) + ((s.kind,) if s.kind != "span" else ()) for s in sections]


def test_sequential_children_each_take_their_turn():
    nodes = tree({"A": (0, 100, None), "B": (10, 40, "A"), "C": (50, 90, "A")})
    assert path(trace_critical_path(nodes, "A")) == [
        ("A", 0, 10), ("B", 10, 40), ("A", 40, 50), ("C", 50, 90), ("A", 90, 100)]


def test_overlapping_children_hand_over_at_the_later_start():
    # B and C overlap; C finishes last, and B ended after C started, so B is not on the path
    # before C (Jaeger takes only a child that finished before the point reached).
    nodes = tree({"A": (0, 100, None), "B": (10, 60, "A"), "C": (40, 90, "A")})
    assert path(trace_critical_path(nodes, "A")) == [
        ("A", 0, 40), ("C", 40, 90), ("A", 90, 100)]


def test_child_outliving_its_parent_is_clipped_to_the_parent():
    nodes = tree({"A": (0, 100, None), "B": (20, 150, "A")})
    assert path(trace_critical_path(nodes, "A")) == [("A", 0, 20), ("B", 20, 100)]


def test_child_wholly_outside_its_parent_is_dropped_with_its_subtree():
    nodes = tree({"A": (0, 100, None), "B": (10, 30, "A"), "late": (120, 200, "A"),
                  "late-child": (130, 140, "late")})
    assert path(trace_critical_path(nodes, "A")) == [("A", 0, 10), ("B", 10, 30), ("A", 30, 100)]


def test_child_starting_before_its_parent_is_clipped_at_the_parent_start():
    nodes = tree({"A": (50, 100, None), "B": (20, 70, "A")})
    assert path(trace_critical_path(nodes, "A")) == [("B", 50, 70), ("A", 70, 100)]


def test_back_to_back_children_follow_jaegers_strict_rule():
    # Walking back from D (starts at 60), Jaeger takes a child that ended strictly before 60:
    # C ended at 60 exactly, so the parent gets 30-60 and the path goes on to B. Users compare
    # with Jaeger UI, so tracekit gives the same answer; no empty section is emitted.
    nodes = tree({"A": (0, 90, None), "B": (0, 30, "A"), "C": (30, 60, "A"), "D": (60, 90, "A")})
    assert path(trace_critical_path(nodes, "A")) == [("B", 0, 30), ("A", 30, 60), ("D", 60, 90)]


def test_nested_children_go_down_the_last_finishing_chain():
    nodes = tree({"A": (0, 100, None), "B": (10, 90, "A"), "C": (20, 50, "B"), "D": (55, 80, "B")})
    assert path(trace_critical_path(nodes, "A")) == [
        ("A", 0, 10), ("B", 10, 20), ("C", 20, 50), ("B", 50, 55), ("D", 55, 80),
        ("B", 80, 90), ("A", 90, 100)]


def test_async_consumer_after_a_broker_wait_extends_the_path_into_the_consumer():
    # checkout's request publishes at 30-40 and answers at 50; the consumer (another trace)
    # starts at 70, after 30 of broker wait, and works until 120.
    nodes = tree({"req": (0, 50, None), "pub": (30, 40, "req"),
                  "consume": (70, 120, None), "db": (80, 110, "consume")})
    nodes["consume"].producer = "pub"
    sections = flow_critical_path(nodes, ["req", "consume"])
    assert path(sections) == [
        ("req", 0, 30), ("pub", 30, 40), ("consume", 40, 70, "broker_wait"),
        ("consume", 70, 80), ("db", 80, 110), ("consume", 110, 120)]
    assert sum(s.duration_ns for s in sections) == 120   # flow start to the last end


def test_flow_path_starts_from_the_tree_that_ends_last():
    nodes = tree({"req": (0, 50, None), "pub1": (10, 20, "req"), "pub2": (20, 30, "req"),
                  "fast": (25, 35, None), "slow": (40, 200, None)})
    nodes["fast"].producer = "pub1"
    nodes["slow"].producer = "pub2"
    # pub1 ended at 20, exactly when pub2 started: not *before* it, so Jaeger's rule keeps
    # the request itself on the path there.
    assert path(flow_critical_path(nodes, ["req", "fast", "slow"])) == [
        ("req", 0, 20), ("pub2", 20, 30), ("slow", 30, 40, "broker_wait"), ("slow", 40, 200)]


def test_single_trace_flow_path_equals_the_trace_path():
    nodes = tree({"A": (0, 100, None), "B": (10, 40, "A"), "C": (50, 90, "A")})
    assert flow_critical_path(nodes, ["A"]) == trace_critical_path(nodes, "A")


# Every tree above, as the store's analysis walks it: the compiled walk (C, tracekit/analysis/
# _walk.c) and the Python walk over a whole analysis must give the answer the edge cases pin.
EDGE_CASES = {
    "sequential": ({"A": (0, 100, None), "B": (10, 40, "A"), "C": (50, 90, "A")}, {}),
    "overlapping": ({"A": (0, 100, None), "B": (10, 60, "A"), "C": (40, 90, "A")}, {}),
    "outliving": ({"A": (0, 100, None), "B": (20, 150, "A")}, {}),
    "outside": ({"A": (0, 100, None), "B": (10, 30, "A"), "late": (120, 200, "A"),
                 "late-child": (130, 140, "late")}, {}),
    "starting-before": ({"A": (50, 100, None), "B": (20, 70, "A")}, {}),
    "back-to-back": ({"A": (0, 90, None), "B": (0, 30, "A"), "C": (30, 60, "A"),
                      "D": (60, 90, "A")}, {}),
    "nested": ({"A": (0, 100, None), "B": (10, 90, "A"), "C": (20, 50, "B"),
                "D": (55, 80, "B")}, {}),
    "broker-wait": ({"req": (0, 50, None), "pub": (30, 40, "req"), "consume": (70, 120, None),
                     "db": (80, 110, "consume")}, {"consume": "pub"}),
    "last-ending-tree": ({"req": (0, 50, None), "pub1": (10, 20, "req"), "pub2": (20, 30, "req"),
                          "fast": (25, 35, None), "slow": (40, 200, None)},
                         {"fast": "pub1", "slow": "pub2"}),
}


def _as_analysis(spec: dict, producers: dict):
    """One flow of the hand-built tree, as the analyzer's frames hold it."""
    import pandas as pd

    from tracekit.analysis.model import CALL, MESSAGE, Analysis

    keys = list(spec)
    spans = pd.DataFrame({"key": keys, "flow_id": "f", "start_adj": [s for s, _, _ in spec.values()],
                          "end_adj": [e for _, e, _ in spec.values()], "service_name": "svc",
                          "name": keys, "trace_id": "t", "span_id": keys})
    pos = {k: i for i, k in enumerate(keys)}
    edges = [(p, k, CALL, "parent") for k, (_, _, p) in spec.items() if p]
    edges += [(p, k, MESSAGE, "link") for k, p in producers.items()]
    edges = pd.DataFrame(edges, columns=["src", "dst", "kind", "via"])
    edges["src_pos"], edges["dst_pos"] = edges["src"].map(pos), edges["dst"].map(pos)
    edges["flow_id"] = "f"
    return Analysis(spans, edges, pd.DataFrame())


@pytest.mark.parametrize("case", list(EDGE_CASES))
def test_the_compiled_and_python_walks_give_the_edge_cases_answers(case):
    from tracekit.analysis import _walk
    from tracekit.analysis.critical_paths import _critical_paths_compiled, _critical_paths_python

    spec, producers = EDGE_CASES[case]
    nodes = tree(spec)
    for consumer, producer in producers.items():
        nodes[consumer].producer = producer
    roots = [k for k, (_, _, p) in spec.items() if p is None]
    expected = [(s.span, s.start_ns, s.end_ns, s.kind) for s in flow_critical_path(nodes, roots)]
    analysis = _as_analysis(spec, producers)
    for walk in (lambda a: _critical_paths_compiled(a, _walk), _critical_paths_python):
        frame = walk(analysis).sort_values("seq")
        got = [(r.span, r.start_ns, r.end_ns, r.segment) for r in frame.itertuples()]
        assert got == expected, (case, walk)
