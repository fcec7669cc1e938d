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


MIN_OWN_SLOW = 3         # spans of a service clearly slower than usual, at least
MIN_OWN_SHIFT = 0.25     # share of its window spans that were, above the baseline's share
MIN_OWN_RATIO = 2.0      # a span is clearly slower at this many times its operation's usual
MIN_OWN_Z = 2.5


def proportion_z(c_w: int, n_w: int, c_b: int, n_b: int) -> float:
    """Two-proportion z statistic of c_w/n_w against c_b/n_b."""
    pooled = (c_w + c_b) / (n_w + n_b)
    return (c_w / n_w - c_b / n_b) / math.sqrt(max(pooled * (1 - pooled) * (1 / n_w + 1 / n_b), 1e-12))


def own_times(analysis: Analysis) -> pd.DataFrame:
    """Per span where a service's work begins (a server or consumer span, a flow's root, any
    span whose parent runs in another service): the time that service spent in it itself,
    i.e. the self times of it and of every span below it in the same service, client spans
    excepted (a client span's own time is the wait for its callee). Work that retried a call is
    left out: its waits between tries (the backoff) are not work. Columns: pos (the span's
    row), flow_id, service_name, name, own_ns."""
    spans = analysis.spans
    n = len(spans)
    parent = np.full(n, -1, dtype=np.int64)
    calls = analysis.edges[analysis.edges["kind"] == CALL]
    parent[calls["dst_pos"].to_numpy()] = calls["src_pos"].to_numpy()
    service = spans["service_name"].to_numpy()
    kind = spans["kind"].to_numpy()
    has_parent = parent >= 0
    local = has_parent & (kind != "SERVER") & (kind != "CONSUMER")
    local[has_parent] &= service[parent[has_parent]] == service[has_parent]
    # Where each span's work in its service began: follow local parents to the top.
    top = np.where(local, parent, np.arange(n))
    while True:
        up = top[top]
        if (up == top).all():
            break
        top = up
    counted = kind != "CLIENT"
    own = np.bincount(top[counted], weights=spans["self_ns"].to_numpy(dtype=float)[counted],
                      minlength=n)
    retried = np.zeros(n, dtype=bool)
    retried[top[spans["resend_count"].fillna(0).to_numpy() > 0]] = True
    starts = np.flatnonzero((top == np.arange(n)) & ~retried)
    starts = starts[kind[starts] != "CLIENT"]
    return pd.DataFrame({"pos": starts, "flow_id": spans["flow_id"].to_numpy()[starts],
                         "service_name": service[starts], "name": spans["name"].to_numpy()[starts],
                         "own_ns": own[starts]})


def own_time_slowdowns(analysis: Analysis, in_window: pd.DataFrame,
                       in_base: pd.DataFrame) -> dict[tuple[str, str], tuple[float, str]]:
    """Services that themselves became slower: the time each spent in its own work (own_times:
    not the calls it waits for, so a caller is not blamed for a slow callee), each span against
    its operation's usual (the baseline's median), judged per service over all its operations
    (a CPU-starved service is slower in all of them, a few calls each, and often only in some
    calls: a throttled container loses whole scheduling periods). A span is clearly slower at
    MIN_OWN_RATIO times its usual and MIN_SLOWDOWN_MS more; a service slowed when clearly more
    of its window spans were (MIN_OWN_SHIFT, a two-proportion test) than of its baseline spans,
    and by MIN_OWN_SHIFT more than the median service: a slowdown of every service together is
    their shared host's or process's, not one service's.
    Its operation that added the most is scored with the share of the time of the window's
    flows that ran the service that the growth added, with the evidence in words."""
    if in_window.empty or in_base.empty:
        return {}
    own = own_times(analysis)
    part = pd.Series("", index=own.index)
    part[own["flow_id"].isin(set(in_window["flow_id"]))] = "w"
    part[own["flow_id"].isin(set(in_base["flow_id"]))] = "b"
    own = own.assign(part=part.to_numpy())
    own = own[own["part"] != ""]
    base = own[own["part"] == "b"].groupby(["service_name", "name"])["own_ns"].agg(["median", "size"])
    base = base[base["size"] >= 2]
    own = own.join(base["median"].rename("usual"), on=["service_name", "name"]).dropna(subset=["usual"])
    if own.empty:
        return {}
    own["ratio"] = own["own_ns"] / own["usual"].clip(lower=1e5)    # a usual of under 0.1 ms is noise
    own["added"] = own["own_ns"] - own["usual"]
    own["slow"] = (own["ratio"] >= MIN_OWN_RATIO) & (own["added"] >= MIN_SLOWDOWN_MS * 1e6)
    durations = in_window.set_index("flow_id")["duration_ns"]
    judged = {}
    for service, group in own.groupby("service_name", sort=False):
        w, b = group[group["part"] == "w"], group[group["part"] == "b"]
        if len(w) and len(b):
            judged[service] = (w, b, int(w["slow"].sum()), int(b["slow"].sum()))
    shifts = [slow_w / len(w) - slow_b / len(b) for w, b, slow_w, slow_b in judged.values()]
    common = float(np.median(shifts)) if shifts else 0.0
    found: dict[tuple[str, str], tuple[float, str]] = {}
    for service, (w, b, slow_w, slow_b) in judged.items():
        shift = slow_w / len(w) - slow_b / len(b)
        if (slow_w < MIN_OWN_SLOW or shift < MIN_OWN_SHIFT or shift - common < MIN_OWN_SHIFT
                or proportion_z(slow_w, len(w), slow_b, len(b)) < MIN_OWN_Z):
            continue
        added = w.groupby("name")["added"].sum()
        flows_time = float(durations.reindex(w["flow_id"].unique()).sum())
        share = float(w["added"].clip(lower=0).sum()) / max(flows_time, 1.0)
        text = (f"own time (outside its calls) over {MIN_OWN_RATIO:g}× its operations' usual in "
                f"{slow_w} of {len(w)} spans (baseline: {slow_b} of {len(b)}); median "
                f"{b['own_ns'].median() / 1e6:,.1f} → {w['own_ns'].median() / 1e6:,.1f} ms")
        found[(service, added.idxmax())] = (min(share, 1.0), text)
    return found
