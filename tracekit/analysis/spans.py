"""Reading the spans the analyzer works on, as one pandas DataFrame."""

from __future__ import annotations

import time

import pandas as pd

from tracekit import queries

# Attributes that carry a business key shared by every step of a workflow (configurable).
DEFAULT_BUSINESS_KEYS = ("order.id", "order_id", "business.key")


def load(store, as_of_ns: int | None = None,
         business_keys: tuple[str, ...] = DEFAULT_BUSINESS_KEYS) -> pd.DataFrame:
    """Every span started before `as_of_ns` (default: now), with the columns analysis uses."""
    as_of = as_of_ns if as_of_ns is not None else time.time_ns() + 10**15
    table = store.arrow(queries.load("analysis/spans"),
                        {"as_of": as_of, "keys": list(business_keys)})
    frame = table.to_pandas()
    return frame.sort_values(["trace_id", "start_ns"], kind="stable").reset_index(drop=True)
