"""Query results on the terminal (a readable table) and for scripts (CSV, JSON, Parquet)."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, BinaryIO

import duckdb

if TYPE_CHECKING:     # imported where used: a command that prints no table starts faster
    import pyarrow as pa

FORMATS = ("table", "csv", "json", "parquet")
# A cell of a table cut to fit the terminal shows at most this many characters.
COLUMN_CAP = 28


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _flat(conn: duckdb.DuckDBPyConnection, table: pa.Table) -> pa.Table:
    """VARIANT, lists, structs and maps as JSON text, so every format can hold them."""
    rel = conn.from_arrow(table)
    if not rel.columns:
        return table
    select = []
    for name, dtype in zip(rel.columns, rel.types):
        quoted = _quote(name)
        type_name = str(dtype)
        if type_name == "VARIANT" or type_name.endswith("[]") or type_name.startswith(("STRUCT", "MAP", "UNION")):
            select.append(f"to_json({quoted})::VARCHAR AS {quoted}")
        else:
            select.append(quoted)
    return rel.project(", ".join(select)).to_arrow_table()


def _fitting(conn: duckdb.DuckDBPyConnection, table: pa.Table, width: int,
             priority: Sequence[str]) -> pa.Table:
    """The columns that fit in `width` characters, taken in `priority` order (the rest after
    it), shown in the table's own order: DuckDB would otherwise drop columns from the middle,
    whichever they are."""
    rel = conn.from_arrow(table)
    lengths = rel.aggregate(", ".join(
        f"coalesce(max(length({_quote(c)}::VARCHAR)), 0)" for c in rel.columns)).fetchall()[0]
    needed = {c: min(COLUMN_CAP, max(len(c), len(str(t)), n, 4)) + 3   # 4: NULL; 3: borders
              for c, t, n in zip(rel.columns, rel.types, lengths)}
    order = [c for c in priority if c in needed] + [c for c in rel.columns if c not in priority]
    chosen, used = set(), 1
    for name in order:
        if used + needed[name] <= width or not chosen:
            chosen.add(name)
            used += needed[name]
    return table.select([c for c in table.column_names if c in chosen])


def write(table: pa.Table, fmt: str, out: BinaryIO | None = None, max_rows: int = 40,
          priority: Sequence[str] = ()) -> None:
    """Write a result in one of FORMATS to `out` (stdout by default). A table on a terminal
    too narrow for every column keeps the columns first in `priority`, when given."""
    out = out or sys.stdout.buffer
    conn = duckdb.connect()
    try:
        if fmt == "table":
            if table.column_names == ["explain_key", "explain_value"]:
                for plan in table.column("explain_value").to_pylist():  # a plan reads as drawn
                    print(plan)
                return
            width = shutil.get_terminal_size((120, 40)).columns
            if priority:
                table = _fitting(conn, table, width, priority)
            rel = conn.from_arrow(table)
            sys.stdout.flush()
            rel.show(max_width=width, max_rows=max_rows,
                     max_col_width=COLUMN_CAP if priority else None)
            return
        if fmt == "csv":
            import pyarrow.csv as pa_csv

            pa_csv.write_csv(_flat(conn, table), out)
        elif fmt == "json":
            # One JSON object per row, nested values as JSON (not as quoted JSON text).
            rel = conn.from_arrow(table)
            # Name every column explicitly: a row alias could clash with a column's name.
            fields = ", ".join(f"{_quote(c)} := {_quote(c)}" for c in rel.columns)
            rows = rel.project(f"to_json(struct_pack({fields}))::VARCHAR").fetchall()
            out.write(b"[")
            for i, (row,) in enumerate(rows):
                out.write(b",\n" if i else b"\n")
                out.write(row.encode())
            out.write(b"\n]\n")
        elif fmt == "parquet":
            import pyarrow.parquet as pq

            pq.write_table(_flat(conn, table), out)
        else:
            raise ValueError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
        out.flush()
    finally:
        conn.close()
