"""Comparing the analysis tables a store keeps with the batch analysis of the same spans."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from tracekit.analysis.run import analyze, critical_paths
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


def stored_tables(conn, as_of_ns: int) -> dict[str, pd.DataFrame]:
    return {table: conn.sql(f"SELECT * FROM {'flows_at(' + str(as_of_ns) + ')' if table == 'flows' else table}").df()
            for table in KEYS}


def reference_tables(store, as_of_ns: int) -> dict[str, pd.DataFrame]:
    analysis = analyze(store, as_of_ns=as_of_ns)
    return build(analysis, critical_paths(analysis))
