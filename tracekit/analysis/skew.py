"""Clock skew, corrected at read time the way Jaeger's adjuster does it.

A child span from another host that does not fit in its parent (it starts before it, or ends
after it) but is shorter than it is moved, with its whole subtree, so that it sits in the
middle of the parent: the network latency is assumed equal both ways. Children on the same
host as their parent share its clock and are never moved. Stored data is not changed: the
shifts apply to the analyzer's copy, and each is reported.
"""

from __future__ import annotations

from tracekit.analysis.model import SkewAdjustment


def skew_of(child_start: int, child_end: int, parent_start: int, parent_end: int) -> int:
    """How far the child must move (ns) to sit centred in its parent; 0 when it fits or
    when it is longer than the parent (then nothing can be inferred)."""
    parent_duration = parent_end - parent_start
    child_duration = child_end - child_start
    if parent_duration < child_duration:
        return 0
    if child_start >= parent_start and child_end <= parent_end:
        return 0
    latency = (parent_duration - child_duration) // 2
    return parent_start + latency - child_start


def adjust(start: dict[str, int], end: dict[str, int], host: dict[str, str],
           children: dict[str, list[str]], roots: list[str]) -> list[SkewAdjustment]:
    """Shift start/end in place, top-down from each root; returns the adjustments made."""
    adjustments: list[SkewAdjustment] = []
    stack = [(root, 0) for root in roots]
    while stack:
        key, inherited = stack.pop()
        if inherited:
            start[key] += inherited
            end[key] += inherited
        for child in children.get(key, ()):
            shift = inherited
            if host.get(child) != host.get(key):
                own = skew_of(start[child] + inherited, end[child] + inherited,
                              start[key], end[key])
                if own:
                    adjustments.append(SkewAdjustment(
                        child, own, f"clock skew: {host.get(child)} vs {host.get(key)}; "
                        f"moved {own / 1e6:+.3f} ms to sit inside its parent"))
                shift += own
            stack.append((child, shift))
    return adjustments
