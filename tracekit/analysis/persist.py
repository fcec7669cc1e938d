"""The analysis tables in the store, kept up to date as ingest batches are committed.

An update reads the spans of the batches after the last one analyzed (in bounded chunks),
finds the stored flows they touch through the lookup tables (their own traces, the traces
their links point to, stored spans linking to them, shared message ids and business keys),
re-analyzes those flows' spans together with the new ones, and replaces those flows' rows in
one transaction together with its progress row: a crash leaves the tables as the last
committed update left them, and the next update goes on from there. docs/design/analysis-tables.md
has the design.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tracekit import queries
from tracekit.analysis import flows as flowlib
from tracekit.analysis.critical_paths import critical_paths
from tracekit.analysis.run import INCOMPLETE_AFTER_MIN_NS, INCOMPLETE_AFTER_P50_FACTOR, analyze_spans
from tracekit.analysis.spans import DEFAULT_BUSINESS_KEYS, load_arrow, to_frame
from tracekit.analysis.stitch import MAX_TRACES_PER_KEY
from tracekit.analysis.tables import critical_path_rows, flow_edge_rows, flow_rows, flow_span_rows
from tracekit.libc import release_freed_memory
from tracekit.staging import transaction

log = logging.getLogger(__name__)

CHUNK_SPANS = 250_000          # new spans read per update step: bounds an update's memory (~1 GiB)
PER_FLOW_TABLES = ("flow_rows", "flow_spans", "flow_edges", "critical_path", "flow_traces",
                   "flow_links", "flow_message_ids", "flow_business_keys")
# The tables whose rows carry their time, so that replacing a flow's rows reads only its stretch.
_TIMED = {"flow_rows": "start_time", "flow_spans": "start_time", "critical_path": "start_time",
          "flow_edges": "flow_start", "flow_traces": "flow_start"}


@dataclass(frozen=True)
class Progress:
    """How far the analysis tables are behind the spans."""

    analyzed_through: int     # last ingest batch analyzed
    last_batch: int           # last ingest batch stored
    spans_behind: int         # spans in the batches between
    forgetting: int = 0       # traces retention deleted whose flows are still in the tables

    @property
    def current(self) -> bool:
        return self.analyzed_through >= self.last_batch and not self.forgetting


@dataclass
class UpdateResult:
    """What an update did."""

    new_spans: int = 0          # spans of new batches read
    reanalyzed_spans: int = 0   # spans analyzed (new and those of the flows they touched)
    flows_written: int = 0
    flows_replaced: int = 0     # stored flows the new spans joined or changed
    chunks: int = 0             # updates committed, each in its own transaction
    seconds: float = 0.0

    def add(self, other: UpdateResult) -> None:
        self.new_spans += other.new_spans
        self.reanalyzed_spans += other.reanalyzed_spans
        self.flows_written += other.flows_written
        self.flows_replaced += other.flows_replaced
        self.chunks += other.chunks
        self.seconds += other.seconds

    def as_dict(self) -> dict:
        return dict(self.__dict__)


class _Cursor:
    """The analyzer's span loader reads through this connection."""

    def __init__(self, conn) -> None:
        self.conn = conn

    def arrow(self, sql: str, params=None) -> pa.Table:
        return self.conn.sql(sql, params=params or {}).to_arrow_table()


def progress(conn) -> Progress:
    """The analysis tables' progress against the stored batches."""
    through, last, behind, forgetting = conn.execute(queries.load("analysis/progress")).fetchall()[0]
    return Progress(int(through), int(last), int(behind), int(forgetting))


def update(conn, *, business_keys: tuple[str, ...] = DEFAULT_BUSINESS_KEYS,
           chunk_spans: int | Callable[[], int] = CHUNK_SPANS, upto_batch: int | None = None,
           on_progress: Callable[[int, int], None] | None = None,
           should_stop: Callable[[], bool] | None = None,
           compute: Callable[[pa.Table], dict[str, pa.Table]] | None = None,
           types: bool | None = None) -> UpdateResult:
    """Bring the analysis tables up to date with every committed batch (or up to
    `upto_batch`), `chunk_spans` new spans at a time (or as many as `chunk_spans()` gives
    before each chunk: the collector sizes them to the memory it has left; 0 stops the update
    there); `on_progress(spans done, spans to do)` after each chunk. The flow types are
    refreshed at the end when flows changed (`types` None), always (True) or only if they
    never were (False)."""
    chunk_now = chunk_spans if callable(chunk_spans) else lambda: chunk_spans
    total = UpdateResult()
    forget_deleted(conn, business_keys, compute, total)
    state = progress(conn)
    todo = state.spans_behind
    while True:
        if should_stop is not None and should_stop():
            break
        chunk = chunk_now()
        if chunk <= 0:
            break
        since = progress(conn).analyzed_through
        upto, spans = _next_chunk(conn, since, chunk, upto_batch)
        if upto is None:
            break
        # One batch larger than a chunk (a collector commits a row group at a time) is
        # analyzed in parts, by trace; the progress row comes with the last part.
        parts = max(1, -(-spans // chunk)) if spans > 1.5 * chunk else 1
        for part in range(parts):
            if part and should_stop is not None and should_stop():
                return total    # the batch is analyzed again, whole, next time
            total.add(apply_batches(conn, since, upto, business_keys, compute,
                                    part=(part, parts) if parts > 1 else None))
            if on_progress is not None:
                on_progress(total.new_spans, max(todo, total.new_spans))
    changed = bool(total.new_spans or total.flows_written)
    if types or (types is None and changed) or not _types_fresh(conn):
        refresh_types(conn)
    return total


def forget_deleted(conn, business_keys: tuple[str, ...] = DEFAULT_BUSINESS_KEYS,
                   compute: Callable[[pa.Table], dict[str, pa.Table]] | None = None,
                   total: UpdateResult | None = None, chunk_traces: int = 20_000) -> None:
    """Re-analyze, from the spans left, the flows of traces whose spans retention deleted
    (a flow none of whose spans is left disappears)."""
    cur = conn.cursor()
    while True:
        traces = cur.sql("SELECT DISTINCT trace_id FROM analysis_forget LIMIT $n",
                         params={"n": chunk_traces}).to_arrow_table()
        if traces.num_rows == 0:
            return
        through = progress(cur).analyzed_through
        cur.register("new_traces", pa.table({"v": traces.column(0)}))
        try:
            touched = cur.execute(queries.load("analysis/flows_of_traces")).df()
        finally:
            cur.unregister("new_traces")
        spans = _spans_of_flows(cur, touched, through, business_keys)
        rows = (compute or rows_of)(spans) if spans.num_rows else {"flow_rows": pa.table({})}
        with transaction(cur):
            _forget(cur, touched)
            _write(cur, rows)
            cur.execute("DELETE FROM analysis_forget WHERE trace_id IN "
                        "(SELECT unnest($traces::VARCHAR[]))", {"traces": traces.column(0).to_pylist()})
        if total is not None:
            total.flows_replaced += len(touched)
            total.flows_written += rows["flow_rows"].num_rows


def rebuild(conn, **options) -> UpdateResult:
    """Forget every analysis result and analyze the whole store again."""
    forget_all(conn)
    return update(conn, **options)


def forget_all(conn) -> None:
    """Empty the analysis tables: the store then reads as never analyzed."""
    with transaction(conn.cursor()) as cur:
        for table in (*PER_FLOW_TABLES, "flow_type_steps", "flow_shapes", "flow_type_rows",
                      "analysis_progress", "analysis_forget"):
            cur.execute(f"DELETE FROM {table}")   # names from the fixed list above


def _next_chunk(conn, since: int, chunk_spans: int, upto_batch: int | None
                ) -> tuple[int | None, int]:
    """The last batch of the next chunk after `since` (batches whose spans add up to about
    `chunk_spans`, at least one batch; None when nothing is left) and its spans."""
    [(upto, spans)] = conn.execute(queries.load("analysis/next_chunk"),
                                   {"since": since, "chunk": chunk_spans,
                                    "limit": upto_batch if upto_batch is not None else 2**63}
                                   ).fetchall()
    return (None, 0) if upto is None else (int(upto), int(spans))


def apply_batches(conn, since: int, upto: int,
                  business_keys: tuple[str, ...] = DEFAULT_BUSINESS_KEYS,
                  compute: Callable[[pa.Table], dict[str, pa.Table]] | None = None,
                  part: tuple[int, int] | None = None) -> UpdateResult:
    """Analyze the spans of batches (since, upto] into the tables, with the flows they touch
    (`part` (i, n): only the traces hashing to i modulo n; the progress row is written with
    the last part). `compute` turns spans into table rows (`rows_of`, by default here; the
    collector runs it in a worker process, so that its own threads keep the CPU)."""
    started = time.perf_counter()
    cur = conn.cursor()
    new = load_arrow(_Cursor(cur), business_keys=business_keys, since_batch=since,
                     upto_batch=upto, part=part)
    touched = _touched_flows(cur, new)
    # In parts, a touched flow may hold spans of this batch that an earlier part analyzed (or
    # a later one will): read its spans up to this batch; a span read twice counts once.
    old = _spans_of_flows(cur, touched, upto if part else since, business_keys)
    spans = pa.concat_tables([old, new.cast(old.schema)]) if old.num_rows else new
    rows = (compute or rows_of)(spans)
    result = UpdateResult(new_spans=new.num_rows, reanalyzed_spans=spans.num_rows,
                          flows_replaced=len(touched), flows_written=rows["flow_rows"].num_rows,
                          chunks=1)
    with transaction(cur):
        _forget(cur, touched)
        _write(cur, rows)
        if part is None or part[0] == part[1] - 1:
            cur.execute("INSERT INTO analysis_progress VALUES (?, now(), ?, ?)",
                        [upto, new.num_rows, result.flows_written])
    result.seconds = time.perf_counter() - started
    log.debug("analysis: batches %d-%d, %d new spans, %d analyzed, %d flows in %.2f s",
              since + 1, upto, result.new_spans, result.reanalyzed_spans, result.flows_written,
              result.seconds)
    return result


def rows_of(spans: pa.Table) -> dict[str, pa.Table]:
    """The analysis tables' rows for these spans (whole flows), and their lookups, as Arrow
    (cheap to hand from a worker process and for DuckDB to read). Pure: runs in any process."""
    try:
        return _rows_of(spans)
    finally:
        # A worker process holds on to what a large chunk allocated unless told to give it
        # back: it is the collector's memory too.
        gc.collect()
        release_freed_memory()


def _rows_of(spans: pa.Table) -> dict[str, pa.Table]:
    analysis = analyze_spans(to_frame(spans))
    spans, flows = analysis.spans, analysis.flows
    if flows.empty:
        return {"flow_rows": pa.table({})}
    paths = critical_paths(analysis)
    type_of = flows.set_index("flow_id")["type_id"]
    frames = {
        "flow_rows": flow_rows(flows),
        "flow_spans": flow_span_rows(spans),
        "flow_edges": flow_edge_rows(analysis),
        "critical_path": critical_path_rows(paths),
        "flow_traces": _flow_traces(spans, flows),
        "flow_links": _flow_links(spans),
        "flow_message_ids": _pairs(spans, "message_id"),
        "flow_business_keys": _business_keys(spans),
        "flow_type_steps": (paths.assign(type_id=paths["flow_id"].map(type_of))
                            .groupby(["type_id", "service_name", "name", "segment"], dropna=False)
                            ["duration_ns"].sum().reset_index()),
        "new_shapes": flows.drop_duplicates("type_id")[["type_id", "signature"]].dropna(),
    }
    return {name: pa.Table.from_pandas(frame, preserve_index=False) for name, frame in frames.items()}


def _distinct(*arrays) -> pa.Table:
    """The distinct non-null strings of `arrays`, as a one-column table to join against."""
    values = pa.chunked_array([pc.drop_null(a).cast(pa.string()) for a in arrays], pa.string())
    return pa.table({"v": pc.unique(values)})


def _touched_flows(cur, new: pa.Table) -> pd.DataFrame:
    """The stored flows the new spans connect to: (flow_id, flow_start, flow_end)."""
    if new.num_rows == 0:
        return pd.DataFrame({"flow_id": [], "flow_start": [], "flow_end": []})
    traces = new.column("trace_id")
    links = pc.list_flatten(new.column("links"))
    targets = pc.list_element(pc.split_pattern(links, ":", max_splits=1), 0)
    lookups = {"new_traces": _distinct(traces, targets), "linked_from": _distinct(traces),
               "new_message_ids": _distinct(new.column("message_id")),
               "new_keys": _distinct(new.column("business_key"))}
    for name, table in lookups.items():
        cur.register(name, table)
    try:
        return cur.execute(queries.load("analysis/touched_flows"),
                           {"max_traces": MAX_TRACES_PER_KEY}).df()
    finally:
        for name in lookups:
            cur.unregister(name)


def _spans_of_flows(cur, touched: pd.DataFrame, since: int,
                    business_keys: tuple[str, ...]) -> pa.Table:
    """The spans (of batches up to `since`) of the stored flows touched."""
    if touched.empty:
        return pa.table({})
    start = int(pd.Timestamp(touched["flow_start"].min()).value)
    end = int(pd.Timestamp(touched["flow_end"].max()).value)
    return load_arrow(_Cursor(cur), business_keys=business_keys, upto_batch=since,
                      flows=(touched["flow_id"].tolist(), start, end))


def _forget(cur, touched: pd.DataFrame) -> None:
    """Delete the touched flows' rows and subtract their critical-path time from their types."""
    if touched.empty:
        return
    bounds = {"flow_ids": touched["flow_id"].tolist(),
              "start": int(pd.Timestamp(touched["flow_start"].min()).value),
              "end": int(pd.Timestamp(touched["flow_end"].max()).value)}
    cur.execute(queries.load("analysis/forget_type_steps"), bounds)
    for table in PER_FLOW_TABLES:   # names from a fixed list
        timed = _TIMED.get(table)
        if timed:
            cur.execute(f"DELETE FROM {table} WHERE flow_id IN (SELECT unnest($flow_ids::VARCHAR[])) "
                        f"AND {timed} BETWEEN make_timestamp_ns($start) AND make_timestamp_ns($end)", bounds)
        else:
            cur.execute(f"DELETE FROM {table} WHERE flow_id IN (SELECT unnest($flow_ids::VARCHAR[]))",
                        {"flow_ids": bounds["flow_ids"]})


def _write(cur, rows: dict[str, pa.Table]) -> None:
    """Insert the rows `rows_of` made (table names from its fixed list)."""
    for table, frame in rows.items():
        if not frame.num_rows:
            continue
        cur.register("new_rows", frame)
        try:
            if table == "new_shapes":
                cur.execute("INSERT INTO flow_shapes SELECT type_id, signature FROM new_rows "
                            "ON CONFLICT DO NOTHING")
            else:
                cur.execute(f"INSERT INTO {table} BY NAME SELECT * FROM new_rows")
        finally:
            cur.unregister("new_rows")


def _flow_traces(spans: pd.DataFrame, flows: pd.DataFrame) -> pd.DataFrame:
    pairs = spans[["trace_id", "flow_id"]].drop_duplicates()
    bounds = flows.set_index("flow_id")
    return pd.DataFrame({
        "trace_id": pairs["trace_id"].to_numpy(dtype=object),
        "flow_id": pairs["flow_id"].to_numpy(dtype=object),
        "flow_start": pd.to_datetime(pairs["flow_id"].map(bounds["start_ns"]).to_numpy(), unit="ns"),
        "flow_end": pd.to_datetime(pairs["flow_id"].map(bounds["end_ns"]).to_numpy(), unit="ns")})


def _flow_links(spans: pd.DataFrame) -> pd.DataFrame:
    holders = spans[[len(x) > 0 for x in spans["links"]]]
    pairs = {(target.partition(":")[0], flow) for links, flow in zip(holders["links"], holders["flow_id"])
             for target in links}
    return pd.DataFrame(sorted(pairs), columns=["target_trace_id", "flow_id"], dtype=object)


def _pairs(spans: pd.DataFrame, column: str) -> pd.DataFrame:
    rows = spans.loc[pd.notna(spans[column].to_numpy()), [column, "flow_id"]].drop_duplicates()
    return pd.DataFrame({column: rows[column].to_numpy(dtype=object),
                         "flow_id": rows["flow_id"].to_numpy(dtype=object)})


def _business_keys(spans: pd.DataFrame) -> pd.DataFrame:
    rows = spans.loc[pd.notna(spans["business_key"].to_numpy()),
                     ["business_key", "trace_id", "flow_id"]].drop_duplicates()
    return pd.DataFrame({c: rows[c].to_numpy(dtype=object) for c in rows.columns})


def _types_fresh(conn) -> bool:
    [(fresh,)] = conn.execute("SELECT (SELECT count(*) FROM flow_type_rows) > 0 "
                              "OR NOT EXISTS (SELECT 1 FROM flow_rows)").fetchall()
    return bool(fresh)


def refresh_types(conn) -> None:
    """Recompute the flow types from the stored flows: counts, percentiles, names, critical
    steps, and which steps each type lacks against its workflow's usual shape (one query over
    the flows; the lacking steps once per type, in Python)."""
    cur = conn.cursor()
    types = cur.execute(queries.load("analysis/flow_types")).df()
    usual = (types.sort_values(["flows", "type_id"], ascending=[False, True], kind="stable")
             .drop_duplicates(["root_service", "root_name"]))
    expected = {(r.root_service, r.root_name): (flowlib.steps_of(r.signature), r.p50_ms)
                for r in usual.itertuples() if isinstance(r.signature, str)}
    missing, quiet = [], []
    for r in types.itertuples():
        steps, p50_ms = expected.get((r.root_service, r.root_name), (frozenset(), 0.0))
        lacks = sorted(steps - flowlib.steps_of(r.signature)) if isinstance(r.signature, str) else []
        missing.append(lacks)
        quiet.append(float(max(INCOMPLETE_AFTER_MIN_NS, INCOMPLETE_AFTER_P50_FACTOR * p50_ms * 1e6)))
    types["missing_steps"] = pd.Series(missing, index=types.index, dtype=object)
    types["quiet_ns"] = quiet
    with transaction(cur):
        cur.execute("DELETE FROM flow_type_rows")
        if len(types):
            cur.register("new_rows", types)
            cur.execute("INSERT INTO flow_type_rows BY NAME SELECT * FROM new_rows")
            cur.unregister("new_rows")
        cur.execute(queries.load("analysis/compact_type_steps"))
