"""Reading the lake: DuckDB over the Parquet files of each table's current snapshot, with the
local store's views (spans, logs) on top (sql/lake/views.sql)."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from tracekit import queries
from tracekit.lake.location import LakeLocation
from tracekit.lake.tables import ANALYSIS_TABLES, TABLES, load_tables, schemas
from tracekit.readonly import SAFE_CONFIG
from tracekit.store import LocalStore


class LakeStore(LocalStore):
    """The lake as it was when opened: read-only SQL over span_rows, log_rows, resources and
    the spans and logs views, and over the analysis tables the last Spark analysis committed
    (flows, flow_spans, ... as in a local store), run as on a local store's connection. DuckDB
    reads only the warehouse's files."""

    lake = True     # its analysis covers every span it held when analyzed (no batch order)

    def __init__(self, location: LakeLocation, timeout_s: float | None,
                 memory_limit_mib: int | None = None):
        super().__init__(location.warehouse,
                         duckdb.connect(config={key: value for key, value in SAFE_CONFIG.items()
                                                if key != "enable_external_access"}),
                         timeout_s)
        self.location = location
        catalog = location.open_catalog()
        try:
            tables = load_tables(catalog)
            self.files = {name: data_files(table) for name, table in tables.items()}
            self.analysis_files = {name: data_files(table)
                                   for name, table in load_analysis_tables(catalog).items()}
        finally:   # the file lists are all a reader needs of the catalog
            catalog.engine.dispose()
        create_views(self.conn, self.files)
        create_analysis_views(self.conn, self.analysis_files)
        # From here on the connection reads the warehouse's files and nothing else.
        self.conn.execute("SET allowed_directories = [?]", [os.fspath(location.warehouse) + os.sep])
        self.conn.execute("SET enable_external_access = false")
        if memory_limit_mib:
            self.conn.execute(f"SET memory_limit = '{int(memory_limit_mib)}MiB'")
        self.conn.execute("SET lock_configuration = true")

    def size_on_disk(self) -> int:
        """Bytes of the current snapshots' data files."""
        return sum(Path(path).stat().st_size
                   for files in (*self.files.values(), *self.analysis_files.values()) for path in files)

    @property
    def analyzed(self) -> bool:
        """Whether a Spark analysis committed its tables to the lake."""
        return bool(self.analysis_files.get("flow_rows"))



def create_views(conn: duckdb.DuckDBPyConnection, files: dict[str, list[str]]) -> None:
    """The lake's views (sql/lake/views.sql) on `conn` over these Parquet files of each table
    (a table without files reads as empty, with its columns)."""
    arrow_schemas = {name: schema.as_arrow() for name, schema in schemas().items()}
    for name in TABLES:
        if files.get(name):
            paths = ", ".join(_literal(path) for path in files[name])
            # A list of literals: DuckDB binds no parameters in a view's definition.
            conn.execute(f"CREATE VIEW lake_{name} AS SELECT * FROM read_parquet("
                         f"[{paths}], hive_partitioning = false)")
        else:   # no snapshot yet: an empty table of the same columns
            conn.register("empty_table", arrow_schemas[name].empty_table())
            # A table, not a view of the registered one: cursors do not see registrations.
            conn.execute(f"CREATE TABLE lake_{name} AS SELECT * FROM empty_table")
            conn.unregister("empty_table")
    for statement in conn.extract_statements(queries.load("lake/views")):
        conn.execute(statement.query)


def load_analysis_tables(catalog) -> dict:
    """The analysis tables a Spark analysis committed to the lake, by name (none before the
    first: `tracekit analyze --lake URI --engine spark`)."""
    from pyiceberg.exceptions import NoSuchTableError

    from tracekit.lake.location import NAMESPACE

    found = {}
    for name in ANALYSIS_TABLES:
        try:
            found[name] = catalog.load_table(f"{NAMESPACE}.{name}")
        except NoSuchTableError:
            pass
    return found


def create_analysis_views(conn: duckdb.DuckDBPyConnection, files: dict[str, list[str]]) -> None:
    """The analysis tables over these Parquet files with the local store's names and types
    (times back to nanoseconds), empty where there are none, and the views and macros the
    migrations define over them (flows, flow_types, service_edges, ...): the same SQL reads a
    lake as a local store."""
    for name, columns in local_columns(ANALYSIS_TABLES).items():
        if files.get(name):
            paths = ", ".join(_literal(path) for path in files[name])
            casts = ", ".join(f'"{column}"::{kind} AS "{column}"' for column, kind in columns)
            conn.execute(f"CREATE VIEW {name} AS SELECT {casts} FROM read_parquet([{paths}], "
                         "hive_partitioning = false)")
        else:
            conn.execute(f"CREATE TABLE {name} ("
                         + ", ".join(f'"{column}" {kind}' for column, kind in columns) + ")")
    for _, _, sql in queries.migrations():
        for statement in conn.extract_statements(sql):
            text = "\n".join(line for line in statement.query.splitlines()
                             if not line.lstrip().startswith("--")).lstrip()
            if text.upper().startswith("CREATE OR REPLACE"):
                conn.execute(statement.query)


def local_columns(names) -> dict[str, list[tuple[str, str]]]:
    """(column, type) of each of the local store's tables `names`, as its migrations make them."""
    from tracekit.writable import migrate

    conn = duckdb.connect()
    try:
        migrate(conn)
        return {name: [(column, kind) for column, kind, *_ in conn.execute(f"DESCRIBE {name}").fetchall()]
                for name in names}   # names from a fixed list
    finally:
        conn.close()


def data_files(table) -> list[str]:
    """The local paths of the Parquet files of the table's current snapshot."""
    if table.current_snapshot() is None:
        return []
    paths = []
    for task in table.scan().plan_files():
        path = task.file.file_path
        paths.append(path.removeprefix("file://") if path.startswith("file://") else path)
    return sorted(paths)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def open_lake(uri: str, timeout_s: float | None, memory_limit_mib: int | None = None) -> LakeStore:
    """Open the lake `uri` names for reading."""
    return LakeStore(LakeLocation.parse(uri), timeout_s, memory_limit_mib)
