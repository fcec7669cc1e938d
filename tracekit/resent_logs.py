"""Log records a client re-sent: found by a key hashed from the whole record, and left out.

A span is identified by its trace and span ids; a log record has no id, so the writer keys it
by everything it holds (`sql/log_record_keys.sql`). A record identical in every field,
timestamps included to the nanosecond, to one stored is taken for a re-send and stored once.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tracekit import queries
from tracekit.otlp.batches import stream


def with_record_keys(cur: duckdb.DuckDBPyConnection, logs: pa.Table) -> pa.Table:
    """The records with their `record_key` column."""
    cur.register("incoming_logs", stream(logs))
    try:
        keys = cur.execute(queries.load("log_record_keys")).fetchnumpy()["record_key"]
    finally:
        cur.unregister("incoming_logs")
    return logs.append_column("record_key", pa.array(np.asarray(keys, np.uint64), pa.uint64()))


def new_records(cur: duckdb.DuckDBPyConnection, logs: pa.Table,
                unseen: Sequence[np.ndarray] = ()) -> pa.Table:
    """The keyed records (`with_record_keys`) that are neither stored, nor among the keys of
    a transaction committing meanwhile (`unseen`, which this one does not see), nor an
    earlier copy in the same batch."""
    keys = logs.column("record_key").to_numpy()
    _, first = np.unique(keys, return_index=True)
    keep = np.zeros(len(keys), bool)
    keep[first] = True
    if unseen:
        keep &= ~np.isin(keys, np.concatenate(list(unseen)))
    times = logs.column("timestamp").cast(pa.int64())
    first_time, last_time = pc.min(times).as_py(), pc.max(times).as_py()
    if first_time is not None:   # records with no time at all are only checked in the batch
        # The check reads a copy of the keys (16 B a record): what is registered in a
        # transaction stays in memory until it ends.
        cur.register("incoming_log_keys", pa.table({
            "timestamp": pa.concat_arrays(logs.column("timestamp").chunks),
            "record_key": pa.array(keys, pa.uint64())}))
        try:
            # fetchall, not Arrow: few rows, nearly always none.
            stored = cur.execute(queries.load("stored_log_keys"),
                                 {"first": first_time, "last": last_time}).fetchall()
        finally:
            cur.unregister("incoming_log_keys")
        if stored:
            keep &= ~np.isin(keys, np.array([key for (key,) in stored], np.uint64))
    return logs if keep.all() else logs.filter(pa.array(keep))
