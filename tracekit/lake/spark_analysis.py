"""The flow analysis on Spark over the lake (`tracekit analyze --lake URI --engine spark`): the
rules of the single-process analysis, run where the spans are (docs/guides/lake.md).

1. spans: each Parquet file of span_rows' current snapshot becomes the analyzer's columns in a
   task of its own (analysis/spans.sql over the lake's views, in DuckDB inside the task);
2. flows: connected components of traces over the edges that join traces (span links, shared
   message ids, business keys held by 2..64 traces), by label propagation in Spark;
3. rows: the spans shuffled by component, so that a partition holds whole flows; each is
   analyzed by persist.rows_of, the pure function the collector runs, and the task writes the
   rows as Parquet files into the warehouse;
4. types: the flow types from the flows' rows, by persist.refresh_types (the same SQL) on the
   driver, over one row per flow;
5. commit: each analysis table's files go into an Iceberg table of the lake, each table in one
   commit that replaces what it held.

pyiceberg keeps the catalog (Spark's Iceberg runtime is a JVM package this project does not
ship): the tasks read and write Parquet, the driver commits.
"""

from __future__ import annotations

import functools
import os
import shutil
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from tracekit.analysis import DEFAULT_BUSINESS_KEYS
from tracekit.analysis.spans import NO_BOUND_NS, spans_sql
from tracekit.lake.location import NAMESPACE, LakeLocation, LakeUnavailable
from tracekit.lake.reader import create_views, data_files
from tracekit.lake.tables import ANALYSIS_TABLES, load_tables


# The per-type tables: computed on the driver from the tasks' per-flow rows.
PER_TYPE = ("flow_type_steps", "flow_shapes", "flow_type_rows")
SPANS_PER_TASK = 200_000      # spans one analysis task holds (~1 GiB in its Python worker)
_MANIFEST = pa.schema([("table", pa.string()), ("path", pa.string()), ("rows", pa.int64())])


@dataclass
class SparkResult:
    """What a Spark analysis did."""

    spans: int = 0
    flows: int = 0
    types: int = 0
    tasks: int = 0
    rounds: int = 0           # label-propagation rounds of the connected components
    rows: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def spark_session(master: str = "local[2]", shuffle_partitions: int = 4,
                  driver_memory: str = "2g"):
    """A SparkSession whose Python workers run this interpreter (they import tracekit).
    LakeUnavailable when pyspark or Java is missing."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise LakeUnavailable("the Spark engine needs its extra: pip install 'tracekit[spark]'") from None
    # Local mode starts its Python workers with PYSPARK_PYTHON (the config key is read for
    # clusters only): this interpreter, unless the caller chose one.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    try:
        return (SparkSession.builder.master(master).appName("tracekit-analyze")
                .config("spark.pyspark.python", sys.executable)
                .config("spark.pyspark.driver.python", sys.executable)
                .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
                .config("spark.driver.memory", driver_memory)
                .config("spark.ui.enabled", "false")
                .config("spark.ui.showConsoleProgress", "false")
                .config("spark.sql.adaptive.enabled", "true")
                .getOrCreate())
    except Exception as exc:   # pyspark's own errors: no Java, the gateway did not start
        raise LakeUnavailable(f"cannot start Spark ({master}): {str(exc).splitlines()[0]}; "
                              "it needs Java 17 or later on PATH or JAVA_HOME") from None


def target_schemas() -> dict[str, pa.Schema]:
    """Each analysis table's Arrow schema, from the local store's migrations, with times in
    microseconds (Iceberg v2 has no nanoseconds) and every column nullable."""
    from tracekit.opening import migrate

    conn = duckdb.connect()
    try:
        migrate(conn)
        out = {}
        for name in ANALYSIS_TABLES:   # names from a fixed list
            schema = conn.sql(f"SELECT * FROM {name} LIMIT 0").to_arrow_table().schema
            out[name] = pa.schema([pa.field(f.name, pa.timestamp("us") if pa.types.is_timestamp(f.type)
                                            else f.type, nullable=True) for f in schema])
        return out
    finally:
        conn.close()


def _analyzer_spans_sql(business_keys: tuple[str, ...]) -> tuple[str, dict]:
    return spans_sql(business_keys), {"as_of": NO_BOUND_NS, "since_batch": 0, "upto_batch": 2**63}


def analyzer_schema(business_keys: tuple[str, ...]) -> pa.Schema:
    """The columns the analyzer reads (analysis/spans.sql), batch ids as signed integers."""
    conn = duckdb.connect()
    try:
        create_views(conn, {})
        sql, params = _analyzer_spans_sql(business_keys)
        schema = conn.sql(sql, params=params).to_arrow_table().schema
    finally:
        conn.close()
    return pa.schema([pa.field(f.name, pa.int64()) if f.name == "batch_id" else f for f in schema])


def _spans_of_files(batches, resource_files: list[str], business_keys: tuple[str, ...],
                    schema: pa.Schema):
    """A task: each span_rows file named in `batches` as the analyzer's columns."""
    sql, params = _analyzer_spans_sql(business_keys)
    for batch in batches:
        for path in batch.column(0).to_pylist():
            conn = duckdb.connect()
            try:
                create_views(conn, {"span_rows": [path], "resources": resource_files})
                table = conn.sql(sql, params=params).to_arrow_table()
            finally:
                conn.close()
            yield from table.cast(schema).to_batches()


def _analyze_partition(batches, staging: str, schemas: dict[str, pa.Schema]):
    """A task: its spans (whole flows) through rows_of, each table's rows written as a Parquet
    file under `staging`; yields one manifest row per file."""
    from tracekit.analysis.persist import rows_of

    batches = list(batches)
    if not batches:     # a partition no component hashed to
        return
    spans = pa.Table.from_batches(batches)
    if spans.num_rows == 0:
        return
    part = uuid.uuid4().hex
    for name, rows in rows_of(spans).items():
        table = "flow_shapes" if name == "new_shapes" else name
        if not rows.num_rows:
            continue
        folder = Path(staging) / ("partial" if table in PER_TYPE else "") / table
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"part-{part}.parquet"
        pq.write_table(rows.select(schemas[table].names).cast(schemas[table]), path)
        yield pa.RecordBatch.from_pylist([{"table": table, "path": str(path), "rows": rows.num_rows}],
                                         schema=_MANIFEST)


def trace_edges(spans):
    """Pairs of traces (a, b), both directions, that may belong to one flow: a link's holder
    and its target's trace (when stored), traces sharing a message id between a producer and
    consumers, traces sharing a business key. Each group is a star on its smallest trace.
    More pairs than the analysis stitches (it needs the linked span, the first producer, a
    key held by at most MAX_TRACES_PER_KEY traces): a component then holds a few flows, each
    whole, and the analysis of the component separates them. A key held by more traces
    stitches nothing, but its traces are kept together all the same, so that the analysis of
    their partition sees how many hold it, as the analysis of the whole store does."""
    from pyspark.sql import functions as F

    traces = spans.select(F.col("trace_id").alias("b")).distinct()
    links = (spans.select(F.col("trace_id").alias("a"), F.explode("links").alias("target"))
             .select("a", F.substring_index("target", ":", 1).alias("b"))
             .join(traces, "b").select("a", "b"))

    def star(members, group):
        anchors = members.groupBy(group).agg(F.min("trace_id").alias("b"))
        return members.join(anchors, group).select(F.col("trace_id").alias("a"), "b")

    messages = (spans.where(F.col("message_id").isNotNull()
                            & F.col("kind").isin("PRODUCER", "CONSUMER"))
                .select("message_id", "trace_id").distinct())
    keyed = spans.where(F.col("business_key").isNotNull()).select("business_key", "trace_id").distinct()
    edges = (links.unionByName(star(messages, "message_id"))
             .unionByName(star(keyed, "business_key"))
             .where(F.col("a") != F.col("b")))
    return edges.unionByName(edges.select(F.col("b").alias("a"), F.col("a").alias("b"))).distinct()


def components(edges, max_rounds: int = 100):
    """(trace_id, component) for every trace on an edge: the smallest trace id it reaches,
    by label propagation (each round, a trace takes the smallest label of its neighbours);
    and the rounds it took."""
    from pyspark.sql import functions as F

    labels = edges.select(F.col("a").alias("trace_id")).distinct().withColumn("label", F.col("trace_id"))
    labels = labels.localCheckpoint()
    for rounds in range(1, max_rounds + 1):
        offered = (edges.join(labels, edges["a"] == labels["trace_id"])
                   .select(F.col("b").alias("trace_id"), "label"))
        new = (labels.unionByName(offered).groupBy("trace_id").agg(F.min("label").alias("label"))
               .localCheckpoint())
        changed = (new.join(labels.withColumnRenamed("label", "old"), "trace_id")
                   .where(F.col("label") != F.col("old")).limit(1).count())
        labels = new
        if not changed:
            return labels.withColumnRenamed("label", "component"), rounds
    raise RuntimeError(f"connected components: no fixed point after {max_rounds} rounds")


def analyze_lake(spark, location: LakeLocation,
                 business_keys: tuple[str, ...] = DEFAULT_BUSINESS_KEYS,
                 spans_per_task: int = SPANS_PER_TASK) -> SparkResult:
    """Analyze every span of the lake on `spark` and replace the lake's analysis tables
    (`spans_per_task`: about how many spans each analysis task holds)."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_schema

    result, clock = SparkResult(), time.perf_counter()

    def lap(name):
        nonlocal clock
        now = time.perf_counter()
        result.seconds[name] = round(now - clock, 3)
        clock = now

    catalog = location.open_catalog()
    tables = load_tables(catalog)
    span_files, resource_files = data_files(tables["span_rows"]), data_files(tables["resources"])
    schema = analyzer_schema(business_keys)
    files = spark.createDataFrame([(path,) for path in span_files], "path string")
    spans = (files.repartition(max(1, min(len(span_files), spark.sparkContext.defaultParallelism * 4)))
             .mapInArrow(functools.partial(_spans_of_files, resource_files=resource_files,
                                           business_keys=business_keys, schema=schema),
                         from_arrow_schema(schema))
             .persist(StorageLevel.MEMORY_AND_DISK))
    result.spans = spans.count()
    lap("read")

    # Kept: every round of the propagation joins against the edges.
    labels, result.rounds = components(trace_edges(spans).localCheckpoint())
    lap("components")

    result.tasks = max(1, -(-result.spans // spans_per_task))
    staging = location.warehouse / NAMESPACE / "analysis" / f"run-{uuid.uuid4().hex[:12]}"
    schemas = target_schemas()
    grouped = (spans.join(labels, "trace_id", "left")
               .withColumn("component", F.coalesce("component", "trace_id"))
               .repartition(result.tasks, "component").drop("component"))
    manifest = (grouped.mapInArrow(functools.partial(_analyze_partition, staging=str(staging),
                                                     schemas=schemas),
                                   from_arrow_schema(_MANIFEST))
                .collect())
    spans.unpersist()
    written: dict[str, list[str]] = {name: [] for name in ANALYSIS_TABLES}
    for row in manifest:
        written[row["table"]].append(row["path"])
        result.rows[row["table"]] = result.rows.get(row["table"], 0) + row["rows"]
    lap("flows")

    for name, table in flow_types(written, schemas, staging).items():
        written[name] = [table]
    shutil.rmtree(staging / "partial", ignore_errors=True)
    result.flows = result.rows.get("flow_rows", 0)
    result.types = pq.read_metadata(written["flow_type_rows"][0]).num_rows if written["flow_type_rows"] else 0
    for name in PER_TYPE:
        result.rows[name] = sum(pq.read_metadata(path).num_rows for path in written[name])
    lap("types")

    try:
        for name in ANALYSIS_TABLES:
            replace_table(catalog, name, schemas[name], written[name])
    finally:
        catalog.engine.dispose()
    lap("commit")
    return result


def flow_types(written: dict[str, list[str]], schemas: dict[str, pa.Schema],
               staging: Path) -> dict[str, str]:
    """flow_type_rows, flow_type_steps and flow_shapes from the flows' rows and the tasks'
    partial sums, by the store's own refresh_types on a DuckDB of one row per flow; the
    Parquet file each table was written to."""
    from tracekit.analysis.persist import refresh_types
    from tracekit.lake.reader import _literal
    from tracekit.opening import migrate

    conn = duckdb.connect()
    try:
        migrate(conn)
        sources = {"flow_rows": "INSERT INTO flow_rows BY NAME SELECT * FROM read_parquet([{}])",
                   "flow_type_steps": "INSERT INTO flow_type_steps BY NAME SELECT * FROM read_parquet([{}])",
                   "flow_shapes": "INSERT INTO flow_shapes SELECT type_id, signature FROM "
                                  "read_parquet([{}]) ON CONFLICT DO NOTHING"}
        for name, insert in sources.items():
            if written[name]:
                conn.execute(insert.format(", ".join(_literal(path) for path in written[name])))
        refresh_types(conn)
        out = {}
        for name in PER_TYPE:   # names from a fixed list
            rows = conn.sql(f"SELECT * FROM {name}").to_arrow_table()
            path = staging / name / f"part-{uuid.uuid4().hex}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(rows.select(schemas[name].names).cast(schemas[name]), path)
            out[name] = str(path)
        return out
    finally:
        conn.close()


def replace_table(catalog, name: str, schema: pa.Schema, paths: list[str]) -> None:
    """The lake's table `name` holds exactly these Parquet files from now on (one commit:
    readers see the old analysis or the new, never a mix)."""
    from pyiceberg.exceptions import NoSuchTableError
    from pyiceberg.expressions import AlwaysTrue

    identifier = f"{NAMESPACE}.{name}"
    try:
        table = catalog.load_table(identifier)
    except NoSuchTableError:
        table = catalog.create_table(identifier, schema=schema, properties={"format-version": "2"})
    with table.transaction() as transaction:
        if table.current_snapshot() is not None:
            transaction.delete(AlwaysTrue())
        if paths:
            transaction.add_files(paths)


def read_analysis(location: LakeLocation) -> dict[str, pa.Table]:
    """The lake's analysis tables as Arrow (what the Spark analysis last committed)."""
    catalog = location.open_catalog()
    try:
        out = {}
        for name in ANALYSIS_TABLES:
            table = catalog.load_table(f"{NAMESPACE}.{name}")
            out[name] = table.scan().to_arrow()
        return out
    finally:
        catalog.engine.dispose()
