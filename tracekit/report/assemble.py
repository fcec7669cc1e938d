"""store → Report: the analyzer's flows and root-cause ranking, with every count, rate and
latency the report quotes computed by the SQL printed next to it."""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable

import pandas as pd

from tracekit.errors import TracekitError
from tracekit.plurals import counted
from tracekit.report import queries
from tracekit.report.different import differences as differing
from tracekit.report.different import params as different_params
from tracekit.report.exemplar import exemplar_of, path_comparison
from tracekit.report.limits import limits_of
from tracekit.report.model import (
    Bucket, Evidence, Figure, Impact, Limit, LogPattern, Report, Suspect, TimelineEvent, TypeImpact,
    Window,
)
from tracekit.report.window import bucket_width_ns, detect

DEFAULT_SEARCH_NS = 30 * 60 * 1_000_000_000
MIN_BASELINE_FLOWS = 10
EVIDENCE_FOR = 3                # suspects given SQL evidence of their own


def _when(ns: int) -> str:
    return pd.Timestamp(int(ns)).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _clock(ns: int) -> str:
    return pd.Timestamp(int(ns)).strftime("%H:%M:%S.%f")[:-3]


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "–"


def resolve_types(types: pd.DataFrame, flow_type: str) -> tuple[str, ...]:
    """Flow type ids from a type id or name, else every type whose name contains the text
    (e.g. "shopper order": the workflow's healthy and failing variants)."""
    if types.empty:
        raise TracekitError("the store has no flow types yet; send traces first")
    exact = types[(types["type_id"] == flow_type) | (types["name"] == flow_type)]
    hits = exact if len(exact) else types[types["name"].str.contains(flow_type, regex=False)]
    if hits.empty:
        raise TracekitError(f"no flow type matches {flow_type!r}: `tracekit sql \"SELECT type_id, "
                            "name FROM flow_types\"` lists them")
    return tuple(sorted(str(t) for t in hits["type_id"]))


class _Figures:
    """Runs the report's queries with the window's values bound and keeps every figure quoted."""

    def __init__(self, store, params: dict) -> None:
        self.store, self.params, self.kept = store, params, []

    def run(self, name: str, **extra) -> queries.Result:
        return queries.run(self.store, name, {**self.params, **extra})

    def keep(self, figure: Figure) -> Figure:
        self.kept.append(figure)
        return figure

    def unique(self) -> tuple[Figure, ...]:
        seen: dict[tuple, Figure] = {}
        for f in self.kept:
            seen.setdefault((f.text, f.column), f)
        return tuple(seen.values())


def build(store, *, window: tuple[int, int | None] | None = None, flow_type: str | None = None,
          flow_id: str | None = None, baseline: tuple[int, int | None] | None = None,
          search_ns: int = DEFAULT_SEARCH_NS,
          progress: Callable[[str], None] | None = None) -> Report:
    """The incident report for `window` (flows started in it), or for the strongest shift
    found in the last `search_ns` of data when no window is given; `flow_type` restricts it
    to the flow types it names, `flow_id` makes it the report of one flow."""
    from tracekit.analysis.causes import rank
    from tracekit.analysis.model import Analysis
    from tracekit.analysis import stored_flow
    from tracekit.analysis.critical_paths import critical_paths
    from tracekit.analysis.windowed import (data_range, flow_types, flows_started,
                                          NO_BASELINE_LOGS, baseline_without_logs,
                                          window_analysis)

    say = progress or (lambda _: None)
    say("reading flows")
    bounds = data_range(store)
    type_ids = resolve_types(flow_types(store), flow_type) if flow_type else None
    fid = stored_flow.find(store, flow_id) if flow_id else None
    first, last = bounds[0], bounds[1] + 1
    others: tuple[Window, ...] = ()
    if fid:
        start = int(flows_started(store, 0, 0, (fid,))["start_ns"].iat[0])
        win = Window(start, start + 1, "flow")
    elif window:
        end = last if window[1] is None else int(window[1])
        if end <= window[0]:
            raise TracekitError("the window ends before it starts (or after the data ends): "
                                "give --from earlier than --to")
        win = Window(int(window[0]), end, "given")
    else:
        say("looking for the incident window")
        search = (max(last - search_ns, first), last)
        found = detect(store, search, type_ids)
        others = found.others
        win = found.window or Window(search[0], search[1], "searched")
    if fid:
        base = Window(win.start_ns - 1, win.start_ns, "none")
    elif baseline:
        base = Window(int(baseline[0]), win.start_ns if baseline[1] is None else int(baseline[1]),
                      "given")
    else:
        base = Window(win.start_ns - win.length_ns, win.start_ns, "before")
    q = _Figures(store, {"start": queries.timestamp(win.start_ns),
                         "end": queries.timestamp(win.end_ns),
                         "base_start": queries.timestamp(base.start_ns),
                         "base_end": queries.timestamp(base.end_ns),
                         "type_ids": type_ids, "flow_id": fid})
    if not fid and flows_started(store, win.start_ns, win.end_ns).empty:
        return _no_data(store, win, base, (first, last), flow_type, type_ids)

    say("analyzing the window's flows")
    analysis = window_analysis(store, min(base.start_ns, win.start_ns), win.end_ns,
                               (fid,) if fid else ())
    flows = analysis.flows
    paths = critical_paths(analysis)
    say("ranking causes")
    picked = flows if not type_ids else flows[flows["type_id"].isin(type_ids)]
    ranked = Analysis(analysis.spans, analysis.edges, picked, analysis.flow_types,
                      analysis.as_of_ns)
    # No shift found in the range searched: nothing to rank (against an empty baseline every
    # steady failure would rank).
    unlogged = not fid and baseline_without_logs(store, (win.start_ns, win.end_ns),
                                                 (base.start_ns, base.end_ns))
    causes = [] if fid or win.how == "searched" else rank(
        ranked, paths, (win.start_ns, win.end_ns), (base.start_ns, base.end_ns),
        baseline_logged=not unlogged)
    flow_row = flows.set_index("flow_id").loc[fid] if fid else None
    incident = bool(causes) or (fid is not None and flow_row["status"] != "complete")

    say("computing impact")
    impact, counts = _impact(q)
    chart_from = max(min(base.start_ns, win.start_ns), first)
    chart_to = max(min(win.end_ns + max(win.length_ns, 1), last), win.end_ns)
    width = bucket_width_ns(max(chart_to - chart_from, 1))
    charted = q.run("buckets", origin_ns=chart_from, bucket_ns=width,
                    **{"from": queries.timestamp(chart_from), "to": queries.timestamp(chart_to)})
    buckets_fig = q.keep(charted.figure("flows, failures and p95 per time bucket"))
    buckets = tuple(Bucket(r["bucket_ns"], r["flows"], r["failed"], r["error_rate"], r["p95_ms"])
                    for r in charted.rows)
    say("building the timeline")
    timeline = _timeline(q, counts, incident and not fid, incident, chart_from, width, last)

    say("gathering evidence")
    exceptions = q.run("exceptions")
    exceptions_fig = q.keep(exceptions.figure("exceptions in the window's flows"))
    suspects = [_suspect(q, i, c, exceptions, exceptions_fig) for i, c in enumerate(causes, 1)]

    exemplar, path = None, None
    exemplar_id = fid
    if exemplar_id is None and incident and suspects and suspects[0].exemplars:
        exemplar_id = suspects[0].exemplars[0]
    if exemplar_id is not None:
        say("comparing the exemplar's critical path")
        exemplar = exemplar_of(store, analysis, exemplar_id)
        path = path_comparison(store, analysis, exemplar_id, win)
        q.keep(path.figure)
        if fid and exemplar.origin:
            suspects.append(_origin_suspect(q, fid, exemplar.origin))

    differences, different_fig = (), None
    if not fid:
        say("comparing the failing and slow flows with the others")
        different = q.run("different", **different_params())
        different_fig = q.keep(different.figure("attribute values over-represented in the "
                                                "failing and slow flows"))
        differences = differing(different)

    say("grouping logs")
    logs_res = q.run("logs")
    logs_fig = q.keep(logs_res.figure("warning and error logs by pattern"))
    logs = tuple(LogPattern(r["pattern"], r["count"], tuple(r["services"]), r["example"], r["severity"])
                 for r in logs_res.rows)

    limits = limits_of(q)
    if unlogged:
        limits.append(Limit("baseline_without_logs", NO_BASELINE_LOGS))
    in_base = ((picked["start_ns"] >= base.start_ns) & (picked["start_ns"] < base.end_ns)).sum()
    if not fid and in_base < MIN_BASELINE_FLOWS:
        limits.append(Limit("thin_baseline", f"the baseline window holds {counted(in_base, 'flow')}: "
                            "comparisons against it are weak; give --baseline-from/--baseline-to"))
    if win.how == "searched":
        limits.append(Limit("no_shift", "no shift in the flows' error rates or latency was found "
                            "in the range searched; give --from/--to to rank causes over a window "
                            "of your choice"))
    if win.end_ns > last:
        limits.append(Limit("data_ends", f"the data ends at {_when(last)}, before the window does"))
    if suspects and not fid:
        limits.append(Limit("ranking", "the ranking's scores come from the analyzer's "
                            "failure-origin resolution, which is not SQL; the `tracekit causes` "
                            "command in the root-cause section reproduces them"))

    top = suspects[0] if suspects else None
    title, summary = _words(incident, top, win, fid, flow_row, impact, timeline, flow_type, type_ids)
    causes_cmd = " ".join(["tracekit causes --db", shlex.quote(str(store.path)),
                           "--from", shlex.quote(queries.timestamp(win.start_ns)),
                           "--to", shlex.quote(queries.timestamp(win.end_ns)),
                           "--baseline-from", shlex.quote(queries.timestamp(base.start_ns)),
                           "--baseline-to", shlex.quote(queries.timestamp(base.end_ns))])
    return Report(title, summary, incident, str(store.path), time.time_ns(), win, base,
                  flow_type, type_ids, fid, impact, tuple(timeline), buckets, width, buckets_fig,
                  tuple(suspects), causes_cmd, exceptions_fig, exemplar, path, logs, logs_fig,
                  tuple(limits), q.unique(), others, differences=differences,
                  differences_figure=different_fig)


def _impact(q: _Figures) -> tuple[Impact, queries.Result]:
    counts = q.run("impact")
    named = {c: q.keep(counts.figure("flows started in the window" if c == "flows" else f"flows {c}", c))
             for c in ("flows", "failed", "slow", "degraded", "incomplete")}
    types = q.run("types")
    affected = tuple(TypeImpact(r["type_id"], r["name"], r["flows"], r["failed"], r["slow"],
                                r["error_rate"], r["baseline_error_rate"], r["p95_ms"],
                                r["baseline_p95_ms"]) for r in types.rows if r["affected"])
    return Impact(named["flows"], named["failed"], named["slow"], named["degraded"],
                  named["incomplete"], q.keep(types.figure("flow types, window against baseline")),
                  affected,
                  q.keep(q.run("operations").figure("failing services and operations")),
                  q.keep(q.run("slowed").figure("services and operations that slowed down"))), counts


def _timeline(q: _Figures, counts: queries.Result, peaks_too: bool, incident: bool,
              origin_ns: int, width: int, last: int) -> list[TimelineEvent]:
    """First failure (or first slow flow), peaks, last failure, recovery."""
    events: list[TimelineEvent] = []
    firsts = q.run("first_error")
    if firsts.first.get("first_error"):
        events.append(TimelineEvent(int(pd.Timestamp(firsts.first["first_error"]).value), "first_error",
                                    f"first failure: {firsts.first['first_operation']}",
                                    q.keep(firsts.figure("first failure", "first_error"))))
        events.append(TimelineEvent(int(pd.Timestamp(firsts.first["last_error"]).value), "last_error",
                                    "last failure of the window's flows",
                                    q.keep(firsts.figure("last failure", "last_error"))))
    if incident and counts.first.get("slow") and counts.first.get("first_slow"):
        events.append(TimelineEvent(int(pd.Timestamp(counts.first["first_slow"]).value), "first_slow",
                                    "first slow flow started (slower than its workflow's baseline p95)",
                                    q.keep(counts.figure("first slow flow", "first_slow"))))
    if peaks_too and counts.first.get("flows"):
        p = q.run("peaks", origin_ns=origin_ns, bucket_ns=width)
        row = p.first
        if row.get("error_peak_failed"):
            events.append(TimelineEvent(row["error_peak_ns"], "error_peak",
                                        f"error peak: {row['error_peak_failed']} of "
                                        f"{counted(row['error_peak_flows'], 'flow')} started in this "
                                        f"{width // 10**9} s failed",
                                        q.keep(p.figure("error peak: failed flows", "error_peak_failed"))))
        if row.get("latency_peak_p95_ms") is not None:
            events.append(TimelineEvent(row["latency_peak_ns"], "latency_peak",
                                        f"latency peak: p95 {row['latency_peak_p95_ms']:,.1f} ms",
                                        q.keep(p.figure("latency peak: p95 ms", "latency_peak_p95_ms"))))
        rec = q.run("recovery", origin_ns=origin_ns, bucket_ns=width)
        figure = q.keep(rec.figure("recovery", "recovered_ns"))
        if rec.first.get("recovered_ns") is not None:
            events.append(TimelineEvent(int(rec.first["recovered_ns"]), "recovery",
                                        "recovered: failures and p95 back to the baseline's", figure))
        else:
            events.append(TimelineEvent(last, "no_recovery",
                                        "no recovery seen by the end of the data", figure))
    return sorted(events, key=lambda e: e.at_ns)


def _suspect(q: _Figures, rank: int, cause, exceptions: queries.Result,
             exceptions_fig: Figure) -> Suspect:
    """A ranked cause with its evidence (for the first EVIDENCE_FOR): its failing spans and
    critical-path time against the baseline, the exceptions raised in its service."""
    evidence: list[Evidence] = []
    if rank <= EVIDENCE_FOR:
        ev = q.run("suspect", service=cause.service, operation=cause.operation)
        r = ev.first
        what = f"{cause.service} {cause.operation}"
        evidence.append(Evidence(
            f"failing spans: {r['window_errors']} of {r['window_spans']} in the window's "
            f"{r['window_flows']} flows, against {r['baseline_errors']} of {r['baseline_spans']} "
            f"in the baseline's {r['baseline_flows']}",
            q.keep(ev.figure(f"{what}: failing spans in the window", "window_errors"))))
        if r["window_error_logs"] or r["baseline_error_logs"]:
            example = next(iter(cause.error_logs), None)
            evidence.append(Evidence(
                f"error logs written in its spans: {r['window_error_logs']} in the window, "
                f"{r['baseline_error_logs']} in the baseline"
                + (f"; where {cause.error_log_flows} flows' failures start: \"{example}\""
                   if example else ""),
                q.keep(ev.figure(f"{what}: error logs in its spans", "window_error_logs"))))
        evidence.append(Evidence(
            f"time on the critical path per flow: {r['baseline_path_ms']:,.1f} ms in the baseline, "
            f"{r['window_path_ms']:,.1f} ms in the window",
            q.keep(ev.figure(f"{what}: critical-path ms per flow", "window_path_ms"))))
        # What ranked it that is not SQL: its own time against its usual, its changed paths.
        if cause.own_time:
            evidence.append(Evidence(f"{cause.own_time} (the ranking's; `tracekit causes` shows it)"))
        if cause.path_share:
            evidence.append(Evidence(f"the flows' path changed here in {cause.path_share:.0%} of "
                                     "them: " + "; ".join(cause.path_changes[:3])))
        for e in exceptions.rows:
            if e["service_name"] == cause.service:
                evidence.append(Evidence(
                    f"{e['type']} ×{e['count']} in {counted(e['flows'], 'flow')} at {e['service_name']} "
                    f"{e['name']}: \"{e['example']}\" (e.g. flow {e['example_flow']})",
                    exceptions_fig))
    return Suspect(rank, cause.service, cause.operation, cause.score, cause.failure_share,
                   cause.slowdown_share, cause.failed_flows, cause.baseline_failed_flows,
                   cause.window_ms, cause.baseline_ms, tuple(cause.exemplars),
                   dict(cause.exception_types), tuple(evidence))


def _origin_suspect(q: _Figures, flow_id: str, origin: dict) -> Suspect:
    """The likely cause of one flow's failure: where its failure starts, resolved."""
    service, operation = origin["cause"]["service"], origin["cause"]["operation"]
    ev = q.run("suspect", service=service, operation=operation)
    text = f"the flow's failure starts at {origin['service']} {origin['name']}"
    if origin["exception"]:
        text += f" with {origin['exception']}: {origin['message']}"
    return Suspect(1, service, operation, 0.0, 0.0, 0.0, 1, 0, 0.0, 0.0, (flow_id,),
                   {origin["exception"]: 1} if origin["exception"] else {},
                   (Evidence(text, q.keep(ev.figure("failing spans at the cause", "window_errors"))),))


def _words(incident, top, win, fid, flow_row, impact, timeline, flow_type,
           type_ids) -> tuple[str, str]:
    n_flows, n_failed, n_slow = (impact.flows.value or 0, impact.failed.value or 0,
                                 impact.slow.value or 0)
    span = f"{_when(win.start_ns)} – {_clock(win.end_ns)} UTC"
    scope = ""
    if type_ids:
        scope = f" (flow types matching {flow_type!r}: {len(type_ids)})"
    if fid:
        status = flow_row["status"]
        title = f"Flow {fid}: {status}"
        summary = (f"Flow {fid} ({flow_row['business_key'] or 'no business key'}) started at "
                   f"{_when(win.start_ns)} UTC and is {status} after "
                   f"{flow_row['duration_ns'] / 1e6:,.1f} ms.")
        if top:
            summary += f" Its failure starts at {top.service} {top.operation}."
        return title, summary
    if not incident:
        title = f"No incident found in {span}{scope}"
        summary = (f"No incident found in {span}{scope}: {counted(n_flows, 'flow')} started, {n_failed} failed "
                   f"({_share(n_failed, n_flows)}); no service or operation explains more failures "
                   "or more latency than in the baseline window.")
        return title, summary
    first = next((e for e in timeline if e.kind in ("first_error", "first_slow")), None)
    recovery = next((e for e in timeline if e.kind in ("recovery", "no_recovery")), None)
    since = _when(first.at_ns) if first else _when(win.start_ns)
    title = f"{top.service} {top.operation}: {n_failed} failed and {n_slow} slow flows, {span}"
    what = ("failures start" if top.failure_share >= top.slowdown_share else "time grew")
    types = ", ".join(t.name for t in impact.affected_types[:4]) or "none clearly"
    summary = (f"{top.service} {top.operation} is the most likely root cause ({what} there). "
               f"From {since} UTC, of the {counted(n_flows, 'flow')} started in the window{scope} {n_failed} "
               f"failed ({_share(n_failed, n_flows)}) and {n_slow} were slower than their "
               f"workflow's baseline p95 ({_share(n_slow, n_flows)}). Affected flow types: {types}.")
    if recovery is not None and recovery.kind == "recovery":
        summary += f" Failures and latency were back to the baseline's from {_clock(recovery.at_ns)}."
    elif recovery is not None:
        summary += " No recovery is seen by the end of the data."
    return title, summary


def _no_data(store, win: Window, base: Window, data: tuple[int, int], flow_type: str | None,
             type_ids: tuple[str, ...] | None) -> Report:
    """The report of a window in which no flow started: it says so, and where the data is."""
    span = f"{_when(win.start_ns)} – {_clock(win.end_ns)} UTC"
    summary = (f"No data in {span}: no flow started in the window, so there is nothing to "
               f"report. The store's flows started from {_when(data[0])} to {_when(data[1] - 1)} "
               "UTC; give --from/--to within that range, or a longer --since.")
    return Report(f"No data in {span}", summary, False, str(store.path), time.time_ns(), win, base,
                  flow_type, type_ids, None, None, (), (), 0, None, (), "", None, None, None, (),
                  None, (), no_data=True)
