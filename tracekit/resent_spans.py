"""Spans a client re-sent: found by (trace_id, span_id), and left out.

A span already stored, one inserted by a transaction committing meanwhile (which the next
one does not see), or a second copy in the same batch is stored once; the batch row counts
what was left out as `duplicates`. Log records are keyed otherwise (`tracekit.resent_logs`).
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tracekit import queries


def new_spans(cur: duckdb.DuckDBPyConnection, spans: pa.Table, unseen_starts: np.ndarray | None,
              unseen_keys: Sequence[pa.Table]) -> tuple[pa.Table, pa.Table]:
    """The spans to insert in `cur`'s transaction, and their (trace_id, span_id, start_time):
    neither stored, nor among a committing transaction's (`unseen_starts`, sorted, and
    `unseen_keys`), nor an earlier copy in the batch."""
    incoming = unique_spans(spans)
    if unseen_starts is not None:
        incoming = without_keys(incoming, unseen_starts, unseen_keys)
    keys = key_columns(incoming)
    starts = keys.column("start_time").cast(pa.int64())  # exact ns, not µs
    window = {"first_start": pc.min(starts).as_py(), "last_start": pc.max(starts).as_py()}
    # DuckDB keeps what is registered in a transaction until it ends: the checks read a copy
    # of the keys (~60 B a span), the insert a stream of the rows (used up).
    cur.register("incoming_keys", keys)
    if cur.execute(queries.load("stored_start_times"), window).fetchall()[0][0]:
        # fetchall, not Arrow: few rows, and DuckDB warns (each commit) that Arrow output of
        # a cursor's result copies it.
        if stored := cur.execute(queries.load("stored_spans"), window).fetchall():
            incoming, keys = without(incoming, stored), without(keys, stored)
    cur.unregister("incoming_keys")
    return incoming, keys


def sorted_start_times(keys: Sequence[pa.Table]) -> np.ndarray:
    """The start times in `key_columns` tables, as sorted integers (ns)."""
    return np.sort(np.concatenate([np.empty(0, np.int64)] + [
        table.column("start_time").cast(pa.int64()).to_numpy() for table in keys]))


def unique_spans(spans: pa.Table) -> pa.Table:
    """The spans with each (trace_id, span_id) once: a client may send one twice in a batch."""
    keys = pc.binary_join_element_wise(spans.column("trace_id"), spans.column("span_id"), "")
    if pc.count_distinct(keys).as_py() == spans.num_rows:
        return spans
    first: dict[str, int] = {}
    for index, key in enumerate(keys.to_pylist()):
        first.setdefault(key, index)
    return spans.take(sorted(first.values()))


def key_columns(spans: pa.Table) -> pa.Table:
    """The spans' (trace_id, span_id, start_time), copied: a decoded export's columns are
    slices of one buffer, which a slice of them would keep whole (~500 B a span, not ~60)."""
    def copied(column: pa.ChunkedArray) -> pa.Array:
        return pa.concat_arrays(column.chunks) if column.num_chunks else pa.array([], column.type)
    return pa.table({name: copied(spans.column(name)) for name in ("trace_id", "span_id", "start_time")})


def without_keys(spans: pa.Table, stored_starts: np.ndarray, stored_keys: Sequence[pa.Table]) -> pa.Table:
    """The spans whose (trace_id, span_id, start_time) is not among `stored_keys` (whose
    start times, sorted, are `stored_starts`): a span a client re-sent while the first copy's
    transaction committed."""
    if not stored_starts.size or not spans.num_rows:
        return spans
    starts = spans.column("start_time").cast(pa.int64()).to_numpy()
    at = np.minimum(np.searchsorted(stored_starts, starts), len(stored_starts) - 1)
    maybe = stored_starts[at] == starts
    if not maybe.any():
        return spans
    candidates = pa.array(starts[maybe], pa.int64()).cast(pa.timestamp("ns"))
    stored = set()
    for table in stored_keys:
        hits = table.filter(pc.is_in(table.column("start_time"), value_set=candidates))
        stored.update(zip(hits.column("trace_id").to_pylist(), hits.column("span_id").to_pylist()))
    return without(spans, sorted(stored)) if stored else spans


def without(spans: pa.Table, stored: list[tuple[str, str]]) -> pa.Table:
    """The spans whose (trace_id, span_id) is not among `stored`."""
    keys = pc.binary_join_element_wise(spans.column("trace_id"), spans.column("span_id"), ":")
    stored_keys = pa.array([f"{trace_id}:{span_id}" for trace_id, span_id in stored], pa.string())
    return spans.filter(pc.invert(pc.is_in(keys, value_set=stored_keys)))
