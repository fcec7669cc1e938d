"""Checks measured on a store's analysis tables, over the flows started in a window: each
check's figures against its bounds, with the flows to look at when it fails."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

from tracekit import queries
from tracekit.checks import baseline as baselines
from tracekit.checks.spec import STATUSES, Check
from tracekit.errors import TracekitError
from tracekit.plurals import counted

OFFENDERS = 10          # examples kept per check (the summary shows the first few)
NO_BOUND_MS = 1e18


@dataclass(frozen=True)
class Outcome:
    """One expectation of a check: what was measured against what bound."""

    label: str
    measured: Any
    bound: Any
    passed: bool
    text: str


@dataclass(frozen=True)
class Offender:
    """A flow to look at (`tracekit flow ID`), and why; the span when a span is the reason."""

    flow_id: str
    reason: str
    span_id: str | None = None


@dataclass(frozen=True)
class Result:
    check: Check
    selected: int
    outcomes: tuple[Outcome, ...]
    offenders: tuple[Offender, ...]
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return all(o.passed for o in self.outcomes)


def run(store, checks: tuple[Check, ...], window: tuple[int, int],
        baseline: dict | None = None) -> list[Result]:
    """Each check's result over the flows started in `window` ([start, end) in ns);
    `baseline`: each workflow's edges, for `edges` checks."""
    from tracekit.analysis.windowed import flow_types

    types = flow_types(store)
    results = []
    for check in checks:
        started = time.perf_counter()
        result = _one(store, check, window, types, baseline)
        results.append(replace(result, seconds=time.perf_counter() - started))
    return results


def flows_started(store, window: tuple[int, int]) -> int:
    """How many flows started in `window`."""
    return int(store.scalar(queries.load("check/window"),
                            {"start_ns": window[0], "end_ns": window[1]}))


def _one(store, check: Check, window: tuple[int, int], types, baseline) -> Result:
    from tracekit.report.assemble import resolve_types

    type_ids = None
    if check.selector.flow_type is not None:
        try:
            type_ids = resolve_types(types, check.selector.flow_type)
        except TracekitError as exc:
            return Result(check, 0, (Outcome("flow_type", None, check.selector.flow_type, False,
                                             str(exc)),), ())
    params = {"start_ns": window[0], "end_ns": window[1],
              "type_ids": list(type_ids) if type_ids is not None else None,
              "offenders": OFFENDERS,
              "slow_ms": min((ms for _, ms in check.percentiles_ms), default=NO_BOUND_MS)}
    measure = {"flows": _flows, "spans": _spans, "messages": _messages}[check.subject]
    return measure(store, check, params, type_ids, baseline)


def _flows(store, check: Check, params: dict, type_ids, baseline) -> Result:
    allowed = check.statuses or STATUSES
    row = store.arrow(queries.load("check/flows"),
                      {**params, "statuses": list(allowed)}).to_pylist()[0]
    n = row["selected"]
    outcomes = [_count(check, n, "flow")]
    offenders: list[Offender] = []
    if n:
        if check.statuses is not None:
            outcomes.append(status := _status(check, n, row))
            offenders += _unless([status], [Offender(f["flow_id"], f"status {f['status']}")
                                          for f in row["failed_flows"] or ()])
        outcomes += (timed := _percentiles(check, row, "duration"))
        offenders += _unless(timed, [Offender(f["flow_id"], f"took {_ms(f['duration_ms'])}")
                                      for f in row["slow_flows"] or ()])
        if check.edges:
            outcome, new = _edges(store, check, (params["start_ns"], params["end_ns"]),
                                  type_ids, baseline)
            outcomes.append(outcome)
            offenders += new
    return Result(check, n, tuple(outcomes), tuple(offenders))


def _spans(store, check: Check, params: dict, type_ids, baseline) -> Result:
    s = check.selector
    row = store.arrow(queries.load("check/spans"), {
        **params, "service": s.service, "name": s.name, "kind": s.kind,
        "select_keys": [k for k, _ in s.attributes], "select_values": [v for _, v in s.attributes],
        "expect_keys": [k for k, _ in check.attributes],
        "expect_values": [v for _, v in check.attributes]}).to_pylist()[0]
    n = row["selected"]
    outcomes = [_count(check, n, "span")]
    offenders: list[Offender] = []
    if n:
        if check.max_errors is not None:
            errors = row["errors"]
            passed = errors <= check.max_errors
            outcomes.append(failing := Outcome(
                "errors", errors, check.max_errors, passed,
                f"{errors} of {counted(n, 'span')} failed "
                f"({'≤' if passed else '>'} {check.max_errors} allowed)"))
            offenders += _unless([failing], [_span(f, "failed") for f in row["failed_spans"] or ()])
        if check.attributes:
            unlike = row["unlike"]
            wanted = ", ".join(f"{k} = {v}" for k, v in check.attributes)
            outcomes.append(Outcome("attributes", unlike, 0, unlike == 0,
                                    f"{wanted}: in every span" if not unlike else
                                    f"{wanted}: not in {unlike} of {counted(n, 'span')}"))
            offenders += [_span(f, f"lacks {wanted}") for f in row["unlike_spans"] or ()]
        outcomes += (timed := _percentiles(check, row, "duration"))
        offenders += _unless(timed, [_span(f, f"took {_ms(f['duration_ms'])}")
                                      for f in row["slow_spans"] or ()])
    return Result(check, n, tuple(outcomes), tuple(offenders))


def _messages(store, check: Check, params: dict, type_ids, baseline) -> Result:
    s = check.selector
    row = store.arrow(queries.load("check/messages"), {
        **params, "destination": s.destination, "producer": s.producer,
        "consumer": s.consumer}).to_pylist()[0]
    n = row["selected"]
    outcomes = [_count(check, n, "message")]
    offenders: list[Offender] = []
    if n:
        outcomes += (waits := _percentiles(check, row, "wait"))
        offenders += _unless(waits, [
            Offender(m["flow_id"], f"{m['src_service']} → {m['destination']} → "
                                   f"{m['dst_service']} waited {_ms(m['wait_ms'])}")
            for m in row["slow_messages"] or ()])
    return Result(check, n, tuple(outcomes), tuple(offenders))


def _count(check: Check, n: int, what: str) -> Outcome:
    low, high = check.count_min, check.count_max
    passed = n >= low and (high is None or n <= high)
    if low == high:
        bound = f"= {low}"
    elif high is None:
        bound = f"≥ {low}"
    else:
        bound = f"in {low}–{high}"
    text = f"{counted(n, what)} selected"
    if not passed:
        text += f", expected {bound}"
        if n == 0:
            text += ": check the selector (names are exact), or the window"
    return Outcome("count", n, {"min": low, "max": high}, passed, text)


def _status(check: Check, n: int, row: dict) -> Outcome:
    failures = row["failures"]
    share = failures / n
    limit = check.max_failure_share or 0.0
    passed = share <= limit
    allowed = " or ".join(check.statuses)
    if not failures:
        return Outcome("status", share, limit, True, f"all {counted(n, 'flow')} {allowed}")
    which = ", ".join(f"{s} {k}" for s, k in sorted(dict(row["failure_statuses"] or []).items()))
    return Outcome("status", share, limit, passed,
                   f"not {allowed}: {failures} of {counted(n, 'flow')} ({share:.1%}: {which}) "
                   f"{'≤' if passed else '>'} {limit:.0%} allowed")


def _percentiles(check: Check, row: dict, what: str) -> list[Outcome]:
    out = []
    for p, bound in check.percentiles_ms:
        value = row[p]
        passed = value <= bound
        label = f"{p} {what}" if p != "max" else f"max {what}"
        out.append(Outcome(f"{what}.{p}", value, bound, passed,
                           f"{label} {_ms(value)} {'≤' if passed else '>'} {_ms(bound)}"))
    return out


def _edges(store, check: Check, window: tuple[int, int], type_ids,
           baseline: dict) -> tuple[Outcome, list[Offender]]:
    now = baselines.window_edges(store, window, type_ids)
    new: list[str] = []
    gone: list[str] = []
    offenders = []
    for workflow, taken in sorted(now.items()):
        known = baseline.get(workflow)
        name = " ".join(workflow)
        if known is None:
            new.append(f"workflow {name!r} (not in the baseline)")
            offenders += [Offender(t.example_flow, f"new workflow {name!r}")
                          for t in list(taken.values())[:1]]
            continue
        for edge, t in sorted(taken.items()):
            if edge not in known:
                new.append(f"{edge[0]} → {edge[1]}")
                offenders.append(Offender(t.example_flow, f"took {edge[0]} → {edge[1]} "
                                                          f"({counted(t.flows, 'flow')})"))
        if check.edges == "equal":
            gone += [f"{a} → {b} (in {name})" for a, b in sorted(known - taken.keys())]
    count = sum(len(t) for t in now.values())
    if not new and not gone:
        text = (f"{counted(count, 'edge')} of {counted(len(now), 'workflow')} "
                f"{'as in' if check.edges == 'equal' else 'within'} the baseline")
        return Outcome("edges", [], check.edges, True, text), []
    parts = []
    if new:
        parts.append(f"not in the baseline: {', '.join(new)}")
    if gone:
        parts.append(f"in the baseline, not taken: {', '.join(gone)}")
    return Outcome("edges", new + gone, check.edges, False, "; ".join(parts)), offenders


def _unless(outcomes: list[Outcome], offenders: list[Offender]) -> list[Offender]:
    """The offenders, when one of the outcomes they explain failed; else none."""
    return offenders if any(not o.passed for o in outcomes) else []


def _span(row: dict, reason: str) -> Offender:
    return Offender(row["flow_id"], f"{row['service_name']} {row['name']} {reason}",
                    row["span_id"])


def _ms(value: float) -> str:
    return f"{value:,.0f} ms" if value >= 10 else f"{value:.1f} ms"
