"""All store access and analysis for the UI: pure functions returning typed records and
DataFrames. Nothing here imports Textual; the views call these from worker threads."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from tracekit.analysis.model import CALL, Analysis

SPARK = "▁▂▃▄▅▆▇█"
FLOWS_SHOWN = 200_000        # rows the flows list holds (Arrow-backed: drawn only in view)
SQL_ROWS_SHOWN = 10_000      # rows the SQL console fetches; export writes them all
LOGS_SHOWN = 500


def sql(name: str) -> str:
    return resources.files("tui").joinpath("sql", f"{name}.sql").read_text()


# --- the store before any analysis: what the first paint shows ---------------------------


@dataclass(frozen=True)
class StoreStats:
    path: str
    spans: int
    last_batch: int
    first_ns: int | None
    last_ns: int | None
    services: tuple[str, ...]
    via_collector: bool


def store_stats(store) -> StoreStats:
    from tracekit.store import LocalStore

    row = store.arrow(sql("stats")).to_pylist()[0]
    return StoreStats(str(store.path), int(row["spans"] or 0), int(row["last_batch"] or 0),
                      row["first_ns"], row["last_ns"], tuple(row["services"] or ()),
                      not isinstance(store, LocalStore))


# --- the analysis, indexed for the views -------------------------------------------------


@dataclass(frozen=True, repr=False, eq=False)     # identity: reactives compare with ==
class Snapshot:
    """One analysis of the store and the indexes that make opening a flow cheap."""

    def __repr__(self) -> str:   # workers describe their arguments: keep it short
        return f"Snapshot(version={self.version}, flows={len(self.analysis.flows)})"

    analysis: Analysis
    paths: pd.DataFrame
    span_rows: dict                 # flow_id → positions in analysis.spans
    edge_rows: dict                 # flow_id → positions in analysis.edges
    path_rows: dict                 # flow_id → positions in paths
    key_index: pd.Index             # span key (trace:span) → position in analysis.spans
    type_names: dict
    last_batch: int
    version: int = 0

    @property
    def flows(self) -> pd.DataFrame:
        return self.analysis.flows

    def flow_of_span(self, trace_id: str, span_id: str) -> str | None:
        pos = self.key_index.get_indexer([f"{trace_id}:{span_id}"])[0]
        return None if pos < 0 else self.analysis.spans["flow_id"].iat[pos]


def _positions(column: pd.Series) -> dict:
    if column.empty:
        return {}
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(uniques) + 1))
    return {u: order[bounds[i]:bounds[i + 1]] for i, u in enumerate(uniques)}


def snapshot(live, version: int = 0) -> Snapshot:
    """Index the live analysis (`tracekit.analysis.incremental.LiveAnalysis`) by flow."""
    analysis, paths = live.analysis, live.paths
    if paths is None:
        paths = pd.DataFrame(columns=["flow_id", "seq", "span", "segment", "start_ns", "end_ns",
                                      "service_name", "name", "duration_ns"])
    types = analysis.flow_types
    key_index = pd.Index(analysis.spans["key"]) if "key" in analysis.spans else pd.Index([])
    key_index.get_indexer(key_index[:1])        # build the hash table here, off the UI thread
    return Snapshot(
        analysis, paths,
        _positions(analysis.spans["flow_id"]) if len(analysis.spans) else {},
        _positions(analysis.edges["flow_id"]) if len(analysis.edges) else {},
        _positions(paths["flow_id"]) if len(paths) else {},
        key_index,
        dict(zip(types["type_id"], types["name"])) if not types.empty else {},
        live.last_batch, version)


def preview_batch(store, spans: int) -> int | None:
    """The batch after which about `spans` spans were committed (None: the store holds fewer)."""
    found = store.arrow(sql("newest_batch"), {"spans": spans}).to_pylist()
    return int(found[0]["batch_id"]) if found else None


def load_new_spans(store, since_batch: int) -> pd.DataFrame:
    from tracekit.analysis.spans import load_arrow, to_frame

    return to_frame(load_arrow(store, since_batch=since_batch))


# --- time windows --------------------------------------------------------------------------

WINDOWS = (("all", None), ("last 1m", 60), ("last 5m", 300), ("last 15m", 900), ("last 1h", 3600))


def window_bounds(label: str, last_ns: int | None) -> tuple[int, int] | None:
    """(start, end) ns for a window label, counted back from the newest data (not the clock:
    a store from yesterday still shows its last minutes)."""
    seconds = dict(WINDOWS).get(label)
    if seconds is None or last_ns is None:
        return None
    return (last_ns - seconds * 1_000_000_000, last_ns + 1)


def in_window(flows: pd.DataFrame, window: tuple[int, int] | None) -> pd.DataFrame:
    if window is None or flows.empty:
        return flows
    start = flows["start_ns"].to_numpy()
    return flows[(start >= window[0]) & (start < window[1])]


# --- overview: flow types ------------------------------------------------------------------

TYPE_SORTS = ("flows", "error_rate", "p95_ms", "p50_ms", "name")


def sparkline(values) -> str:
    values = np.asarray(values, dtype=float)
    top = values.max() if len(values) else 0
    if top <= 0:
        return SPARK[0] * len(values)
    return "".join(SPARK[min(len(SPARK) - 1, int(v / top * (len(SPARK) - 1) + 0.999))] if v else " "
                   for v in values)


def type_rows(snap: Snapshot, window: tuple[int, int] | None, text: str = "",
              sort: str = "flows", buckets: int = 16) -> pd.DataFrame:
    """One row per flow type in the window: style, flows, error rate, p50/p95, a sparkline of
    flows started over the window."""
    flows = in_window(snap.flows, window)
    if flows.empty:
        return pd.DataFrame(columns=["type_id", "name", "style", "flows", "failed", "error_rate",
                                     "p50_ms", "p95_ms", "trend"])
    grouped = flows.groupby("type_id", sort=False)
    rows = pd.DataFrame({
        "flows": grouped.size(),
        "failed": grouped["failed"].sum().astype(int),
        "p50_ms": grouped["duration_ns"].quantile(0.5) / 1e6,
        "p95_ms": grouped["duration_ns"].quantile(0.95) / 1e6,
    })
    rows["error_rate"] = rows["failed"] / rows["flows"]
    types = snap.analysis.flow_types.set_index("type_id")
    rows["name"] = rows.index.map(types["name"])
    rows["style"] = rows.index.map(types["style"])
    lo, hi = (window if window else (int(flows["start_ns"].min()), int(flows["start_ns"].max()) + 1))
    width = max(hi - lo, 1)
    bucket = np.clip(((flows["start_ns"].to_numpy() - lo) * buckets) // width, 0, buckets - 1)
    counts = (pd.DataFrame({"type_id": flows["type_id"].to_numpy(), "b": bucket})
              .groupby(["type_id", "b"]).size().unstack(fill_value=0)
              .reindex(columns=range(buckets), fill_value=0))
    rows["trend"] = [sparkline(counts.loc[t].to_numpy()) for t in rows.index]
    rows = rows.reset_index()
    if text:
        needle = text.lower()
        rows = rows[rows["name"].str.lower().str.contains(needle, regex=False)
                    | rows["style"].str.lower().str.contains(needle, regex=False)]
    ascending = sort == "name"
    return rows.sort_values([sort, "name"], ascending=[ascending, True]).reset_index(drop=True)


# --- flows list -------------------------------------------------------------------------------

FLOW_SORTS = {"start": "start_ns", "duration": "duration_ns", "errors": "errors"}


@dataclass(frozen=True)
class FlowQuery:
    type_id: str | None = None
    search: str = ""
    window: tuple[int, int] | None = None
    failed_only: bool = False
    sort: str = "start"
    descending: bool = True


def flow_rows(snap: Snapshot, query: FlowQuery, limit: int = FLOWS_SHOWN) -> tuple[pd.DataFrame, int]:
    """The flows matching `query`, sorted, the first `limit` of them, and how many matched.
    The search matches a flow id (prefix), a trace id, a business key, a service, or text in
    an error (status message or exception)."""
    flows = in_window(snap.flows, query.window)
    if flows.empty:
        return pd.DataFrame(columns=["flow_id", "start_ns", "duration_ms", "status", "style", "type",
                                     "key", "traces", "spans", "errors"]), 0
    if query.type_id:
        flows = flows[flows["type_id"].to_numpy() == query.type_id]
    if query.failed_only:
        flows = flows[flows["failed"].to_numpy(dtype=bool)]
    needle = query.search.strip()
    if needle:
        flows = flows[flows["flow_id"].isin(search_flows(snap, needle))]
    total = len(flows)
    flows = flows.sort_values(FLOW_SORTS[query.sort], ascending=not query.descending,
                              kind="stable").head(limit)
    rows = pd.DataFrame({
        "flow_id": flows["flow_id"], "start_ns": flows["start_ns"],
        "duration_ms": flows["duration_ns"] / 1e6, "status": flows["status"],
        "style": flows["style"], "type": flows["type_id"].map(snap.type_names),
        "key": flows["business_key"], "traces": flows["traces"], "spans": flows["spans"],
        "errors": flows["errors"]})
    return rows.reset_index(drop=True), total


def search_flows(snap: Snapshot, needle: str) -> set:
    flows, spans = snap.flows, snap.analysis.spans
    lowered = needle.lower()
    hits = set(flows.loc[flows["flow_id"].str.startswith(needle), "flow_id"])
    hits |= set(flows.loc[flows["business_key"] == needle, "flow_id"])
    hits |= set(spans.loc[spans["trace_id"].to_numpy() == lowered, "flow_id"])
    service = spans["service_name"].to_numpy() == needle
    if service.any():
        hits |= set(spans.loc[service, "flow_id"])
    errors = spans[spans["error"].to_numpy(dtype=bool)]
    text = (errors["status_message"].fillna("") + " " + errors["exception_type"].fillna("")
            + " " + errors["exception_message"].fillna("")).str.lower()
    hits |= set(errors.loc[text.str.contains(lowered, regex=False), "flow_id"])
    return hits


# --- one flow: the waterfall --------------------------------------------------------------------


@dataclass
class Row:
    """One line of the waterfall: a span, or the broker wait before a consumer."""

    key: str
    depth: int
    service: str
    name: str
    kind: str
    start_ns: int
    end_ns: int
    error: bool = False
    critical: bool = False
    origin: bool = False
    wait: bool = False              # a broker-wait line (key: the consumer waited for)
    via: str | None = None          # how a consumer joined its producer (link, parent, message id)
    destination: str | None = None
    children: int = 0               # rows below it in its subtree
    status_message: str | None = None

    @property
    def trace_id(self) -> str:
        return self.key.split(":", 1)[0]

    @property
    def span_id(self) -> str:
        return self.key.split(":", 1)[1]


@dataclass
class Waterfall:
    flow_id: str
    start_ns: int
    end_ns: int
    rows: list[Row]
    services: list[str]
    links: dict[str, list[str]] = field(default_factory=dict)   # span → linked spans (both ways)
    origin: str | None = None
    summary: dict = field(default_factory=dict)

    def position(self, key: str) -> int | None:
        for i, row in enumerate(self.rows):
            if row.key == key and not row.wait:
                return i
        return None


def waterfall(snap: Snapshot, flow_id: str) -> Waterfall:
    """Every span of a flow in call-tree order, consumers under their producers with the
    broker wait between them, the critical path and the failure origin marked."""
    from tracekit.analysis.causes import origins

    analysis = snap.analysis
    spans = analysis.spans.iloc[snap.span_rows.get(flow_id, [])]
    edges = analysis.edges.iloc[snap.edge_rows.get(flow_id, [])]
    paths = snap.paths.iloc[snap.path_rows.get(flow_id, [])]
    flow = analysis.flows[analysis.flows["flow_id"] == flow_id].iloc[0]
    info = {k: r for k, r in zip(spans["key"], spans.itertuples(index=False))}
    children: dict[str, list[str]] = {}
    has_parent: set[str] = set()
    kinds, via_of = edges["kind"].to_numpy(), edges["via"].to_numpy()
    src, dst = edges["src"].to_numpy(), edges["dst"].to_numpy()
    for a, b in zip(src[kinds == CALL], dst[kinds == CALL]):
        if a in info and b in info:
            children.setdefault(a, []).append(b)
            has_parent.add(b)
    # A consumer at the top of its trace goes under the latest-ending producer it joined.
    producer: dict[str, tuple[str, str]] = {}
    links: dict[str, list[str]] = {}
    for a, b, kind, via in zip(src, dst, kinds, via_of):
        if kind == CALL or a not in info or b not in info:
            continue
        links.setdefault(a, []).append(b)
        links.setdefault(b, []).append(a)
        if via == "business_key" or b in has_parent:
            continue
        if b not in producer or info[a].end_adj > info[producer[b][0]].end_adj:
            producer[b] = (a, via)
    for b, (a, _) in producer.items():
        children.setdefault(a, []).append(b)
    roots = [k for k in info if k not in has_parent and k not in producer]
    start_of = {k: r.start_adj for k, r in info.items()}
    critical = set(paths.loc[paths["segment"] == "span", "span"])
    waited = set(paths.loc[paths["segment"] == "broker_wait", "span"])
    sub = Analysis(spans, edges, analysis.flows[analysis.flows["flow_id"] == flow_id])
    origin = origins(sub, [flow_id]).get(flow_id)
    rows: list[Row] = []

    def visit(key: str, depth: int) -> None:
        r = info[key]
        first = len(rows)
        if key in producer:
            prod = info[producer[key][0]]
            rows.append(Row(key, depth, r.service_name, r.name, "WAIT", int(prod.end_adj),
                            int(max(r.start_adj, prod.end_adj)), critical=key in waited,
                            wait=True, via=producer[key][1],
                            destination=r.destination if isinstance(r.destination, str) else None))
        rows.append(Row(key, depth, r.service_name, r.name, r.kind, int(r.start_adj),
                        int(r.end_adj), bool(r.error), key in critical, key == origin,
                        via=producer[key][1] if key in producer else None,
                        destination=r.destination if isinstance(r.destination, str) else None,
                        status_message=r.status_message if isinstance(r.status_message, str) else None))
        me = len(rows) - 1
        for child in sorted(children.get(key, ()), key=start_of.__getitem__):
            visit(child, depth + 1)
        rows[me].children = len(rows) - me - 1
        if first != me:          # the wait line folds with its consumer
            rows[first].children = len(rows) - first - 1

    import sys
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10_000))
    try:
        for root in sorted(roots, key=start_of.__getitem__):
            visit(root, 0)
    finally:
        sys.setrecursionlimit(limit)
    services = sorted(set(spans["service_name"]))
    summary = {"status": flow["status"], "style": flow["style"], "key": flow["business_key"],
               "type": snap.type_names.get(flow["type_id"]), "traces": int(flow["traces"]),
               "spans": int(flow["spans"]), "errors": int(flow["errors"]),
               "duration_ms": float(flow["duration_ns"]) / 1e6,
               "critical_ms": float(paths["duration_ns"].sum()) / 1e6 if len(paths) else 0.0}
    start = int(min(spans["start_adj"].min(), flow["start_ns"]))
    end = int(max(spans["end_adj"].max(), flow["end_ns"]))
    return Waterfall(flow_id, start, end, rows, services, links, origin, summary)


# --- one span: detail and logs --------------------------------------------------------------------


@dataclass(frozen=True)
class LogLine:
    ts_ns: int
    span_id: str | None
    service: str
    severity: str
    body: str


@dataclass(frozen=True)
class SpanDetail:
    trace_id: str
    span_id: str
    fields: dict
    attributes: dict
    resource: dict
    events: list
    links: list                       # [{"trace_id", "span_id", "attributes"}]
    linked_from: list                 # spans that link to this one
    logs: list[LogLine]

    @property
    def span_logs(self) -> list[LogLine]:
        return [line for line in self.logs if line.span_id == self.span_id]


def _json(text) -> object:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def span_detail(store, trace_id: str, span_id: str) -> SpanDetail | None:
    found = store.arrow(sql("span"), {"trace_id": trace_id, "span_id": span_id}).to_pylist()
    if not found:
        return None
    row = found[0]
    logs = store.arrow(sql("trace_logs"), {"trace_id": trace_id, "limit": LOGS_SHOWN}).to_pylist()
    back = store.arrow(sql("backlinks"), {"trace_id": trace_id, "span_id": span_id}).to_pylist()
    fields = {k: row[k] for k in ("name", "kind", "service_name", "status_code", "status_message",
                                  "start_ns", "end_ns", "duration_ns", "parent_span_id",
                                  "scope_name", "scope_version")}
    return SpanDetail(
        trace_id, span_id, fields, _json(row["attributes"]) or {}, _json(row["resource"]) or {},
        _json(row["events"]) or [],
        [{"trace_id": link.get("trace_id"), "span_id": link.get("span_id"),
          "attributes": link.get("attributes")} for link in (_json(row["links"]) or [])],
        back,
        [LogLine(int(r["ts_ns"]), r["span_id"], r["service_name"], r["severity_text"] or "",
                 r["body"] or "") for r in logs])


# --- service map ---------------------------------------------------------------------------------


def service_map(snap: Snapshot) -> pd.DataFrame:
    from tracekit.analysis.tables import service_edges

    if snap.analysis.edges.empty:
        return pd.DataFrame(columns=["src_service", "dst_service", "kind", "calls", "errors",
                                     "error_rate", "p50_ms", "p95_ms", "p99_ms"])
    return service_edges(snap.analysis).sort_values(["src_service", "kind", "dst_service"])


# --- failures and root causes ----------------------------------------------------------------------


def causes(snap: Snapshot, window: tuple[int, int] | None) -> tuple[list, tuple | None, tuple | None]:
    """The root-cause ranking for the window against the same length just before it. With
    no window, the newest half of the data against the older half."""
    from tracekit.analysis.causes import rank

    flows = snap.flows
    if flows.empty:
        return [], None, None
    if window is None:
        lo, hi = int(flows["start_ns"].min()), int(flows["start_ns"].max()) + 1
        mid = lo + (hi - lo) // 2
        window, baseline = (mid, hi), (lo, mid)
    else:
        baseline = (window[0] - (window[1] - window[0]), window[0])
    return rank(snap.analysis, snap.paths, window, baseline), window, baseline


# --- SQL console ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueryResult:
    table: object                 # pyarrow.Table: the first SQL_ROWS_SHOWN rows
    truncated: bool
    elapsed_s: float


def run_sql(store, query: str, tables: dict | None, max_rows: int | None = SQL_ROWS_SHOWN):
    """Run read-only SQL. On a local store the analysis tables the query names are the UI's
    own (registered on a fresh cursor); through a collector, the collector computes them."""
    from tracekit.analysis import referenced
    from tracekit.readonly import run_read_only
    from tracekit.store import LocalStore

    fetch = None if max_rows is None else max_rows + 1
    if not isinstance(store, LocalStore) or not referenced(query) or tables is None:
        return store.arrow(query, max_rows=fetch)
    cur = store.conn.cursor()
    try:
        return run_read_only(cur, query, None, _arrow_or_empty, store.timeout_s, fetch,
                             tables=tables)
    finally:
        cur.close()


def _arrow_or_empty(relation):
    import pyarrow as pa

    return pa.table({}) if relation is None else relation.to_arrow_table()


def analysis_tables(snap: Snapshot) -> dict:
    from tracekit.analysis.tables import build

    return build(snap.analysis, snap.paths)


def schema(store) -> dict[str, list[tuple[str, str]]]:
    out: dict[str, list[tuple[str, str]]] = {}
    for row in store.arrow(sql("columns")).to_pylist():
        out.setdefault(row["table_name"], []).append((row["column_name"], row["data_type"]))
    return out


ANALYSIS_COLUMNS = {
    "flows": "flow_id start_time end_time duration_ms status failed style type_name business_key "
             "traces spans errors services root_service root_name",
    "flow_spans": "flow_id trace_id span_id service_name name kind start_time end_time self_ms error",
    "flow_edges": "flow_id kind via src_service src_name dst_service dst_name wait_ms destination",
    "flow_types": "type_id name style flows error_rate p50_ms p95_ms p99_ms critical_steps",
    "critical_path": "flow_id seq trace_id span_id service_name name segment duration_ms",
    "service_edges": "src_service dst_service kind calls errors error_rate p50_ms p95_ms",
}


def export(table, store_path: str, fmt: str, stamp: str) -> Path:
    """Write a result next to the store: CSV or Parquet."""
    folder = Path(store_path).resolve().parent
    target = folder / f"tracekit-query-{stamp}.{fmt}"
    if fmt == "csv":
        import pyarrow.csv as pcsv
        pcsv.write_csv(_flat(table), target)
    else:
        import pyarrow.parquet as pq
        pq.write_table(table, target)
    return target


def _flat(table):
    """CSV has no nested values: lists, structs and maps become JSON text."""
    import pyarrow as pa

    columns = []
    for column in table.columns:
        if pa.types.is_nested(column.type):
            column = pa.array([None if v is None else json.dumps(v, default=str)
                               for v in column.to_pylist()], type=pa.string())
        columns.append(column)
    return pa.table(columns, names=table.column_names)


# --- incident reports ------------------------------------------------------------------------------------


def reports_available() -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec("tracekit.report") is not None
    except ModuleNotFoundError:
        return False


def write_report(store, store_path: str, stamp: str, *, window=None, flow_id=None) -> Path:
    from tracekit.report import build, render

    report = build(store, window=window, flow_id=flow_id)
    target = Path(store_path).resolve().parent / f"tracekit-report-{stamp}.md"
    target.write_text(render(report, "md"))
    return target
