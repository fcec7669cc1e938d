"""What is different about a window's failing and slow flows: the attribute values most
over-represented in them against the other flows (report/different.sql)."""

from __future__ import annotations

from dataclasses import dataclass

from tracekit.report import queries

SAMPLE_FLOWS = 2000     # flows read on each side, at most
MIN_FLOWS = 3           # a value in fewer failing or slow flows proves nothing
MIN_LIFT = 0.10         # share among them minus share among the others, at least
SHOWN = 10


@dataclass(frozen=True)
class Difference:
    source: str             # 'span' or 'resource'
    attribute: str
    value: str
    flows: int              # failing or slow flows that have it
    of_flows: int           # failing or slow flows compared
    share: float
    other_flows: int        # other flows that have it
    of_other: int
    other_share: float


def params() -> dict:
    """The query's own parameters, beside the window's."""
    return {"sample": SAMPLE_FLOWS, "min_flows": MIN_FLOWS, "min_lift": MIN_LIFT, "limit": SHOWN}


def differences(result: queries.Result) -> tuple[Difference, ...]:
    """The query's rows; attributes that say the same thing (`host.name` and `k8s.pod.name`
    both the pod, in the same flows) as one, their names joined."""
    merged: dict[tuple, list] = {}
    for r in result.rows:
        same = (r["source"], r["value"], r["picked_flows"], r["other_flows"])
        merged.setdefault(same, [r, []])[1].append(r["attribute"])
    return tuple(Difference(r["source"], ", ".join(names), r["value"], r["picked_flows"],
                            r["n_picked"], r["picked_share"], r["other_flows"], r["n_other"],
                            r["other_share"]) for r, names in merged.values())


def of_window(store, window: tuple[int, int], baseline: tuple[int, int],
              type_ids: tuple[str, ...] | None = None) -> tuple[Difference, ...]:
    return differences(queries.run(store, "different", {
        "start": queries.timestamp(window[0]), "end": queries.timestamp(window[1]),
        "base_start": queries.timestamp(baseline[0]), "base_end": queries.timestamp(baseline[1]),
        "type_ids": type_ids, **params()}))


def line(d: Difference) -> str:
    """One difference in words."""
    return (f"{d.attribute} = {d.value} ({d.source}): {d.flows} of {d.of_flows} failing or slow "
            f"flows ({d.share:.0%}) against {d.other_flows} of {d.of_other} others ({d.other_share:.0%})")
