"""Analyses of a part of the store: the stored flows a reader asks for (a window, one flow),
re-analyzed from their own spans only, with what depends on the rest of the store (each
flow's status, the flow types) taken from the store's analysis tables.

A stored flow is a closed set of spans (nothing outside it connects to it), so analyzing its
spans alone gives the same flow, edges, self times and critical path as analyzing the whole
store; readers that need span-level columns (the root-cause ranking, a flow's detail, the
report's exemplar) use this instead of loading every span.
"""

from __future__ import annotations

import pandas as pd

from tracekit import queries
from tracekit.analysis.model import Analysis
from tracekit.analysis.run import analyze_spans
from tracekit.analysis.spans import DEFAULT_BUSINESS_KEYS, load_arrow, to_frame
from tracekit.errors import TracekitError


NO_BATCH_BOUND = 2**62


def analyzed_through(store) -> int:
    """The last ingest batch the analysis tables hold (every batch, for a lake: its Spark
    analysis covers each span the lake held when it ran)."""
    if store.lake:
        return NO_BATCH_BOUND
    return int(store.scalar("SELECT coalesce(max(analyzed_through), 0) FROM analysis_progress"))


def data_range(store) -> tuple[int, int]:
    """(first, last) flow start in ns; a TracekitError that says what to do when the store
    holds no flows (no spans yet, or spans its analysis tables do not hold yet)."""
    row = store.arrow(queries.load("analysis/range")).to_pylist()[0]
    if row["first_ns"] is None:
        from tracekit.analysis.ready import behind

        lacking = behind(store)
        if lacking:
            raise TracekitError(f"{store.path} holds {lacking:,} spans its analysis tables do not "
                                f"hold yet: run `tracekit analyze --db {store.path}`")
        raise TracekitError(f"{store.path} holds no flows yet; send traces first")
    return int(row["first_ns"]), int(row["last_ns"])


def flows_started(store, start_ns: int, end_ns: int,
                  flow_ids: tuple[str, ...] = ()) -> pd.DataFrame:
    """(flow_id, start_ns, end_ns) of the flows started in [start_ns, end_ns), and of
    `flow_ids` wherever they are."""
    return store.df(queries.load("analysis/flows_started"),
                    {"start_ns": int(start_ns), "end_ns": int(end_ns), "flow_ids": list(flow_ids)})


def analysis_of(store, flows: pd.DataFrame,
                business_keys: tuple[str, ...] = DEFAULT_BUSINESS_KEYS) -> Analysis:
    """The analysis of `flows` (flow_id, start_ns, end_ns: stored flows) from their spans, with
    each flow's status and the flow types as the store has them."""
    bounds = (int(flows["start_ns"].min()), int(flows["end_ns"].max())) if len(flows) else (0, 0)
    spans = to_frame(load_arrow(store, business_keys=business_keys,
                                upto_batch=analyzed_through(store),
                                flows=(flows["flow_id"].tolist(), *bounds)))
    analysis = analyze_spans(spans)
    _attach_error_logs(store, analysis.spans, bounds)
    stored = store.df(queries.load("analysis/flow_status"),
                      {"flow_ids": flows["flow_id"].tolist(), "from_ns": bounds[0], "to_ns": bounds[1]})
    if len(analysis.flows):
        status = stored.set_index("flow_id")
        known = analysis.flows["flow_id"].isin(status.index)
        if not known.all():
            missing = analysis.flows.loc[~known, "flow_id"].head(3).tolist()
            raise TracekitError(f"the analysis tables do not hold flows {missing}: they are out of "
                                "step with the spans; run `tracekit analyze --rebuild`")
        ids = analysis.flows["flow_id"]
        analysis.flows["status"] = ids.map(status["status"]).to_numpy(dtype=object)
        analysis.flows["missing_steps"] = ids.map(status["missing_steps"]).map(list).to_numpy(dtype=object)
    analysis.flow_types = flow_types(store)
    return analysis


# Logs are written while their span runs; a little later for exporters that stamp them late.
LOG_SLACK_NS = 5 * 10**9


def _attach_error_logs(store, spans: pd.DataFrame, bounds: tuple[int, int]) -> None:
    """Each span's error logs (`error_logs`: how many, `error_log`: the first message), read
    for the spans' time range only."""
    spans["error_logs"] = 0
    spans["error_log"] = None
    if spans.empty:
        return
    logs = store.df(queries.load("analysis/error_logs"),
                    {"from_ns": bounds[0], "to_ns": bounds[1] + LOG_SLACK_NS})
    if len(logs):
        by_key = logs.set_index("key")
        spans["error_logs"] = spans["key"].map(by_key["logs"]).fillna(0).astype("int64").to_numpy()
        spans["error_log"] = spans["key"].map(by_key["message"]).to_numpy(dtype=object)


def logs_written(store, start_ns: int, end_ns: int) -> bool:
    """Whether any log record was written in [start_ns, end_ns)."""
    return bool(store.scalar(queries.load("analysis/logs_written"),
                             {"from_ns": int(start_ns), "to_ns": int(end_ns)}))


# The limit a comparison states when `baseline_without_logs`.
NO_BASELINE_LOGS = ("the baseline holds no logs while the window does: failures seen only in "
                    "error logs are ranked on the window alone, so errors logged all the time "
                    "look new")


def baseline_without_logs(store, window: tuple[int, int], baseline: tuple[int, int]) -> bool:
    """Whether the window has logs and the baseline none at all (its logs were not collected,
    or not kept): error logs count as failures, and such a baseline cannot show them."""
    return logs_written(store, *window) and not logs_written(store, *baseline)


def flow_types(store) -> pd.DataFrame:
    """The store's flow types, as the batch analysis gives them."""
    types = store.df("SELECT * FROM flow_types ORDER BY root_service, root_name, variant")
    return types if len(types) else pd.DataFrame()


def window_analysis(store, start_ns: int, end_ns: int, flow_ids: tuple[str, ...] = (),
                    business_keys: tuple[str, ...] = DEFAULT_BUSINESS_KEYS) -> Analysis:
    """The analysis of the flows started in [start_ns, end_ns) (and of `flow_ids`)."""
    return analysis_of(store, flows_started(store, start_ns, end_ns, flow_ids), business_keys)
