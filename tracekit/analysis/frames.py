"""Columns of Python strings for the analysis: each distinct string one object, never re-encoded.

A span store repeats a few hundred service and operation names a million times. Read one
Python object per row, those columns cost ~60 bytes a row; shared, 8. And pandas 3 turns every
object array of strings it is given into Arrow-backed strings, copying each one: the analysis
builds its frames from object arrays and keeps them as they are.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


def shared_strings(column: pd.Series) -> np.ndarray:
    """The column as an object array in which equal strings are one object (None for null)."""
    if column.dtype == object:
        return column.to_numpy()
    encoded = pc.dictionary_encode(pa.array(column))
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    values = np.append(encoded.dictionary.to_numpy(zero_copy_only=False).astype(object), None)
    return values[encoded.indices.fill_null(len(values) - 1).to_numpy()]


def arrow_strings(values) -> pa.Array:
    """A string column (pandas, Arrow-backed or object, or a numpy object array) as one Arrow
    array: no copy when pandas already holds it in Arrow."""
    array = pa.array(values, type=pa.large_string(), from_pandas=True) \
        if isinstance(values, np.ndarray) or values.dtype == object else pa.array(values)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    return array


def plain_strings(column: pd.Series) -> np.ndarray:
    """The column as an object array, one string object per row (None for null): for columns
    of distinct values (ids), where sharing equal strings would only add a hash per row."""
    if column.dtype == object:
        return column.to_numpy()
    return arrow_strings(column).to_numpy(zero_copy_only=False)


def objects(values) -> pd.Series:
    """An object column that pandas keeps as it is (no conversion to Arrow strings)."""
    return pd.Series(np.asarray(values, dtype=object), dtype=object, copy=False)


def frame(columns: dict, index=None) -> pd.DataFrame:
    """A DataFrame whose object arrays (and constant strings) stay object columns."""
    length = next((len(v) for v in columns.values() if not isinstance(v, str)), 0)
    built = {}
    for name, values in columns.items():
        if isinstance(values, str):
            values = np.full(length, values, dtype=object)
        if isinstance(values, np.ndarray) and values.dtype == object:
            values = pd.Series(values, dtype=object, copy=False, index=index)
        built[name] = values
    return pd.DataFrame(built, index=index, copy=False)
