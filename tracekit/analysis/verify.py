"""Checking the analysis tables a store keeps against the batch analysis of the same spans:
row for row and column for column (`tracekit analyze --verify`, and the tests). The batch
analysis holds the whole store in memory (about 1.5 GiB per million spans)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from tracekit.analysis.critical_paths import critical_paths
from tracekit.analysis.run import analyze_spans
from tracekit.analysis.spans import load_arrow, to_frame
from tracekit.analysis.tables import build

# Each table's columns as documented, and the columns that identify a row.
KEYS = {
    "flows": ["flow_id"],
    "flow_spans": ["trace_id", "span_id"],
    "flow_edges": ["src_trace_id", "src_span_id", "dst_trace_id", "dst_span_id", "kind", "via"],
    "critical_path": ["flow_id", "seq"],
    "flow_types": ["type_id"],
    "service_edges": ["src_service", "dst_service", "kind"],
}


def _normal(value):
    if isinstance(value, (list, tuple, np.ndarray)):
        return tuple(_normal(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _normal(v)) for k, v in value.items()))
    if isinstance(value, float):
        return None if np.isnan(value) else value
    if value is None or value is pd.NaT or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, (np.integer, np.bool_)):
        return value.item()
    if isinstance(value, np.floating):
        return _normal(float(value))
    return value


def _close(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, (float, int)) or isinstance(b, float) and isinstance(a, int):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    return a == b


def rows(frame: pd.DataFrame, columns: list[str], keys: list[str]) -> dict[tuple, tuple]:
    """The frame's rows by their key columns, values made comparable."""
    at = [columns.index(k) for k in keys]
    out = {}
    for row in frame[columns].itertuples(index=False):
        row = tuple(_normal(v) for v in row)
        out[tuple(row[i] for i in at)] = row
    return out


def differences(stored: dict[str, pd.DataFrame], reference: dict[str, pd.DataFrame]) -> dict:
    """Per table, the rows that differ or that only one side has (empty: the two are equal)."""
    out = {}
    for table, keys in KEYS.items():
        columns = list(reference[table].columns)
        mine = rows(stored[table], columns, keys)
        theirs = rows(reference[table], columns, keys)
        differ = [(mine.get(k), theirs.get(k)) for k in mine.keys() | theirs.keys()
                  if not _close(mine.get(k), theirs.get(k))]
        if differ or len(stored[table]) != len(reference[table]):
            out[table] = {"stored": len(stored[table]), "reference": len(reference[table]),
                          "rows (stored, reference)": differ[:3], "differing": len(differ)}
    return out


def stored_tables(store, as_of_ns: int) -> dict[str, pd.DataFrame]:
    """The six documented tables as the store holds them, flows' status as of `as_of_ns`."""
    return {table: store.df("SELECT * FROM flows_at($as_of)" if table == "flows"
                            else f"SELECT * FROM {table}",   # names from the fixed KEYS
                            {"as_of": int(as_of_ns)} if table == "flows" else None)
            for table in KEYS}


def reference_tables(store, as_of_ns: int) -> dict[str, pd.DataFrame]:
    """The same tables from the batch analysis of every span the analysis tables hold."""
    through = int(store.scalar("SELECT coalesce(max(analyzed_through), 0) FROM analysis_progress"))
    analysis = analyze_spans(to_frame(load_arrow(store, upto_batch=through)), as_of_ns)
    return build(analysis, critical_paths(analysis))


def verify(store, as_of_ns: int) -> dict:
    """The differences between the stored tables and the batch analysis ({}: none)."""
    return differences(stored_tables(store, as_of_ns), reference_tables(store, as_of_ns))
