"""analyze(store): spans → stitched flows, edges, styles, types and labels (their critical
paths: `tracekit.analysis.critical_paths`)."""

from __future__ import annotations

import contextlib
import functools
import gc
from collections import defaultdict

import numpy as np
import pandas as pd

from tracekit.analysis import flows as flowlib
from tracekit.analysis.failures import is_error
from tracekit.analysis.frames import frame, objects, plain_strings, shared_strings
from tracekit.analysis.model import CALL, Analysis
from tracekit.analysis.skew import adjust
from tracekit.analysis.spans import DEFAULT_BUSINESS_KEYS, load
from tracekit.analysis.stitch import SpanIds, span_keys, stitch

INCOMPLETE_AFTER_MIN_NS = 1_000_000_000     # a flow missing steps is "incomplete" after
INCOMPLETE_AFTER_P50_FACTOR = 3             # max(1 s, 3 × its usual type's p50), else "running"
DISTINCT = {"span_id", "parent_span_id"}    # string columns whose values rarely repeat


def analyze(store, as_of_ns: int | None = None,
            business_keys: tuple[str, ...] = DEFAULT_BUSINESS_KEYS) -> Analysis:
    return analyze_spans(load(store, as_of_ns, business_keys), as_of_ns)


def analyze_spans(spans: pd.DataFrame, as_of_ns: int | None = None) -> Analysis:
    with no_gc_pauses():
        return _analyze_spans(spans, as_of_ns)


@contextlib.contextmanager
def no_gc_pauses():
    """The analysis makes millions of small objects and no reference cycles: the cyclic
    collector would only rescan them (critical paths for 1M spans: 12.3 s with it, 9.7 without)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _analyze_spans(spans: pd.DataFrame, as_of_ns: int | None = None) -> Analysis:
    spans = spans.reset_index(drop=True)
    ids = SpanIds(spans)
    repeated = ids.duplicated()
    if repeated.any():
        spans = spans[~repeated].reset_index(drop=True)
        ids = SpanIds(spans)
    keys = span_keys(spans)
    # Plain Python strings, each distinct one a single object: the analysis walks these columns
    # element by element (pandas' Arrow-backed strings cost a microsecond per element to
    # iterate), and a million rows repeat a few hundred names. Ids are nearly all distinct:
    # one object per row, unshared.
    spans = frame({column: (plain_strings if column in DISTINCT else shared_strings)(spans[column])
                   if isinstance(spans[column].dtype, pd.StringDtype) else spans[column].to_numpy()
                   for column in spans.columns})
    spans["key"] = objects(keys)
    if spans.empty:
        return Analysis(spans.assign(flow_id=[], error=[], self_ns=[]),
                        pd.DataFrame(columns=["src", "dst", "kind", "via"]), pd.DataFrame(),
                        pd.DataFrame(), as_of_ns)
    edges, _, flow_of_span = stitch(spans, ids)
    spans["flow_id"] = objects(flow_of_span)
    spans["error"] = is_error(spans).to_numpy()
    _correct_skew(spans, edges)
    spans["self_ns"] = flowlib.self_times(spans.assign(start_ns=spans["start_adj"],
                                                       end_ns=spans["end_adj"]), edges)
    edges = _describe_edges(spans, edges)
    flows = _flows(spans, edges, as_of_ns)
    analysis = Analysis(spans, edges, flows, as_of_ns=as_of_ns)
    analysis.flow_types = flow_types(analysis)
    _mark_incomplete(analysis)
    return analysis


def _correct_skew(spans: pd.DataFrame, edges: pd.DataFrame) -> None:
    calls = edges[edges["kind"] == CALL]
    spans["start_adj"] = spans["start_ns"]
    spans["end_adj"] = spans["end_ns"]
    spans["skew_note"] = None
    p, c = calls["src_pos"].to_numpy(), calls["dst_pos"].to_numpy()
    host, start, end = (spans[col].to_numpy() for col in ("host", "start_ns", "end_ns"))
    other_host = (host[p] != host[c]) | pd.isna(host[c]) | (host[c] == "")
    misfit = other_host & ((start[c] < start[p]) | (end[c] > end[p]))
    if not misfit.any():
        return   # every child from another (or no known) host fits in its parent: nothing to adjust
    children: dict[str, list[str]] = defaultdict(list)
    for src, dst in zip(calls["src"], calls["dst"]):
        children[src].append(dst)
    has_parent = set(calls["dst"])
    roots = [k for k in spans["key"] if k not in has_parent]
    start = dict(zip(spans["key"], spans["start_ns"]))
    end = dict(zip(spans["key"], spans["end_ns"]))
    host = dict(zip(spans["key"], spans["host"]))
    adjustments = adjust(start, end, host, children, roots)
    spans["start_adj"] = spans["key"].map(start)
    spans["end_adj"] = spans["key"].map(end)
    notes = {a.span: a.reason for a in adjustments}
    spans["skew_note"] = spans["key"].map(notes)


def _describe_edges(spans: pd.DataFrame, edges: pd.DataFrame) -> pd.DataFrame:
    src, dst = edges["src_pos"].to_numpy(), edges["dst_pos"].to_numpy()
    col = {c: spans[c].to_numpy() for c in ("flow_id", "service_name", "name", "start_adj",
                                             "end_adj", "kind", "destination")}
    asynchronous = edges["kind"].to_numpy() != CALL
    # A consumer can start before the send span ends (the broker routes the message before
    # it confirms the publish): that wait is 0, not negative.
    wait = np.maximum(col["start_adj"][dst] - col["end_adj"][src], 0)
    from_producer = asynchronous & (col["kind"][src] == "PRODUCER")
    edges = edges.reset_index(drop=True)
    described = frame({
        "flow_id": col["flow_id"][src],
        "src_service": col["service_name"][src], "src_name": col["name"][src],
        "dst_service": col["service_name"][dst], "dst_name": col["name"][dst],
        "wait_ns": pd.array(np.where(from_producer, wait, 0), dtype="Int64"),
        "destination": np.where(asynchronous, col["destination"][dst], None),
    })
    described.loc[~from_producer, "wait_ns"] = pd.NA
    return pd.concat([edges, described], axis=1)


def _flows(spans: pd.DataFrame, edges: pd.DataFrame, as_of_ns: int | None) -> pd.DataFrame:
    flow_code, flow_ids = pd.factorize(spans["flow_id"].to_numpy())
    flow_ids = np.asarray(flow_ids, dtype=object)
    n_flows = len(flow_ids)
    error = spans["error"].to_numpy(dtype=bool)
    # Timeouts: failing spans whose error names one (the text is built for error spans only).
    timeout = np.zeros(len(spans), dtype=bool)
    failing = np.flatnonzero(error)
    if len(failing):
        failed_rows = spans.iloc[failing]
        text = (failed_rows["error_type"].fillna("") + " " + failed_rows["exception_type"].fillna("")
                + " " + failed_rows["status_message"].fillna("")).astype(str).str.lower()
        timeout[failing] = (text.str.contains("timeout|deadline", regex=True).to_numpy(dtype=bool)
                            | (failed_rows["http_status"] == 504).to_numpy(dtype=bool))

    def count(mask) -> np.ndarray:
        return np.bincount(flow_code, weights=np.asarray(mask, dtype=np.float64),
                           minlength=n_flows).astype(np.int64)

    start, end = spans["start_ns"].to_numpy(), spans["end_ns"].to_numpy()
    first_start = np.full(n_flows, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first_start, flow_code, start)
    last_end = np.full(n_flows, np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(last_end, flow_code, end)
    trace_code = pd.factorize(spans["trace_id"].to_numpy())[0].astype(np.int64)
    flow_traces = pd.unique(flow_code.astype(np.int64) * (int(trace_code.max()) + 1) + trace_code)
    flows = frame({
        "flow_id": flow_ids,
        "start_ns": first_start, "end_ns": last_end,
        "traces": np.bincount(flow_traces // (int(trace_code.max()) + 1), minlength=n_flows),
        "spans": np.bincount(flow_code, minlength=n_flows),
        "services": _services_per_flow(spans, flow_code, n_flows),
        "business_key": _first_value(spans["business_key"].to_numpy(), flow_code, n_flows),
        "errors": count(error),
        "compensations": count(spans["compensation"].fillna(False).astype(bool)),
        "retries": count(spans["resend_count"].fillna(0) > 0),
        "fast_fails": count(spans["breaker_state"].to_numpy() == "open"),
        "dead_letters": count(pd.notna(spans["dead_letter_from"].to_numpy())),
        "timeouts": count(timeout),
        "skew_adjusted": count(pd.notna(spans["skew_note"].to_numpy())),
    }).set_index("flow_id")
    flows["duration_ns"] = flows["end_ns"] - flows["start_ns"]
    # Failed: a request or message handling that failed at its top (a retried call that
    # succeeded in the end is an error span, not a failed flow).
    called = np.zeros(len(spans), dtype=bool)
    called[edges.loc[edges["kind"] == CALL, "dst_pos"].to_numpy(dtype=np.int64)] = True
    flows["failed"] = count(error & ~called) > 0
    # The root: the earliest span without a parent in the flow's first trace (ties: first row).
    parentless = np.flatnonzero(pd.isna(spans["parent_span_id"].to_numpy()))
    by_flow = parentless[np.lexsort((start[parentless], flow_code[parentless]))]
    keep = np.ones(len(by_flow), dtype=bool)
    keep[1:] = flow_code[by_flow][1:] != flow_code[by_flow][:-1]
    root_rows = by_flow[keep]
    roots = frame({"position": root_rows, "key": spans["key"].to_numpy()[root_rows],
                   "service": spans["service_name"].to_numpy()[root_rows],
                   "name": spans["name"].to_numpy()[root_rows]},
                  index=pd.Index(flow_ids[flow_code[root_rows]], dtype=object))
    flows["root_span"] = roots["key"]
    flows["root_service"] = roots["service"]
    flows["root_name"] = roots["name"]
    hop_counts = flowlib.hops(spans, edges, flow_code, flow_ids)
    flows["sync_hops"] = hop_counts["sync_hops"].to_numpy()
    flows["async_hops"] = hop_counts["async_hops"].to_numpy()
    flows["coordinator"] = hop_counts["coordinator"].to_numpy()
    flows["style"] = objects([flowlib.style_of(s, a)
                              for s, a in zip(flows["sync_hops"].tolist(), flows["async_hops"].tolist())]
                             ).to_numpy()
    total = flows["sync_hops"] + flows["async_hops"]
    flows["async_share"] = np.where(total > 0, flows["async_hops"] / total.where(total > 0, 1), 0.0)
    type_of, signature = flowlib.shapes(spans, edges, roots["position"].to_dict(),
                                        (flow_code, flow_ids))
    type_ids = pd.Series(type_of, dtype=object)
    flows["type_id"] = type_ids
    flows["signature"] = flows["type_id"].map(signature)
    flows.index.name = "flow_id"
    return flows.reset_index()


def _services_per_flow(spans: pd.DataFrame, flow_code: np.ndarray, n_flows: int) -> list[list[str]]:
    """Each flow's services, sorted by name."""
    service_code, services = pd.factorize(spans["service_name"].to_numpy(), sort=True)
    width = np.int64(len(services) + 1)
    pairs = np.sort(pd.unique(flow_code.astype(np.int64) * width + service_code))
    flow, service = pairs // width, pairs % width
    names = np.asarray(services, dtype=object)[service]
    bounds = np.searchsorted(flow, np.arange(n_flows + 1))
    return [names[bounds[i]:bounds[i + 1]].tolist() for i in range(n_flows)]


def _first_value(values: np.ndarray, flow_code: np.ndarray, n_flows: int) -> np.ndarray:
    """Each flow's first non-null value, in row order."""
    out = np.full(n_flows, None, dtype=object)
    present = np.flatnonzero(pd.notna(values))
    codes, first = np.unique(flow_code[present], return_index=True)
    out[codes] = values[present[first]]
    return out


def flow_types(analysis: Analysis) -> pd.DataFrame:
    flows = analysis.flows
    if flows.empty:
        return pd.DataFrame()
    grouped = flows.groupby("type_id")
    types = pd.DataFrame({
        "flows": grouped.size(),
        "root_service": grouped["root_service"].first(),
        "root_name": grouped["root_name"].first(),
        "style": grouped["style"].agg(lambda s: s.mode().iat[0]),
        "error_rate": grouped["failed"].mean(),
        "p50_ms": grouped["duration_ns"].quantile(0.5) / 1e6,
        "p95_ms": grouped["duration_ns"].quantile(0.95) / 1e6,
        "p99_ms": grouped["duration_ns"].quantile(0.99) / 1e6,
        "compensating": grouped["compensations"].agg(lambda s: bool((s > 0).mean() > 0.5)),
        "signature": grouped["signature"].first(),
    }).reset_index()
    # Name: the root operation, and the variant's rank by frequency among flows from it.
    types = types.sort_values(["root_service", "root_name", "flows", "type_id"],
                              ascending=[True, True, False, True], kind="stable")
    types["variant"] = types.groupby(["root_service", "root_name"]).cumcount() + 1
    types["name"] = types["root_service"] + " " + types["root_name"] + " #" + types["variant"].astype(str)
    return types.reset_index(drop=True)


@functools.lru_cache(maxsize=4096)
def _steps(signature: str) -> frozenset[str]:
    return flowlib.steps_of(signature)


def _mark_incomplete(analysis: Analysis) -> None:
    """A flow without any error that lacks steps its root operation's usual shape has, and has
    been quiet long enough that they should have happened, is incomplete (a stuck saga, a
    consumer that never ran). One that is not quiet yet is still running."""
    flows, types = analysis.flows, analysis.flow_types
    # failed: it failed at the top; degraded: errors inside were handled (a retry that
    # succeeded, a failed payment answered with a compensating event).
    flows["status"] = np.where(flows["failed"], "failed",
                               np.where(flows["errors"] > 0, "degraded", "complete"))
    flows["missing_steps"] = [[] for _ in range(len(flows))]
    if types.empty:
        return
    usual = (types.sort_values(["flows", "type_id"], ascending=[False, True], kind="stable")
             .drop_duplicates(["root_service", "root_name"]))
    expected = {(r.root_service, r.root_name): (_steps(r.signature), r.p50_ms)
                for r in usual.itertuples()}
    as_of = analysis.as_of_ns if analysis.as_of_ns is not None else int(flows["end_ns"].max())
    # What is missing depends only on the flow's root operation and shape: once per pair.
    candidates = flows[(flows["errors"] == 0) & flows["signature"].map(lambda v: isinstance(v, str))]
    pairs = candidates[["root_service", "root_name", "signature"]].drop_duplicates()
    missing_of, limit_of = {}, {}
    for root_service, root_name, signature in pairs.itertuples(index=False):
        steps, p50_ms = expected.get((root_service, root_name), (frozenset(), 0))
        missing = sorted(steps - _steps(signature))
        if missing:
            missing_of[(root_service, root_name, signature)] = missing
            limit_of[(root_service, root_name, signature)] = max(
                INCOMPLETE_AFTER_MIN_NS, INCOMPLETE_AFTER_P50_FACTOR * p50_ms * 1e6)
    if not missing_of:
        return
    shape = list(zip(candidates["root_service"], candidates["root_name"], candidates["signature"]))
    lacking = np.array([key in missing_of for key in shape], dtype=bool)
    rows = candidates.index[lacking]
    keys = [key for key, lack in zip(shape, lacking) if lack]
    quiet_for = as_of - flows.loc[rows, "end_ns"].to_numpy()
    limits = np.array([limit_of[key] for key in keys], dtype=np.float64)
    flows.loc[rows, "status"] = np.where(quiet_for >= limits, "incomplete", "running")
    missing_steps = flows["missing_steps"].to_numpy().copy()
    for row, key in zip(rows, keys):
        missing_steps[row] = missing_of[key]
    flows["missing_steps"] = objects(missing_steps).to_numpy()
