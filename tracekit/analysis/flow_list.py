"""`tracekit flows`: the newest flows, read from the newest stretch of the store back.

Light to import on purpose (no pandas): the list is plain SQL over the analysis tables.
"""

from __future__ import annotations

from tracekit import queries

FIRST_LOOK_NS = 3600 * 10**9     # the newest hour first


def newest_flows(store, filters: dict, limit: int, first_look_ns: int = FIRST_LOOK_NS):
    """The newest `limit` flows that match `filters` (type, failed, status; see
    analysis/flows_list.sql), as Arrow. Read from the newest hour back, eight times as far
    each time fewer are found: a first page reads the last hour or so of a store of days,
    not each of its flows."""
    first, last = store.arrow(queries.load("analysis/range")).to_pylist()[0].values()
    reach = first_look_ns
    while True:
        since = 0 if first is None else max(last - reach, 0)
        rows = store.arrow(queries.load("analysis/flows_list"),
                           {**filters, "limit": limit, "since_ns": since})
        if rows.num_rows >= limit or first is None or since <= first:
            return rows
        reach *= 8
