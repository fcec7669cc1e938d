"""Finding the incident window: the stretch of time in which some workflow's flows failed
more often, stayed incomplete, or ran slower than they usually do in the range searched; where
no workflow shifted, the stretch in which some operation's spans took longer than they usually
do (median or tail: a slower call among parallel ones, or one that slowed a minority of flows,
leaves the flows' median durations as they were).

Shifts are measured per workflow (root operation) rather than per flow type: a failing flow
takes another path than a healthy one and so has a flow type of its own, which only exists
during the incident and would have nothing to shift against."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from tracekit.report import queries
from tracekit.report.model import Figure, Window

NICE_WIDTHS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400)
TARGET_BUCKETS = 60
MIN_FLOWS = 2               # a bucket judged on fewer flows proves nothing
MIN_ERROR_FLOWS = 2
MIN_ERROR_SHIFT = 0.10      # error share above the workflow's usual, in points
MIN_LATENCY_RATIO = 2.0     # median duration above the usual median, and by at least
MIN_LATENCY_MS = 50.0
MIN_LATENCY_FLOWS = 3       # a median of fewer flows is noise
USUAL_QUANTILE = 0.25       # "usual" = a low quantile over buckets: an incident may fill half the range
MAX_GAP_BUCKETS = 1         # anomalous buckets this close belong to one incident
MIN_OPERATION_MS = 20.0     # an operation's span durations above their usual, by at least
MIN_OPERATION_SPANS = 5     # a median of fewer spans is noise
MIN_TAIL_SPANS = 10         # a tail (90th percentile) of fewer spans is noise
# An operation's usual: the median over buckets (its durations vary more than a workflow's
# median: a low quantile made every other bucket of a busy demo "slow"); an incident longer
# than half the range is the workflows' shifts' to find.
OPERATION_USUAL_QUANTILE = 0.5


def bucket_width_ns(length_ns: int) -> int:
    """A round bucket width giving about TARGET_BUCKETS buckets over `length_ns`."""
    wanted = length_ns / TARGET_BUCKETS / 1e9
    for width in NICE_WIDTHS_S:
        if width >= wanted:
            return width * 1_000_000_000
    return NICE_WIDTHS_S[-1] * 1_000_000_000


@dataclass(frozen=True)
class Detection:
    window: Window | None           # the strongest shift, or None
    others: tuple[Window, ...]      # other shifts in the range, strongest first
    bucket_ns: int
    figure: Figure


def detect(store, search: tuple[int, int], type_ids: tuple[str, ...] | None = None) -> Detection:
    """The strongest shift in `search` (flows started in it), from per-bucket figures."""
    width = bucket_width_ns(search[1] - search[0])
    origin = search[0]
    result = queries.run(store, "shifts", {
        "from": queries.timestamp(search[0]), "to": queries.timestamp(search[1]),
        "origin_ns": origin, "bucket_ns": width, "type_ids": type_ids})
    score: dict[int, float] = defaultdict(float)   # buckets that start or hold an incident
    weak: set[int] = set()                          # buckets that only prolong one
    by_workflow: dict[tuple, list[dict]] = defaultdict(list)
    for row in result.rows:
        by_workflow[(row["root_service"], row["root_name"])].append(row)
    for rows in by_workflow.values():
        judged = [r for r in rows if r["flows"] >= MIN_FLOWS]
        if len(judged) < 3:
            continue
        usual_errors = float(np.quantile([(r["errors"] + r["incomplete"]) / r["flows"] for r in judged],
                                         USUAL_QUANTILE))
        medians = [r["p50_ms"] for r in judged if r["timed"] >= MIN_LATENCY_FLOWS]
        usual_p50 = float(np.quantile(medians, USUAL_QUANTILE)) if medians else float("inf")
        slow_from = max(MIN_LATENCY_RATIO * usual_p50, usual_p50 + MIN_LATENCY_MS)
        slow = {r["bucket"] for r in judged
                if r["timed"] >= MIN_LATENCY_FLOWS and r["p50_ms"] >= slow_from}
        for r in judged:
            bad = r["errors"] + r["incomplete"]
            excess = bad - usual_errors * r["flows"]
            if bad / r["flows"] - usual_errors >= MIN_ERROR_SHIFT and bad > 0:
                weak.add(r["bucket"])
                if bad >= MIN_ERROR_FLOWS:
                    score[r["bucket"]] += excess
            # A slow bucket counts when a neighbour is slow too: one slow bucket is noise.
            if r["bucket"] in slow and ({r["bucket"] - 1, r["bucket"] + 1} & slow):
                score[r["bucket"]] += r["flows"] / 2     # at least half its flows were slow
        weak |= slow
    if not score:
        # No workflow shifted: an operation may have (a slower call among parallel ones, or in
        # a minority of flows). Only then: on a busy range, operations' own noise would
        # outweigh a workflow's clear shift.
        op_result = queries.run(store, "operation_shifts", {
            "from": queries.timestamp(search[0]), "to": queries.timestamp(search[1]),
            "origin_ns": origin, "bucket_ns": width, "type_ids": type_ids})
        slowed = _slower_operations(op_result.rows)
        for bucket, spans in slowed.items():
            if {bucket - 1, bucket + 1} & slowed.keys():
                score[bucket] += spans / 2
    segments: list[list[int]] = []
    for bucket in sorted(score):
        if segments and bucket - segments[-1][-1] <= MAX_GAP_BUCKETS + 1:
            segments[-1].append(bucket)
        else:
            segments.append([bucket])
    # Hysteresis: a shift is found on clear buckets, then followed while the buckets on
    # either side still lean the same way (one failure in a few flows is noise alone, not
    # next to a clear shift).
    for segment in segments:
        while segment[0] - 1 in weak:
            segment.insert(0, segment[0] - 1)
        while segment[-1] + 1 in weak:
            segment.append(segment[-1] + 1)
    ranked = sorted(segments, key=lambda s: -sum(score[b] for b in s))
    windows = [Window(max(origin + s[0] * width, search[0]), min(origin + (s[-1] + 1) * width, search[1]),
                      "detected") for s in ranked]
    return Detection(windows[0] if windows else None, tuple(windows[1:]), width,
                     result.figure("shifts per workflow and bucket"))


def _slower_operations(rows: list[dict]) -> dict[int, int]:
    """Buckets in which some operation's spans took longer (their median, or their 90th
    percentile over enough spans) than twice its usual and MIN_OPERATION_MS more: bucket →
    the most spans such an operation ran slower in (operations that slow together, a callee
    and the callers waiting for it, count once)."""
    by_operation: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        by_operation[(row["service_name"], row["name"])].append(row)
    slowed: dict[int, int] = {}
    for rows in by_operation.values():
        judged = [r for r in rows if r["spans"] >= MIN_OPERATION_SPANS]
        if len(judged) < 3:
            continue
        limits = {}
        for column, enough in (("p50_ms", MIN_OPERATION_SPANS), ("p90_ms", MIN_TAIL_SPANS)):
            values = [r[column] for r in judged if r["spans"] >= enough]
            if len(values) >= 3:
                usual = float(np.quantile(values, OPERATION_USUAL_QUANTILE))
                limits[column] = (max(MIN_LATENCY_RATIO * usual, usual + MIN_OPERATION_MS), enough)
        for r in judged:
            if any(r["spans"] >= enough and r[column] >= limit
                   for column, (limit, enough) in limits.items()):
                slowed[r["bucket"]] = max(slowed.get(r["bucket"], 0), r["spans"])
    return slowed
