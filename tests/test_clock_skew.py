"""Clock skew corrected at read time as Jaeger does: children from another host that do not
fit in their parent are centred in it, with their subtree; same-host children never move."""

from __future__ import annotations

from tracekit.analysis.skew import adjust, skew_of


def run(spans, children, roots):
    start = {k: v[0] for k, v in spans.items()}
    end = {k: v[1] for k, v in spans.items()}
    host = {k: v[2] for k, v in spans.items()}
    adjustments = adjust(start, end, host, children, roots)
    return start, end, {a.span: a.shift_ns for a in adjustments}


def test_child_starting_before_its_parent_on_another_host_is_centred_in_it():
    start, end, shifts = run({"client": (1000, 1100, "a"), "server": (950, 1030, "b")},
                             {"client": ["server"]}, ["client"])
    # parent 100 long, child 80: 10 of latency each way, so the child starts at 1010.
    assert (start["server"], end["server"]) == (1010, 1090)
    assert shifts == {"server": 60}


def test_child_ending_after_its_parent_is_moved_back():
    start, end, _ = run({"client": (0, 100, "a"), "server": (60, 140, "b")},
                        {"client": ["server"]}, ["client"])
    assert (start["server"], end["server"]) == (10, 90)


def test_the_whole_subtree_moves_with_the_child():
    start, end, shifts = run({"client": (1000, 1100, "a"), "server": (950, 1030, "b"),
                              "db": (960, 970, "b")},
                             {"client": ["server"], "server": ["db"]}, ["client"])
    assert (start["db"], end["db"]) == (1020, 1030)
    assert "db" not in shifts          # it moved with its parent, not by its own skew


def test_same_host_children_are_never_moved():
    start, end, shifts = run({"parent": (100, 200, "a"), "child": (50, 120, "a")},
                             {"parent": ["child"]}, ["parent"])
    assert (start["child"], end["child"], shifts) == (50, 120, {})


def test_child_longer_than_its_parent_cannot_be_corrected():
    assert skew_of(0, 500, 100, 200) == 0


def test_child_that_fits_is_left_alone():
    assert skew_of(120, 180, 100, 200) == 0
