"""Reading the spans the analyzer works on, as one pandas DataFrame."""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tracekit import queries
from tracekit.analysis import DEFAULT_BUSINESS_KEYS


NO_BOUND_NS = 2**62           # a start time no span has (year 2116)

_KEY = re.compile(r"^[A-Za-z0-9_.\-]+$")


def business_key_sql(keys: tuple[str, ...]) -> str:
    """coalesce(s.attributes['k1'], ...)::VARCHAR for attribute names (nothing else allowed)."""
    for key in keys:
        if not _KEY.match(key):
            raise ValueError(f"business key {key!r} is not an attribute name "
                             "(letters, digits, '.', '_', '-')")
    if not keys:
        return "NULL::VARCHAR"
    return "coalesce(" + ", ".join(f"s.attributes['{k}']" for k in keys) + ")::VARCHAR"


_ATTRIBUTE = re.compile(r"s\.attributes\['([A-Za-z0-9_.\-]+)'\]")

# The schema version that brought the register of attribute keys (migration 003).
_KEY_REGISTER_VERSION = 3


def stored_keys(store) -> tuple[frozenset[str] | None, int | None]:
    """The span attribute keys the store holds and the last batch that register covers, read
    together; (None, None) for a store without the register (written by an older tracekit
    and not opened for writing since, or a lake: its spans carry no store-wide batch order)."""
    if getattr(store, "lake", False):
        return None, None
    [version] = store.arrow("SELECT max(version) AS v FROM schema_version").column(0).to_pylist()
    if version < _KEY_REGISTER_VERSION:
        return None, None
    row = store.arrow("SELECT (SELECT coalesce(max(batch_id), 0) FROM ingest_batches) AS upto, "
                      "(SELECT list(key) FROM span_attribute_keys) AS keys").to_pylist()[0]
    return frozenset(row["keys"] or ()), row["upto"]


def only_stored(sql: str, keys: frozenset[str] | None) -> str:
    """`sql` with each `s.attributes['key']` whose key no stored span has written as NULL:
    DuckDB answers a lookup of a key in none of its shredded columns by reading every map
    whole (~2 s per million spans per key), and the analyzer tries several names for one
    thing (url.full or http.url)."""
    if keys is None:
        return sql
    return _ATTRIBUTE.sub(lambda m: m.group(0) if m.group(1) in keys else "NULL", sql)


def spans_sql(business_keys: tuple[str, ...], of_flows: bool = False, part: bool = False) -> str:
    """The analyzer's query for its spans (analysis/spans.sql); `of_flows`: restricted to the
    spans of the flows named by $flow_ids within [$from_ns, $to_ns]; `part`: to the traces
    whose id hashes to $part modulo $parts."""
    scope = queries.load("analysis/of_flows") if of_flows else ""
    if part:
        scope += "\nAND hash(s.trace_id) % $parts = $part"
    return (queries.load("analysis/spans")
            .replace("{business_key}", business_key_sql(business_keys))
            .replace("{scope}", scope))


def load_arrow(store, as_of_ns: int | None = None,
               business_keys: tuple[str, ...] = DEFAULT_BUSINESS_KEYS, since_batch: int = 0,
               upto_batch: int | None = None,
               flows: tuple[list[str], int, int] | None = None,
               part: tuple[int, int] | None = None):
    """Every span (started before `as_of_ns`, when given: the store as it stood then)
    committed in a batch after `since_batch` (and up to `upto_batch`), with the columns
    analysis uses, as an Arrow table (cheap to hand to another process). `flows`: (flow ids, start ns, end ns) reads only the
    spans of those stored flows, which all start within those bounds. `part`: (i, n), only
    the traces whose id hashes to i modulo n (a large batch analyzed in parts)."""
    # No default bound by the clock: a span stamped in the future (a host's clock ahead, or
    # data replayed) is analyzed like any other, not skipped while its batch counts as done.
    as_of = as_of_ns if as_of_ns is not None else NO_BOUND_NS
    keys, upto = stored_keys(store)
    limit = min(x for x in (upto, upto_batch, 2**63) if x is not None)
    sql = spans_sql(business_keys, of_flows=flows is not None, part=part is not None)
    params = {"as_of": as_of, "since_batch": since_batch, "upto_batch": limit}
    if part is not None:
        params.update(part=part[0], parts=part[1])
    if flows is not None:
        params.update(flow_ids=list(flows[0]), from_ns=int(flows[1]), to_ns=int(flows[2]))
    return store.arrow(only_stored(sql, keys), params)


def to_frame(table) -> pd.DataFrame:
    """The table as a DataFrame sorted by trace id, start time and span id (the same order
    whatever order the rows were read in, so an analysis of a part of the store orders its
    spans as the whole does). Sorted in Arrow before the columns become Python strings: Arrow
    compares the strings in C++ (0.05 s for 200k spans, against 0.5 s for numpy's argsort of
    the ids as Python strings, and 3.5 s per million for pandas' sort of the frame)."""
    if table.num_rows == 0:
        return table.to_pandas()
    order = pc.sort_indices(table, sort_keys=[("trace_id", "ascending"), ("start_ns", "ascending"),
                                              ("span_id", "ascending")])
    table = _take(table, order)
    if "links" not in table.column_names:
        return table.to_pandas()
    at = table.column_names.index("links")
    frame = table.remove_column(at).to_pandas()
    frame.insert(at, "links", _tuples(table.column("links")))
    return frame


def _take(table, indices):
    """table.take(indices), a column per thread: Arrow gathers without the GIL, and the gather
    is about a third of the read (on 2 cores, the query's result became the sorted frame in
    0.84 s instead of 1.09 s at 1M spans, 16.6 s instead of 20.3 s at 10M)."""
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        columns = list(pool.map(lambda column: column.take(indices), table.columns))
    return pa.Table.from_arrays(columns, schema=table.schema)


def _tuples(column) -> np.ndarray:
    """A list<string> column as an object array of tuples, one shared () for the many empty
    (or null) rows. pyarrow's own conversion makes a numpy array for every row: 7 s at 10M
    spans, against about 1 s for the few spans that have links."""
    out = np.empty(len(column), dtype=object)
    out.fill(())
    counts = pc.fill_null(pc.list_value_length(column), 0).to_numpy()
    ends = np.cumsum(counts)
    values = pc.list_flatten(column).to_pylist()
    for row in np.flatnonzero(counts):
        out[row] = tuple(values[ends[row] - counts[row]:ends[row]])
    return out


def load(store, as_of_ns: int | None = None,
         business_keys: tuple[str, ...] = DEFAULT_BUSINESS_KEYS) -> pd.DataFrame:
    """`load_arrow` as a DataFrame, sorted by trace and start."""
    return to_frame(load_arrow(store, as_of_ns, business_keys))
