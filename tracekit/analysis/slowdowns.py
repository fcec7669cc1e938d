"""Slowdown evidence for the root-cause ranking (causes.py): whose time each section of the
flows' critical paths is (`contributions`), callers whose calls all slowed on their side
(`slow_callers`), and slowdowns judged within each flow type (`workflow_slowdowns`)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from tracekit.analysis.model import CALL, Analysis

MIN_SLOW_FLOWS = 5
MIN_SLOWDOWN_MS = 20.0
MIN_SLOWDOWN_RATIO = 1.5
MIN_SLOWDOWN_Z = 3.0    # a flow type's slowdown: its window times above its baseline's by rank


def slow_callers(analysis: Analysis, in_window: pd.DataFrame, in_base: pd.DataFrame) -> set[str]:
    """Services whose outgoing calls all slowed on the caller's side: the time between a client
    span and its server span (the network both ways, both ends' RPC stacks) grew, against the
    baseline, on calls to most of the services it calls, while the callees' other callers saw
    no such growth. What they have in common is the caller (its CPU starved, its network
    slowed), not the callees. A callee whose calls grew from most of its callers keeps the
    blame (its network, its queue)."""
    if in_window.empty or in_base.empty:
        return set()
    spans = analysis.spans
    calls = analysis.edges[analysis.edges["kind"] == CALL]
    src, dst = calls["src_pos"].to_numpy(), calls["dst_pos"].to_numpy()
    kind = spans["kind"].to_numpy()
    arrived = (kind[src] == "CLIENT") & (kind[dst] == "SERVER")
    src, dst = src[arrived], dst[arrived]
    duration = (spans["end_ns"] - spans["start_ns"]).to_numpy()
    flow = spans["flow_id"].to_numpy()[src]
    window, base = set(in_window["flow_id"]), set(in_base["flow_id"])
    gaps = pd.DataFrame({
        "caller": spans["service_name"].to_numpy()[src],
        "callee": spans["service_name"].to_numpy()[dst],
        "part": ["w" if f in window else "b" if f in base else None for f in flow],
        "ms": (duration[src] - duration[dst]) / 1e6})
    gaps = gaps[gaps["part"].notna() & (gaps["caller"] != gaps["callee"])]
    if gaps.empty:
        return set()
    stats = gaps.groupby(["caller", "callee", "part"])["ms"].agg(["median", "size"]).unstack("part")
    if ("size", "w") not in stats or ("size", "b") not in stats:
        return set()
    compared = stats[(stats[("size", "w")] >= MIN_SLOW_FLOWS) & (stats[("size", "b")] >= MIN_SLOW_FLOWS)]
    w, b = compared[("median", "w")], compared[("median", "b")]
    grew = ((w - b >= MIN_SLOWDOWN_MS) & (w >= MIN_SLOWDOWN_RATIO * b)).rename("grew").reset_index()

    def most(by: str) -> set[str]:
        shares = grew.groupby(by)["grew"].agg(["sum", "size"])
        return set(shares.index[(shares["sum"] >= 2) & (shares["sum"] * 3 >= shares["size"] * 2)])

    callers, callees = most("caller"), most("callee")
    return {caller for caller in callers
            if not set(grew.loc[(grew["caller"] == caller) & grew["grew"], "callee"]) & callees}


def contributions(paths: pd.DataFrame, analysis: Analysis, resolver,
                  callers_slowed: set[str] = frozenset()) -> pd.DataFrame:
    """Per flow and operation: time on the critical path (`resolver`: the ranking's, which
    knows whom each client span waited for and which operation made each call). Broker waits count for the consumer
    that was waited for; a caller's wait before retrying a call (its backoff) counts for the
    operation it retried; a client span's time outside its server span counts for the callee,
    or, for the `callers_slowed` (see `slow_callers`), for the operation that made the call."""
    if paths.empty:
        return pd.DataFrame(columns=["flow_id", "service_name", "name", "ns"])
    spans = analysis.spans
    info = resolver.info
    retried = spans[spans["resend_count"].fillna(0) > 0]
    backoff = {}
    for key, start in zip(retried["key"], retried["start_adj"]):
        if key in resolver.parent:
            backoff[(resolver.parent[key], int(start))] = resolver.resolve_call(key)
    paths = paths.copy()
    # A caller waiting in a client span waits for its callee: the time between the call
    # leaving and the callee answering (the network both ways, the callee's queue) is the
    # callee's, so a slower callee is not blamed on every service that calls it.
    client = (paths["segment"] == "span") & (paths["span"].map(info["kind"]) == "CLIENT")
    if callers_slowed:
        own = client & paths["span"].map(info["service_name"]).isin(callers_slowed)
        callers = [resolver.caller_of(key) for key in paths.loc[own, "span"]]
        paths.loc[own, "service_name"] = [c[0] for c in callers]
        paths.loc[own, "name"] = [c[1] for c in callers]
        client &= ~own
    if client.any():
        callees = [resolver.waited_for(key) for key in paths.loc[client, "span"]]
        paths.loc[client, "service_name"] = [c[0] for c in callees]
        paths.loc[client, "name"] = [c[1] for c in callees]
    if backoff:
        causes = [backoff.get((span, int(end))) for span, end in zip(paths["span"], paths["end_ns"])]
        hit = [c is not None for c in causes]
        paths.loc[hit, "service_name"] = [c[0] for c in causes if c is not None]
        paths.loc[hit, "name"] = [c[1] for c in causes if c is not None]
    grouped = paths.groupby(["flow_id", "service_name", "name"], sort=False)["duration_ns"].sum()
    return grouped.rename("ns").reset_index()


def _rank_z(window: np.ndarray, baseline: np.ndarray) -> float:
    """How clearly `window`'s values sit above `baseline`'s: the Mann-Whitney U statistic as a
    z score (ties averaged; no continuity correction). Positive: the window's are larger."""
    n_w, n_b = len(window), len(baseline)
    ranks = pd.Series(np.concatenate([window, baseline])).rank().to_numpy()
    u = ranks[:n_w].sum() - n_w * (n_w + 1) / 2
    sd = math.sqrt(n_w * n_b * (n_w + n_b + 1) / 12)
    return (u - n_w * n_b / 2) / sd if sd else 0.0


def workflow_slowdowns(contrib: pd.DataFrame, flows: pd.DataFrame, in_window: pd.DataFrame,
                       in_base: pd.DataFrame) -> dict[tuple[str, str], float]:
    """Per operation, the largest share of one flow type's time that its slowdown added: its
    critical-path time in the window's flows of that type against the baseline's, where it
    clearly grew (as for the window as a whole, and by a rank test: most of those flows, not a
    few outliers). A slowdown in a kind of flow that is a few of the window's flows (checkouts
    among many page views) is diluted to nothing over all of them, yet is that kind's incident.
    By flow type (the flows' shape), not workflow: a slowdown keeps a flow's shape, and some
    systems name every root span alike (one web frontend's `Recv.`)."""
    if in_window.empty or in_base.empty or contrib.empty:
        return {}
    kinds = flows.set_index("flow_id")[["type_id"]]
    parts = pd.concat([in_window[["flow_id"]].assign(part="w"), in_base[["flow_id"]].assign(part="b")])
    rows = contrib.merge(parts, on="flow_id").join(kinds, on="flow_id")
    time_w = in_window.groupby("type_id")["duration_ns"].sum()
    found: dict[tuple[str, str], float] = {}
    for (service, name, type_id), group in rows.groupby(["service_name", "name", "type_id"], sort=False):
        w = group.loc[group["part"] == "w", "ns"].to_numpy(dtype=float)
        b = group.loc[group["part"] == "b", "ns"].to_numpy(dtype=float)
        if len(w) < MIN_SLOW_FLOWS or len(b) < MIN_SLOW_FLOWS:
            continue
        w_ms, b_ms = w.mean() / 1e6, b.mean() / 1e6
        if w_ms - b_ms < MIN_SLOWDOWN_MS or w_ms < MIN_SLOWDOWN_RATIO * b_ms:
            continue
        if _rank_z(w, b) < MIN_SLOWDOWN_Z:
            continue
        share = (w.sum() - b.mean() * len(w)) / max(float(time_w.get(type_id, 0)), 1.0)
        found[(service, name)] = max(found.get((service, name), 0.0), min(share, 1.0))
    return found
