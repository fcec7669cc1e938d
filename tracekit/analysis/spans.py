"""Reading the spans the analyzer works on, as one pandas DataFrame."""

from __future__ import annotations

import re
import time

import pandas as pd

from tracekit import queries

# Attributes that carry a business key shared by every step of a workflow (configurable).
DEFAULT_BUSINESS_KEYS = ("order.id", "order_id", "business.key")


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


def load_arrow(store, as_of_ns: int | None = None,
               business_keys: tuple[str, ...] = DEFAULT_BUSINESS_KEYS, since_batch: int = 0):
    """Every span started before `as_of_ns` (default: now) and committed after batch
    `since_batch`, with the columns analysis uses, as an Arrow table (cheap to hand to
    another process)."""
    as_of = as_of_ns if as_of_ns is not None else time.time_ns() + 10**15
    sql = queries.load("analysis/spans").replace("{business_key}", business_key_sql(business_keys))
    return store.arrow(sql, {"as_of": as_of, "since_batch": since_batch})


def to_frame(table) -> pd.DataFrame:
    return table.to_pandas().sort_values(["trace_id", "start_ns"], kind="stable").reset_index(drop=True)


def load(store, as_of_ns: int | None = None,
         business_keys: tuple[str, ...] = DEFAULT_BUSINESS_KEYS) -> pd.DataFrame:
    """`load_arrow` as a DataFrame, sorted by trace and start."""
    return to_frame(load_arrow(store, as_of_ns, business_keys))
