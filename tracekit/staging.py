"""The writer's transactions: a batch inserted into one (`insert`), what one holds (`Staged`),
the ids and keys it takes (`Claims`), and a commit run in a thread of its own (`Committer`).

`tracekit.writable.WritableStore` stages acknowledged exports into an open transaction and
hands it to the committer once it holds a row group (docs/design/collector.md: Moves).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone

import duckdb
import numpy as np
import pyarrow as pa

from tracekit import intake, queries
from tracekit.otlp.batches import DecodedBatch, resource_table, stream
from tracekit.resent_logs import new_records, with_record_keys
from tracekit.resent_spans import new_spans, sorted_start_times
from tracekit.threads import name_os_thread


@dataclass
class Staged:
    """A transaction of the writer's, open: what has been inserted in it so far."""

    cur: duckdb.DuckDBPyConnection
    spans: int = 0
    logs: int = 0
    duplicates: int = 0            # re-sent spans left out
    span_bytes: int = 0            # as decoded Arrow
    log_bytes: int = 0
    batches: int = 0               # batch rows (ids from the store's next one on)
    resources: set[int] = field(default_factory=set)        # inserted in it
    new_keys: set[str] = field(default_factory=set)         # registered in it
    attribute_keys: frozenset[str] = frozenset()            # of its spans
    moved_through: int | None = None   # the last intake export it holds whole
    # A transaction that was committing when this one began, whose rows this one does not
    # see; and the (trace_id, span_id, start_time) of the spans inserted here, and the keys
    # of the logs, for the next.
    unseen: Staged | None = None
    keys: list[pa.Table] = field(default_factory=list)
    log_keys: list[np.ndarray] = field(default_factory=list)   # `record_key`s of its logs
    _sorted_starts: np.ndarray | None = None

    def sorted_start_times(self) -> np.ndarray:
        """The start times of its spans as sorted integers (ns), once all are inserted."""
        if self._sorted_starts is None:
            self._sorted_starts = sorted_start_times(self.keys)
        return self._sorted_starts


@dataclass(frozen=True)
class AppendResult:
    """What one committed append wrote."""

    batch_id: int
    spans: int
    logs: int
    duplicates: int


class Claims:
    """The batch ids, resources and span attribute keys the store holds, with those of
    transactions about to commit: a transaction inserts only what nothing before it took."""

    def __init__(self, conn: duckdb.DuckDBPyConnection):
        self.reload(conn)

    def reload(self, conn: duckdb.DuckDBPyConnection) -> None:
        """What is taken is what the store holds (on opening, or after a failed commit)."""
        self.next_batch = conn.execute(
            "SELECT coalesce(max(batch_id), 0) + 1 FROM ingest_batches").fetchall()[0][0]
        self.resources = {row[0] for row in conn.execute("SELECT resource_id FROM resources").fetchall()}
        self.attribute_keys = {
            row[0] for row in conn.execute("SELECT key FROM span_attribute_keys").fetchall()}

    def claim(self, staged: Staged) -> None:
        """A transaction about to commit: its resources, attribute keys and batch ids count
        as taken, for the transaction after it."""
        self.resources.update(staged.resources)
        self.attribute_keys.update(staged.new_keys)
        self.next_batch += staged.batches


def insert(staged: Staged, claims: Claims, batch: DecodedBatch, source: str,
           moved_through: int | None) -> AppendResult:
    """Insert the batch's resources, spans and logs, and its batch row, in `staged`'s
    transaction; spans and logs already stored (re-sent) are left out."""
    cur, batch_id = staged.cur, claims.next_batch + staged.batches
    spans = logs = duplicates = 0
    new_resources = {k: v for k, v in batch.resources.items()
                     if k not in claims.resources and k not in staged.resources}
    new_keys = sorted(batch.attribute_keys - claims.attribute_keys - staged.new_keys)
    unseen = staged.unseen
    if new_resources:
        cur.register("incoming_resources", resource_table(new_resources))
        cur.execute(queries.load("insert_resources"))
        cur.unregister("incoming_resources")
    if batch.spans is not None and batch.spans.num_rows:
        incoming, keys = new_spans(cur, batch.spans,
                                   unseen.sorted_start_times() if unseen is not None else None,
                                   unseen.keys if unseen is not None else ())
        cur.register("incoming_spans", stream(incoming))
        spans = cur.execute(queries.load("insert_spans"), {"batch_id": batch_id}).fetchall()[0][0]
        cur.unregister("incoming_spans")
        staged.keys.append(keys)
        if new_keys:
            cur.execute(queries.load("insert_attribute_keys"),
                        {"keys": new_keys, "batch_id": batch_id})
        duplicates = batch.spans.num_rows - spans
        staged.span_bytes += batch.spans.nbytes
    if batch.logs is not None and batch.logs.num_rows:
        incoming = new_records(cur, with_record_keys(cur, batch.logs),
                               unseen.log_keys if unseen is not None else ())
        cur.register("incoming_logs", stream(incoming))
        logs = cur.execute(queries.load("insert_logs"), {"batch_id": batch_id}).fetchall()[0][0]
        cur.unregister("incoming_logs")
        staged.log_keys.append(incoming.column("record_key").to_numpy())
        staged.log_bytes += batch.logs.nbytes
    insert_batch_row(cur, batch_id, source, spans, logs, duplicates, moved_through)
    staged.batches += 1
    staged.spans += spans
    staged.logs += logs
    staged.duplicates += duplicates
    staged.resources.update(new_resources)
    staged.new_keys.update(new_keys)
    staged.attribute_keys |= batch.attribute_keys
    if moved_through is not None:
        staged.moved_through = moved_through
    return AppendResult(batch_id, spans, logs, duplicates)


def insert_batch_row(cur: duckdb.DuckDBPyConnection, batch_id: int, source: str, spans: int,
                     logs: int, duplicates: int, intake_through: int | None) -> None:
    """Record a batch (`ingest_batches`): what it stored, and the last intake export it holds."""
    cur.execute(
        queries.load("insert_batch"),
        {"batch_id": batch_id, "received_at": datetime.now(timezone.utc), "source": source,
         "spans": spans, "logs": logs, "duplicates": duplicates, "intake_through": intake_through},
    )


def source_of(exports: Sequence[intake.Export]) -> str:
    """The source of a move: its exports' one source, or 'mixed'."""
    sources = {export.source for export in exports}
    return sources.pop() if len(sources) == 1 else "mixed"


class Committer:
    """Commits one transaction at a time in a thread of its own: DuckDB writes a row group
    (compressing it and shredding its attribute maps, most of a move's time) while the mover
    stages the next on the other core."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._committing: tuple[Staged, Future] | None = None
        self.on_commit: Callable[[], None] | None = None   # called in its thread

    @property
    def committing(self) -> Staged | None:
        """The transaction committing, if any."""
        return self._committing[0] if self._committing is not None else None

    @property
    def done(self) -> bool:
        """Whether a commit was handed over and has ended (`wait` takes it in)."""
        return self._committing is not None and self._committing[1].done()

    def commit(self, staged: Staged) -> None:
        """Start committing `staged` (the last commit handed over must have been waited for)."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="tracekit-commit",
                                            initializer=name_os_thread)
        future = self._pool.submit(staged.cur.execute, "COMMIT")
        if self.on_commit is not None:
            future.add_done_callback(lambda _: self.on_commit())
        self._committing = (staged, future)

    def wait(self) -> Staged | None:
        """Wait for the commit handed over, if any, and give its transaction (its cursor
        closed); raise what its commit raised."""
        if self._committing is None:
            return None
        (staged, future), self._committing = self._committing, None
        try:
            future.result()
        finally:
            staged.cur.close()
        return staged

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()


@contextmanager
def transaction(cur: duckdb.DuckDBPyConnection, commit: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
    """BEGIN; when the block ends COMMIT (or, with `commit` false, ROLLBACK); ROLLBACK if it
    raises."""
    cur.execute("BEGIN")
    try:
        yield cur
    except BaseException:
        try:
            cur.execute("ROLLBACK")
        except duckdb.Error:
            pass
        raise
    cur.execute("COMMIT" if commit else "ROLLBACK")
