"""The report's SQL (tracekit/sql/report/*.sql): run with bound `$name` values, and written
out with those values in place so that `tracekit sql` runs the very query the report ran."""

from __future__ import annotations

import datetime as dt
import math
import re
from decimal import Decimal
from typing import Any

import pandas as pd

from tracekit import queries
from tracekit.report.model import Figure

_PARAM = re.compile(r"\$([a-z_]+)\b")


def load(name: str) -> str:
    """The text of tracekit/sql/report/NAME.sql."""
    return queries.load(f"report/{name}")


def timestamp(ns: int) -> str:
    """A nanosecond time as the text the SQL casts with ::TIMESTAMP_NS."""
    return pd.Timestamp(int(ns)).strftime("%Y-%m-%d %H:%M:%S.") + f"{int(ns) % 1_000_000_000:09d}"


def literal(value: Any) -> str:
    """`value` as a SQL literal; text is quoted with its quotes doubled (DuckDB strings know
    no backslash escapes), so no value can end the string it is written into."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"not a finite number: {value}")
        return repr(value)
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("text with a NUL character cannot be written into SQL")
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    raise TypeError(f"no SQL literal for {type(value).__name__}")


def inline(sql: str, params: dict[str, Any]) -> str:
    """`sql` with every `$name` replaced by the literal of params[name]."""
    return _PARAM.sub(lambda m: literal(params[m.group(1)]), sql)


def plain(value: Any) -> Any:
    """A query result value as JSON-friendly Python: times as text, decimals as floats."""
    if isinstance(value, (pd.Timestamp, dt.datetime)):
        return str(pd.Timestamp(value))
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


class Result:
    """The rows one query gave, with the query; figures quote its values."""

    def __init__(self, name: str, sql: str, params: dict[str, Any], rows: list[dict]) -> None:
        self.name, self.sql, self.params, self.rows = name, sql, params, rows
        self.text = inline(sql, params)

    @property
    def first(self) -> dict:
        return self.rows[0] if self.rows else {}

    def figure(self, name: str, column: str = "") -> Figure:
        value = self.first.get(column) if column else self.rows
        return Figure(name, value, self.sql, dict(self.params), self.text, column)


def run(store, name: str, params: dict[str, Any], sql: str | None = None) -> Result:
    """Run report query `name` (or the given composition of report SQL) with `params` bound."""
    sql = sql if sql is not None else load(name)
    used = dict.fromkeys(_PARAM.findall(sql))
    missing = [p for p in used if p not in params]
    if missing:
        raise KeyError(f"{name}.sql needs {', '.join(missing)}")
    bound = {p: list(params[p]) if isinstance(params[p], tuple) else params[p] for p in used}
    table = store.arrow(sql, bound)
    rows = [{k: plain(v) for k, v in row.items()} for row in table.to_pylist()]
    return Result(name, sql, bound, rows)
