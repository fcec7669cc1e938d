"""store → Report: the analyzer's flows and root-cause ranking, with every count, rate and
latency the report quotes computed by the SQL printed next to it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pandas as pd

from tracekit.errors import TracekitError
from tracekit.report import queries
from tracekit.report.mermaid import sequence
from tracekit.report.model import (
    Bucket, Evidence, Exemplar, Figure, Impact, Limit, LogPattern, PathComparison, PathStep,
    Report, Suspect, TimelineEvent, TypeImpact, Window,
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


def resolve_types(analysis, flow_type: str) -> tuple[str, ...]:
    """Flow type ids from a type id or name, else every type whose name contains the text
    (e.g. "shopper order": the workflow's healthy and failing variants)."""
    types = analysis.flow_types
    if types.empty:
        raise TracekitError("the store has no flow types yet; send traces first")
    exact = types[(types["type_id"] == flow_type) | (types["name"] == flow_type)]
    hits = exact if len(exact) else types[types["name"].str.contains(flow_type, regex=False)]
    if hits.empty:
        raise TracekitError(f"no flow type matches {flow_type!r}: `tracekit sql \"SELECT type_id, "
                            "name FROM flow_types\"` lists them")
    return tuple(sorted(str(t) for t in hits["type_id"]))


def build(store, *, window: tuple[int, int | None] | None = None, flow_type: str | None = None,
          flow_id: str | None = None, baseline: tuple[int, int | None] | None = None,
          search_ns: int = DEFAULT_SEARCH_NS,
          progress: Callable[[str], None] | None = None) -> Report:
    """The incident report for `window` (flows started in it), or for the strongest shift
    found in the last `search_ns` of data when no window is given; `flow_type` restricts it
    to one flow type, `flow_id` makes it the report of one flow."""
    from tracekit.analysis.causes import rank
    from tracekit.analysis.model import Analysis
    from tracekit.analysis.present import find_flow
    from tracekit.analysis.run import analyze, critical_paths

    say = progress or (lambda _: None)
    say("analyzing flows")
    analysis = analyze(store)
    flows = analysis.flows
    if flows.empty:
        raise TracekitError(f"{store.path} holds no flows yet; send traces first")
    paths = critical_paths(analysis)
    type_ids = resolve_types(analysis, flow_type) if flow_type else None
    fid = find_flow(analysis, flow_id) if flow_id else None
    last = int(flows["start_ns"].max()) + 1
    first = int(flows["start_ns"].min())
    others: tuple[Window, ...] = ()
    if fid:
        row = flows.set_index("flow_id").loc[fid]
        win = Window(int(row["start_ns"]), int(row["start_ns"]) + 1, "flow")
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
    base = (Window(int(baseline[0]), win.start_ns if baseline[1] is None else int(baseline[1]),
                   "given") if baseline
            else Window(win.start_ns - win.length_ns, win.start_ns, "before"))
    if fid:
        base = Window(win.start_ns - 1, win.start_ns, "none")
    params = {"start": queries.timestamp(win.start_ns), "end": queries.timestamp(win.end_ns),
              "base_start": queries.timestamp(base.start_ns),
              "base_end": queries.timestamp(base.end_ns), "type_ids": type_ids, "flow_id": fid}
    figures: list[Figure] = []

    def run(name: str, extra: dict | None = None):
        result = queries.run(store, name, {**params, **(extra or {})})
        return result

    def keep(figure: Figure) -> Figure:
        figures.append(figure)
        return figure

    say("ranking causes")
    ranked = analysis
    if type_ids:
        ranked = Analysis(analysis.spans, analysis.edges, flows[flows["type_id"].isin(type_ids)],
                          analysis.flow_types, analysis.as_of_ns)
    causes = [] if fid else rank(ranked, paths, (win.start_ns, win.end_ns), (base.start_ns, base.end_ns))

    say("computing impact")
    counts = run("impact")
    impact_figs = {c: keep(counts.figure(f"flows {c}" if c != "flows" else "flows started in the window", c))
                   for c in ("flows", "failed", "slow", "degraded", "incomplete")}
    types = run("types")
    types_fig = keep(types.figure("flow types, window against baseline"))
    affected = tuple(TypeImpact(r["type_id"], r["name"], r["flows"], r["failed"], r["slow"],
                                r["error_rate"], r["baseline_error_rate"], r["p95_ms"],
                                r["baseline_p95_ms"]) for r in types.rows if r["affected"])
    ops_fig = keep(run("operations").figure("failing services and operations"))
    slowed_fig = keep(run("slowed").figure("services and operations that slowed down"))
    impact = Impact(impact_figs["flows"], impact_figs["failed"], impact_figs["slow"],
                    impact_figs["degraded"], impact_figs["incomplete"], types_fig, affected, ops_fig,
                    slowed_fig)
    n_flows, n_failed, n_slow = (impact.flows.value or 0, impact.failed.value or 0,
                                 impact.slow.value or 0)

    flow_row = flows.set_index("flow_id").loc[fid] if fid else None
    incident = bool(causes) or (fid is not None and flow_row["status"] != "complete")

    # Charts and timeline: buckets from the baseline's start to as long again after the window.
    chart_from = max(min(base.start_ns, win.start_ns), first)
    chart_to = min(win.end_ns + max(win.length_ns, 1), last)
    chart_to = max(chart_to, win.end_ns)
    width = bucket_width_ns(max(chart_to - chart_from, 1))
    bucket_params = {"from": queries.timestamp(chart_from), "to": queries.timestamp(chart_to),
                     "origin_ns": chart_from, "bucket_ns": width}
    buckets_res = run("buckets", bucket_params)
    buckets_fig = keep(buckets_res.figure("flows, failures and p95 per time bucket"))
    buckets = tuple(Bucket(r["bucket_ns"], r["flows"], r["failed"], r["error_rate"], r["p95_ms"])
                    for r in buckets_res.rows)

    timeline: list[TimelineEvent] = []
    say("building the timeline")
    firsts = run("first_error")
    if firsts.first.get("first_error"):
        at = int(pd.Timestamp(firsts.first["first_error"]).value)
        timeline.append(TimelineEvent(at, "first_error",
                                      f"first failure: {firsts.first['first_operation']}",
                                      keep(firsts.figure("first failure", "first_error"))))
        end_at = int(pd.Timestamp(firsts.first["last_error"]).value)
        timeline.append(TimelineEvent(end_at, "last_error", "last failure of the window's flows",
                                      keep(firsts.figure("last failure", "last_error"))))
    if n_flows and not fid and incident:
        peaks = run("peaks", {"origin_ns": chart_from, "bucket_ns": width})
        p = peaks.first
        if p.get("error_peak_failed"):
            timeline.append(TimelineEvent(p["error_peak_ns"], "error_peak",
                                          f"error peak: {p['error_peak_failed']} of {p['error_peak_flows']} "
                                          f"flows started in this {width // 10**9} s failed",
                                          keep(peaks.figure("error peak: failed flows", "error_peak_failed"))))
        if p.get("latency_peak_p95_ms") is not None:
            timeline.append(TimelineEvent(p["latency_peak_ns"], "latency_peak",
                                          f"latency peak: p95 {p['latency_peak_p95_ms']:,.1f} ms",
                                          keep(peaks.figure("latency peak: p95 ms", "latency_peak_p95_ms"))))
        rec = run("recovery", {"origin_ns": chart_from, "bucket_ns": width})
        recovered = rec.first.get("recovered_ns")
        figure = keep(rec.figure("recovery", "recovered_ns"))
        if recovered is not None:
            timeline.append(TimelineEvent(int(recovered), "recovery",
                                          "recovered: failures and p95 back to the baseline's", figure))
        else:
            timeline.append(TimelineEvent(last, "no_recovery",
                                          "no recovery seen by the end of the data", figure))
    if incident and n_slow and counts.first.get("first_slow"):
        timeline.append(TimelineEvent(int(pd.Timestamp(counts.first["first_slow"]).value), "first_slow",
                                      "first slow flow started (slower than its workflow's baseline p95)",
                                      keep(counts.figure("first slow flow", "first_slow"))))
    timeline.sort(key=lambda e: e.at_ns)

    say("gathering evidence")
    exceptions = run("exceptions")
    exceptions_fig = keep(exceptions.figure("exceptions in the window's flows"))
    suspects: list[Suspect] = []
    for i, c in enumerate(causes, 1):
        evidence: list[Evidence] = []
        if i <= EVIDENCE_FOR:
            ev = run("suspect", {"service": c.service, "operation": c.operation})
            r = ev.first
            evidence.append(Evidence(
                f"failing spans: {r['window_errors']} of {r['window_spans']} in the window's "
                f"{r['window_flows']} flows, against {r['baseline_errors']} of {r['baseline_spans']} "
                f"in the baseline's {r['baseline_flows']}",
                keep(ev.figure(f"{c.service} {c.operation}: failing spans in the window", "window_errors"))))
            evidence.append(Evidence(
                f"time on the critical path per flow: {r['baseline_path_ms']:,.1f} ms in the baseline, "
                f"{r['window_path_ms']:,.1f} ms in the window",
                keep(ev.figure(f"{c.service} {c.operation}: critical-path ms per flow",
                               "window_path_ms"))))
            for e in exceptions.rows:
                if e["service_name"] == c.service:
                    evidence.append(Evidence(
                        f"{e['type']} ×{e['count']} in {e['flows']} flows at {e['service_name']} "
                        f"{e['name']}: \"{e['example']}\" (e.g. flow {e['example_flow']})",
                        exceptions_fig))
        suspects.append(Suspect(i, c.service, c.operation, c.score, c.failure_share,
                                c.slowdown_share, c.failed_flows, c.baseline_failed_flows,
                                c.window_ms, c.baseline_ms, tuple(c.exemplars),
                                dict(c.exception_types), tuple(evidence)))

    exemplar, path = None, None
    exemplar_id = fid
    if exemplar_id is None and incident:
        exemplar_id = suspects[0].exemplars[0] if suspects and suspects[0].exemplars else None
    if exemplar_id is not None:
        say("comparing the exemplar's critical path")
        exemplar = _exemplar(store, analysis, exemplar_id)
        path = _path(store, analysis, exemplar_id, win)
        figures.append(path.figure)
        if fid and exemplar.origin:
            o = exemplar.origin
            ev = run("suspect", {"service": o["cause"]["service"], "operation": o["cause"]["operation"]})
            suspects.append(Suspect(1, o["cause"]["service"], o["cause"]["operation"], 0.0, 0.0, 0.0,
                                    1, 0, 0.0, 0.0, (fid,),
                                    {o["exception"]: 1} if o["exception"] else {},
                                    (Evidence(f"the flow's failure starts at {o['service']} {o['name']}"
                                              + (f" with {o['exception']}: {o['message']}" if o["exception"] else ""),
                                              keep(ev.figure("failing spans at the cause", "window_errors"))),)))

    say("grouping logs")
    logs_res = run("logs")
    logs_fig = keep(logs_res.figure("warning and error logs by pattern"))
    logs = tuple(LogPattern(r["pattern"], r["count"], tuple(r["services"]), r["example"], r["severity"])
                 for r in logs_res.rows)

    limits = _limits(run("limits"), keep)
    baseline_flows = int(((flows["start_ns"] >= base.start_ns) & (flows["start_ns"] < base.end_ns)).sum())
    if not fid and baseline_flows < MIN_BASELINE_FLOWS:
        limits.append(Limit("thin_baseline", f"the baseline window holds {baseline_flows} flows: "
                            "comparisons against it are weak; give --baseline-from/--baseline-to"))
    if win.end_ns > last:
        limits.append(Limit("data_ends", f"the data ends at {_when(last)}, before the window does"))
    if suspects and not fid:
        limits.append(Limit("ranking", "the ranking's scores come from the analyzer's "
                            "failure-origin resolution, which is not SQL; the `tracekit causes` "
                            "command in the root-cause section reproduces them"))

    top = suspects[0] if suspects else None
    title, summary = _words(incident, top, win, fid, flow_row, n_flows, n_failed, n_slow,
                            impact, timeline, flow_type, type_ids)
    causes_cmd = (f"tracekit causes --db {store.path} --from '{_when(win.start_ns)}' --to "
                  f"'{_when(win.end_ns)}' --baseline-from '{_when(base.start_ns)}' "
                  f"--baseline-to '{_when(base.end_ns)}'")
    unique: dict[tuple, Figure] = {}
    for f in figures:
        unique.setdefault((f.text, f.column), f)
    return Report(title, summary, incident, str(store.path), time.time_ns(), win, base,
                  flow_type, type_ids, fid, impact, tuple(timeline), buckets, width, buckets_fig,
                  tuple(suspects), causes_cmd, exceptions_fig, exemplar, path, logs, logs_fig,
                  tuple(limits), tuple(unique.values()), others)


def _words(incident, top, win, fid, flow_row, n_flows, n_failed, n_slow, impact, timeline,
           flow_type, type_ids) -> tuple[str, str]:
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
        summary = (f"No incident found in {span}{scope}: {n_flows} flows started, {n_failed} failed "
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
               f"From {since} UTC, of the {n_flows} flows started in the window{scope} {n_failed} "
               f"failed ({_share(n_failed, n_flows)}) and {n_slow} were slower than their "
               f"workflow's baseline p95 ({_share(n_slow, n_flows)}). Affected flow types: {types}.")
    if recovery is not None and recovery.kind == "recovery":
        summary += f" Failures and latency were back to the baseline's from {_clock(recovery.at_ns)}."
    elif recovery is not None:
        summary += " No recovery is seen by the end of the data."
    return title, summary


def _exemplar(store, analysis, flow_id: str) -> Exemplar:
    from tracekit.analysis.present import flow_detail

    detail = flow_detail(analysis, flow_id)
    origin = detail["failure_origin"]
    if origin:
        trace_id, span_id = origin["trace_id"], origin["span_id"]
    else:
        root = analysis.flows.set_index("flow_id").at[flow_id, "root_span"]
        trace_id, span_id = str(root).split(":", 1)
    span = queries.run(store, "exemplar_span", {"trace_id": trace_id, "span_id": span_id}).first
    attributes = {}
    if span.get("attributes"):
        stored = json.loads(span["attributes"])
        if isinstance(stored, dict):
            attributes = {k: v if isinstance(v, str) else json.dumps(v) for k, v in stored.items()}
    return Exemplar(flow_id, detail["status"], detail["type"], detail["business_key"],
                    float(detail["duration_ms"]), _plain(origin), attributes,
                    sequence(analysis, flow_id))


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if hasattr(value, "item"):
        return value.item()
    return value


def _path(store, analysis, flow_id: str, win: Window) -> PathComparison:
    """The exemplar's critical path against a healthy flow of the same type (else of the same
    workflow): a complete one of median duration, outside the window when there is one."""
    flows = analysis.flows
    me = flows.set_index("flow_id").loc[flow_id]
    healthy = flows[(flows["status"] == "complete") & (flows["flow_id"] != flow_id)]
    outside = (healthy["start_ns"] < win.start_ns) | (healthy["start_ns"] >= win.end_ns)
    candidates = None
    for pool in (healthy[(healthy["type_id"] == me["type_id"]) & outside],
                 healthy[healthy["type_id"] == me["type_id"]],
                 healthy[(healthy["root_service"] == me["root_service"])
                         & (healthy["root_name"] == me["root_name"]) & outside],
                 healthy[(healthy["root_service"] == me["root_service"])
                         & (healthy["root_name"] == me["root_name"])]):
        if len(pool):
            candidates = pool
            break
    other = None
    if candidates is not None:
        ordered = candidates.sort_values(["duration_ns", "flow_id"])
        other = str(ordered["flow_id"].iloc[len(ordered) // 2])
    result = queries.run(store, "path", {"exemplar": flow_id, "healthy": other or flow_id})
    steps = tuple(PathStep(r["service_name"], r["name"], r["segment"], r["exemplar_ms"],
                           r["healthy_ms"] if other else 0.0) for r in result.rows)
    grew = max(steps, key=lambda s: s.delta_ms) if steps and other else None
    healthy_ms = (float(flows.set_index("flow_id").at[other, "duration_ns"]) / 1e6) if other else None
    return PathComparison(flow_id, other, str(me["status"]), float(me["duration_ns"]) / 1e6,
                          healthy_ms, steps, grew, result.figure("critical path, exemplar against healthy"))


def _limits(result, keep) -> list[Limit]:
    r = result.first
    out = []
    texts = {
        "orphan_spans": "spans whose parent span was never stored (their flows may be cut in two)",
        "skew_adjusted_spans": "spans moved to fit in their parent for clock skew (read time only)",
        "spans_with_dropped_data": "spans whose SDK dropped attributes, events or links",
        "spans_adjusted_at_ingest": "spans adjusted at ingest (clamped times, end before start, "
                                    "invalid parent ids)",
        "incomplete_flows": "flows still incomplete or running: their outcome is not known yet",
    }
    for column, text in texts.items():
        if r.get(column):
            out.append(Limit(column, f"{r[column]} {text}", keep(result.figure(text, column))))
    return out
