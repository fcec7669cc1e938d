"""Root-cause ranking: which service and operation best explain a window's failures and
slowdowns, against a baseline window.

Two kinds of evidence, each as a share of the window's flows:

- **failures**: a span fails by its status, the semantic conventions' failure attributes
  (failures.py) or an error log written inside it (where the code logs the exception and answers
  anyway); for each failing flow, its *origin*: the first failure that has no failing call
  below it, resolved to the operation that caused it (a refused connection, a 4xx answer or a
  timeout point at the callee; a circuit breaker's fast failure at what tripped it: the most
  common other origin in the operation it protects, in the same window, else that operation);
- **slowdowns**: each operation's time on the flows' critical paths (broker waits count for the
  consumer that was waited for; a client span's time outside its server span for the callee,
  or for the caller when all its calls slowed and their callees' other callers saw no change),
  window mean minus baseline mean, as a share of the window's mean flow duration, or of one
  flow type's time where that is larger (a slowdown of a few of the window's flows).

An operation is ranked only when the shift is clear (enough flows, a large enough change), so
a healthy window ranks nothing.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pandas as pd

from tracekit.analysis.model import CALL, Analysis
from tracekit.analysis.slowdowns import (MIN_SLOW_FLOWS, MIN_SLOWDOWN_MS, MIN_SLOWDOWN_RATIO,
                                         contributions, own_time_slowdowns, proportion_z as _z, slow_callers,
                                         workflow_slowdowns)

MIN_FAILED_FLOWS = 3
MIN_FAILURE_SHARE = 0.02
MIN_Z = 2.0
MIN_PATH_SHIFT = 0.2    # share of a workflow's flows in which a call appeared or disappeared


@dataclass
class Cause:
    service: str
    operation: str
    score: float
    failure_share: float            # of window flows whose failure starts here (minus baseline)
    slowdown_share: float           # of the window's mean flow duration added here
    failed_flows: int
    baseline_failed_flows: int
    window_ms: float                # mean critical-path time per window flow
    baseline_ms: float
    exemplars: list[str] = field(default_factory=list)
    exception_types: dict[str, int] = field(default_factory=dict)
    error_log_flows: int = 0        # window flows whose failure origin wrote an error log
    error_logs: dict[str, int] = field(default_factory=dict)   # their first messages, by pattern
    path_share: float = 0.0         # of window flows whose path changed here (calls it made or not)
    path_changes: list[str] = field(default_factory=list)      # "+ callee op 12% → 85%", ...
    own_time: str = ""              # the service's own time grew (slowdowns.own_time_slowdowns)


def failing(spans: pd.DataFrame) -> pd.Series:
    """Spans that failed: by their status and attributes (`error`), or by an error log written
    inside them (`error_logs`, where the reader attached them)."""
    if "error_logs" not in spans:
        return spans["error"].astype(bool)
    return spans["error"].astype(bool) | (spans["error_logs"] > 0)


# What varies between messages of one kind: numbers, ids, paths with digits in them.
_VARYING = re.compile(r"[A-Za-z0-9_.:/-]*[0-9][A-Za-z0-9_.:/-]*")


def message_pattern(message: str, width: int = 160) -> str:
    """A log message with what varies between messages of its kind masked as <*> (the
    report's log patterns do the same in SQL)."""
    return _VARYING.sub("<*>", message)[:width]


def _path(url: str | None) -> str:
    return urlsplit(url).path if isinstance(url, str) else ""


def _host(url: str | None) -> str | None:
    return (urlsplit(url).hostname or None) if isinstance(url, str) else None


# What a client span names its callee by (the semantic conventions' attributes, and the URL).
PEER_COLUMNS = ("peer_service", "server_address", "rpc_service", "url_host")


def _peer(spans: pd.DataFrame, column: str):
    """One of PEER_COLUMNS for every span, as an object array (None where absent)."""
    if column == "url_host":
        urls = spans["url"].to_numpy()
        hosts = {url: _host(url) for url in set(urls)}
        return pd.Series([hosts[url] for url in urls], dtype=object).to_numpy()
    if column not in spans:
        return pd.Series([None] * len(spans), dtype=object).to_numpy()
    return spans[column].to_numpy(dtype=object)


class _Resolver:
    """Turns an origin span into the operation that caused it."""

    def __init__(self, analysis: Analysis) -> None:
        spans = analysis.spans
        self.info = spans.set_index("key")
        calls = analysis.edges[analysis.edges["kind"] == CALL]
        self.call_children: dict[str, list[str]] = defaultdict(list)
        for src, dst in zip(calls["src"], calls["dst"]):
            self.call_children[src].append(dst)
        self.parent = dict(zip(calls["dst"], calls["src"]))
        # What client calls reach, learnt from the calls that arrived: (caller service, method,
        # url path) → the most common (callee service, server operation), and (caller service,
        # callee service) → the most common server operation. Counted in one pass, vectorized.
        src, dst = calls["src_pos"].to_numpy(), calls["dst_pos"].to_numpy()
        kind = spans["kind"].to_numpy()
        arrived = (kind[src] == "CLIENT") & (kind[dst] == "SERVER")
        src, dst = src[arrived], dst[arrived]
        urls = spans["url"].to_numpy()[src]
        paths = {url: _path(url) for url in set(urls)}
        seen = pd.DataFrame({
            "caller": spans["service_name"].to_numpy()[src],
            "method": spans["method"].to_numpy()[src],
            "path": [paths[url] for url in urls],
            "callee": spans["service_name"].to_numpy()[dst],
            "operation": spans["name"].to_numpy()[dst]})
        by_call = (seen.value_counts(dropna=False).reset_index()
                   .drop_duplicates(["caller", "method", "path"]))
        self.callee = {(r.caller, r.method, r.path): (r.callee, r.operation)
                       for r in by_call.itertuples()}
        by_service = (seen.value_counts(["caller", "callee", "operation"], dropna=False)
                      .reset_index().drop_duplicates(["caller", "callee"]))
        self.callee_of_service = {(r.caller, r.callee): r.operation for r in by_service.itertuples()}
        # Whom calls name (peer.service, server.address, rpc.service, the URL's host) → the
        # service their server spans ran in, where such calls arrived: the most common.
        named = pd.DataFrame({"callee": seen["callee"]})
        self.serves: dict[str, str] = {}
        peers = {column: _peer(spans, column) for column in PEER_COLUMNS}
        for column, values in peers.items():
            named["name"] = values[src]
            counts = named.dropna().value_counts().reset_index().drop_duplicates("name")
            for r in counts.itertuples():
                self.serves.setdefault(r.name, r.callee)
        # Whom each client span waited for (`waited_for`), worked out for all at once: its
        # server span's operation (the first, as call edges list them), else what such calls
        # reach, else the service the call names with the call's own name.
        keys, names, services = (spans[c].to_numpy() for c in ("key", "name", "service_name"))
        self.waits: dict[str, tuple[str, str]] = {}
        for i, (caller, method, url) in enumerate(zip(services, spans["method"].to_numpy(),
                                                     spans["url"].to_numpy())):
            if kind[i] == "CLIENT":
                self.waits[keys[i]] = self.callee.get(
                    (caller, method, paths.get(url, _path(url))),
                    (self._callee([v[i] for v in peers.values()], caller), names[i]))
        for i in range(len(src) - 1, -1, -1):    # the first server span of a call wins
            self.waits[keys[src[i]]] = (services[dst[i]], names[dst[i]])

    def _slowest_inside(self, key: str) -> tuple[str, str]:
        best, best_self = key, -1
        stack = [key]
        while stack:
            k = stack.pop()
            own = self.info.at[k, "self_ns"]
            if own > best_self:
                best, best_self = k, own
            stack.extend(self.call_children.get(k, ()))
        return self.info.at[best, "service_name"], self.info.at[best, "name"]

    def resolve_call(self, key: str) -> tuple[str, str]:
        """The operation a client span called: its server span, else what such calls reach."""
        for child in self.call_children.get(key, ()):
            if self.info.at[child, "kind"] == "SERVER":
                return self.info.at[child, "service_name"], self.info.at[child, "name"]
        span = self.info.loc[key]
        return self.callee.get((span["service_name"], span["method"], _path(span["url"])),
                               (span["service_name"], span["name"]))

    def waited_for(self, key: str) -> tuple[str, str]:
        """Whom a client span waited for: its server span's operation; else the operation
        such calls reach where they arrived; else the service the call names, with the
        call's own name; else the client span itself."""
        return self.waits[key]

    def caller_of(self, key: str) -> tuple[str, str]:
        """The operation that made a client call: the span above it in its own service, else
        the client span itself."""
        service, up = self.info.at[key, "service_name"], self.parent.get(key)
        while up is not None and self.info.at[up, "service_name"] == service:
            if self.info.at[up, "kind"] != "CLIENT":
                return service, self.info.at[up, "name"]
            up = self.parent.get(up)
        return service, self.info.at[key, "name"]

    def _callee(self, names: list, caller: str) -> str:
        """The service that serves one of `names` (PEER_COLUMNS' values, in that order) where
        such calls arrived, else the first name (peer.service first: it is a service name by
        definition), else the caller itself. Never an operation's name."""
        names = [name for name in names if isinstance(name, str) and name]
        for name in names:
            if name in self.serves:
                return self.serves[name]
        return names[0] if names else caller

    def resolve(self, key: str) -> tuple[str, str]:
        span = self.info.loc[key]
        service, name = span["service_name"], span["name"]
        if span["breaker_state"] == "open" and isinstance(span["breaker_name"], str):
            return span["breaker_name"], self.callee_of_service.get((service, span["breaker_name"]), name)
        if span["kind"] == "CLIENT":
            servers = [c for c in self.call_children.get(key, ())
                       if self.info.at[c, "kind"] == "SERVER"]
            if not servers:     # the request never arrived: blame the callee it was meant for
                return self.waited_for(key)
            server = self.info.loc[servers[0]]
            if not server["error"] and (server["http_status"] or 0) >= 400:
                return server["service_name"], server["name"]     # the callee refused
            if not server["error"] and server["end_ns"] >= span["end_ns"]:
                return self._slowest_inside(servers[0])           # the caller gave up waiting
        return service, name


def origins(analysis: Analysis, flow_ids) -> dict[str, str]:
    """The origin span of each flow with errors: its first failing span with no failing span
    anywhere below it in its call tree."""
    spans = analysis.spans
    errors = spans[failing(spans) & spans["flow_id"].isin(set(flow_ids))]
    calls = analysis.edges[analysis.edges["kind"] == CALL]
    parent = dict(zip(calls["dst"], calls["src"]))
    above_failure: set[str] = set()
    for key in errors["key"]:
        up = parent.get(key)
        while up is not None and up not in above_failure:
            above_failure.add(up)
            up = parent.get(up)
    leaves = errors[~errors["key"].isin(above_failure)].sort_values("start_ns")
    return leaves.drop_duplicates("flow_id").set_index("flow_id")["key"].to_dict()


def _tripped_breakers(keys: dict[str, str], causes: dict[str, tuple[str, str]],
                      resolver: _Resolver) -> dict[str, tuple[str, str]]:
    """Blame a breaker's fast failures on what tripped it: the most common origin, among the
    other flows, in the operation the breaker protects (that operation itself, or an operation
    called inside it). While a breaker is open its fast failures can outnumber the failures
    that opened it (a declined card: 16 flows failed fast against 14 declined), and would
    otherwise outrank them."""
    info, parent = resolver.info, resolver.parent
    fast = {flow for flow, key in keys.items() if info.at[key, "breaker_state"] == "open"}
    if not fast:
        return causes

    def inside(key: str, operation: tuple[str, str]) -> bool:
        while key is not None:
            if (info.at[key, "service_name"], info.at[key, "name"]) == operation:
                return True
            key = parent.get(key)
        return False

    blamed = dict(causes)
    for protected in {causes[flow] for flow in fast}:
        tripping = Counter(cause for flow, cause in causes.items()
                           if flow not in fast and cause[0] == protected[0]
                           and (cause == protected or inside(keys[flow], protected)))
        if tripping:
            culprit = max(tripping.items(), key=lambda item: (item[1], item[0]))[0]
            for flow in fast:
                if causes[flow] == protected:
                    blamed[flow] = culprit
    return blamed

def path_changes(analysis: Analysis, in_window: pd.DataFrame,
                 in_base: pd.DataFrame) -> dict[tuple[str, str], tuple[float, list[str]]]:
    """Where the flows' paths changed: per workflow (root operation), each call a span made
    (caller operation → callee operation; a client span's arrival at its server is not a
    choice of path) in a clearly different share of the window's flows than of
    the baseline's (MIN_PATH_SHIFT points, MIN_FAILED_FLOWS flows, z ≥ MIN_Z): an exception
    path or fallback that appeared, calls no longer made after an early exit. A change counts
    for the caller operation where the path diverged, i.e. one whose own presence did not
    change (the calls below a call that stopped stop too, and are not blamed). Returns
    operation → (share of the window's flows whose path changed there, the changes)."""
    calls = analysis.edges[analysis.edges["kind"] == CALL]
    # A client span's call that arrives or not is a failure to reach the callee (the failure's
    # evidence blames the callee), not a path the caller chose.
    calls = calls[analysis.spans["kind"].to_numpy()[calls["src_pos"].to_numpy()] != "CLIENT"]
    if calls.empty or in_window.empty or in_base.empty:
        return {}
    side = pd.concat([in_window[["flow_id", "root_service", "root_name"]].assign(part="w"),
                      in_base[["flow_id", "root_service", "root_name"]].assign(part="b")])
    sizes = side.groupby(["root_service", "root_name", "part"]).size().unstack(fill_value=0)
    workflow = ["root_service", "root_name"]

    def shares(rows: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
        counted = (rows[["flow_id", *columns]].drop_duplicates().merge(side, on="flow_id")
                   .groupby([*workflow, *columns, "part"]).size().unstack(fill_value=0))
        for part in ("w", "b"):
            if part not in counted:
                counted[part] = 0
        return counted.reset_index()

    def changed(c_w: int, n_w: int, c_b: int, n_b: int) -> bool:
        return (n_w > 0 and n_b > 0 and max(c_w, c_b) >= MIN_FAILED_FLOWS
                and abs(c_w / n_w - c_b / n_b) >= MIN_PATH_SHIFT
                and abs(_z(c_w, n_w, c_b, n_b)) >= MIN_Z)

    # Callers whose own spans came and went with the change are below the divergence, not at it.
    callers = shares(analysis.spans.rename(columns={"service_name": "src_service", "name": "src_name"}),
                     ["src_service", "src_name"])
    moved = {tuple(r[:4]) for r in callers.itertuples(index=False)
             if changed(r.w, sizes.at[(r.root_service, r.root_name), "w"] if "w" in sizes else 0,
                        r.b, sizes.at[(r.root_service, r.root_name), "b"] if "b" in sizes else 0)}
    # A caller that fails where it runs has its calls changed by that failure (a call that
    # never arrived): the failure's evidence tells it, with the callee to blame.
    spans = analysis.spans
    in_w = spans[spans["flow_id"].isin(set(in_window["flow_id"]))]
    failing_share = failing(in_w).groupby([in_w["service_name"], in_w["name"]]).mean()
    n_window = len(in_window)
    found: dict[tuple[str, str], tuple[float, list[str]]] = {}
    for r in shares(calls, ["src_service", "src_name", "dst_service", "dst_name"]).itertuples(index=False):
        n_w = int(sizes.at[(r.root_service, r.root_name), "w"]) if "w" in sizes else 0
        n_b = int(sizes.at[(r.root_service, r.root_name), "b"]) if "b" in sizes else 0
        if (r.root_service, r.root_name, r.src_service, r.src_name) in moved:
            continue
        if not changed(int(r.w), n_w, int(r.b), n_b) or failing_share.get((r.src_service, r.src_name), 0) >= 0.5:
            continue
        share = abs(r.w / n_w - r.b / n_b) * n_w / n_window
        cause = (r.src_service, r.src_name)
        text = (f"{'+' if r.w / n_w > r.b / n_b else '-'} {r.dst_service} {r.dst_name}: in "
                f"{r.b / n_b:.0%} → {r.w / n_w:.0%} of {r.root_service} {r.root_name} flows")
        best, texts = found.get(cause, (0.0, []))
        found[cause] = (max(best, share), texts + [text])
    return found


def rank(analysis: Analysis, paths: pd.DataFrame, window: tuple[int, int],
         baseline: tuple[int, int], limit: int = 10, baseline_logged: bool = True) -> list[Cause]:
    """Causes of what went wrong in `window` (flows started in it) against `baseline`.
    `baseline_logged` False: the baseline holds no logs at all, so failures the window shows
    only by error logs cannot be compared with it; they are ranked on the window alone, as
    when there is no baseline (the caller says so in its limits)."""
    flows = analysis.flows
    in_window = flows[(flows["start_ns"] >= window[0]) & (flows["start_ns"] < window[1])]
    in_base = flows[(flows["start_ns"] >= baseline[0]) & (flows["start_ns"] < baseline[1])]
    if in_window.empty:
        return []
    resolver = _Resolver(analysis)
    # Every flow with an error counts, failed or not: a call that succeeded on its third try
    # still points at what failed twice.
    info = resolver.info
    spans = analysis.spans
    with_errors = set(spans.loc[failing(spans), "flow_id"])
    window_keys = origins(analysis, in_window.loc[in_window["flow_id"].isin(with_errors), "flow_id"])
    window_origin = _tripped_breakers(
        window_keys, {f: resolver.resolve(k) for f, k in window_keys.items()}, resolver)
    base_keys = origins(analysis, in_base.loc[in_base["flow_id"].isin(with_errors), "flow_id"])
    base_origin = _tripped_breakers(
        base_keys, {f: resolver.resolve(k) for f, k in base_keys.items()}, resolver)
    n_w, n_b = len(in_window), max(len(in_base), 1)
    count_w, count_b = Counter(window_origin.values()), Counter(base_origin.values())

    contrib = contributions(paths, analysis, resolver, slow_callers(analysis, in_window, in_base))
    def mean_ms(flow_ids, count):
        part = contrib[contrib["flow_id"].isin(set(flow_ids))]
        sums = part.groupby(["service_name", "name"])["ns"].sum() / 1e6
        present = part.groupby(["service_name", "name"])["flow_id"].nunique()
        return sums / max(count, 1), present
    lat_w, present_w = mean_ms(in_window["flow_id"], n_w)
    lat_b, _ = mean_ms(in_base["flow_id"], n_b)
    mean_duration_ms = max(in_window["duration_ns"].mean() / 1e6, 1e-3)

    exception_types: dict[tuple, Counter] = defaultdict(Counter)
    error_logs: dict[tuple, Counter] = defaultdict(Counter)
    exemplars: dict[tuple, list[str]] = defaultdict(list)
    logged = "error_log" in info
    by_log_only: Counter = Counter()
    for flow_id, key in window_keys.items():
        cause = window_origin[flow_id]
        by_log_only[cause] += logged and not info.at[key, "error"]
        exc = info.at[key, "exception_type"] or info.at[key, "error_type"]
        if isinstance(exc, str):
            exception_types[cause][exc] += 1
        if logged and isinstance(message := info.at[key, "error_log"], str):
            error_logs[cause][message_pattern(message)] += 1
        if len(exemplars[cause]) < 3:
            exemplars[cause].append(flow_id)

    changes = path_changes(analysis, in_window, in_base)
    by_workflow = workflow_slowdowns(contrib, flows, in_window, in_base)
    by_own_time = own_time_slowdowns(analysis, in_window, in_base)
    causes = []
    for cause in set(count_w) | set(lat_w.index) | set(changes) | set(by_own_time):
        c_w, c_b = count_w.get(cause, 0), count_b.get(cause, 0)
        p_w, p_b = c_w / n_w, c_b / n_b
        failure = 0.0
        if c_w >= MIN_FAILED_FLOWS and p_w - p_b >= MIN_FAILURE_SHARE:
            pooled = (c_w + c_b) / (n_w + n_b)
            z = (p_w - p_b) / math.sqrt(max(pooled * (1 - pooled) * (1 / n_w + 1 / n_b), 1e-12))
            unseen = not baseline_logged and by_log_only[cause] * 2 > c_w
            if z >= MIN_Z or len(in_base) == 0 or unseen:
                failure = p_w - p_b
        w_ms, b_ms = float(lat_w.get(cause, 0.0)), float(lat_b.get(cause, 0.0))
        slowdown = 0.0
        if (present_w.get(cause, 0) >= MIN_SLOW_FLOWS and w_ms - b_ms >= MIN_SLOWDOWN_MS
                and w_ms >= MIN_SLOWDOWN_RATIO * b_ms):
            slowdown = (w_ms - b_ms) / mean_duration_ms
        own_share, own_text = by_own_time.get(cause, (0.0, ""))
        slowdown = max(slowdown, by_workflow.get(cause, 0.0), own_share)
        path_share, path_texts = changes.get(cause, (0.0, []))
        if failure == 0 and slowdown == 0 and path_share == 0:
            continue
        if not exemplars.get(cause):
            slow = contrib[(contrib["service_name"] == cause[0]) & (contrib["name"] == cause[1])
                           & contrib["flow_id"].isin(set(in_window["flow_id"]))]
            exemplars[cause] = slow.nlargest(3, "ns")["flow_id"].tolist()
        causes.append(Cause(cause[0], cause[1], float(failure + slowdown + path_share),
                            float(failure), float(slowdown), c_w, c_b, w_ms, b_ms,
                            list(exemplars[cause]), dict(exception_types[cause]),
                            sum(error_logs[cause].values()), dict(error_logs[cause].most_common(3)),
                            float(path_share), path_texts[:5], own_text))
    causes.sort(key=lambda c: (-c.score, c.service, c.operation))   # ties: the same on every run
    return causes[:limit]
