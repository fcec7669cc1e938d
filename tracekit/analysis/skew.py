"""Clock skew, corrected at read time exactly as Jaeger's adjuster does it
(jaeger model/adjuster/clockskew.go; its test cases are facts in tests/test_clock_skew.py).

Top-down from each root, a span on another host than the one its shift was last worked out
for (or on no known host) is compared with its parent, as the parent stands after its own
adjustment: one that does not fit in the parent but is shorter is moved to sit in the middle
of it (the network latency is assumed equal both ways); one longer than its parent (async, or
the parent timed out) is only moved so that it does not start before it. The shift found
then holds for its descendants on the same host; a descendant on yet another host is compared
afresh. Stored data is not changed: the shifts apply to the analyzer's copy, and each is
reported.
"""

from __future__ import annotations

from tracekit.analysis.model import SkewAdjustment


def skew_of(child_start: int, child_end: int, parent_start: int, parent_end: int) -> int:
    """How far the child must move (ns): to sit centred in its parent when it does not fit
    and is shorter; to start with its parent when it is longer and starts before it; else 0."""
    parent_duration = parent_end - parent_start
    child_duration = child_end - child_start
    if child_duration > parent_duration:
        return parent_start - child_start if child_start < parent_start else 0
    if child_start >= parent_start and child_end <= parent_end:
        return 0
    latency = (parent_duration - child_duration) // 2
    return parent_start + latency - child_start


def adjust(start: dict[str, int], end: dict[str, int], host: dict[str, str],
           children: dict[str, list[str]], roots: list[str]) -> list[SkewAdjustment]:
    """Shift start/end in place, top-down from each root; returns the adjustments worked out
    (a span that only moved with its same-host parent has none of its own)."""
    adjustments: list[SkewAdjustment] = []
    # (span, its parent, the host the shift in force was worked out for, that shift)
    stack = [(root, None, host.get(root), 0) for root in roots]
    while stack:
        key, parent, skew_host, shift = stack.pop()
        own_host = host.get(key)
        if parent is not None and (own_host != skew_host or not own_host):
            shift = skew_of(start[key], end[key], start[parent], end[parent])
            skew_host = own_host
            if shift:
                adjustments.append(SkewAdjustment(
                    key, shift, f"clock skew: {own_host} vs {host.get(parent)}; "
                    f"moved {shift / 1e6:+.3f} ms to sit inside its parent"))
        if shift:
            start[key] += shift
            end[key] += shift
        for child in children.get(key, ()):
            stack.append((child, key, skew_host, shift))
    return adjustments
