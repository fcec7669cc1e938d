"""The intake: a log of acknowledged exports beside the store, and nothing else.

A collector acknowledges an export once its decoded rows are in this log and on disk
(fdatasync), and moves acknowledged exports into `span_rows` and `log_rows` afterwards, in
larger transactions of its own, from memory. The log is read back only after a crash: the
next writable open of the store moves what it holds past the store's `intake_through`.

Why a plain file and not DuckDB: DuckDB takes no commit into a database while it checkpoints
it, and the store's checkpoints (compressing a row group and shredding its attribute maps) are
about half of the collector's time, so exporters must not wait on the store. An earlier intake
was a second DuckDB file attached to the writer's connection; writing, reading back, deleting
and checkpointing it cost the collector ~10 µs a span and a share of DuckDB's memory, where
appending Arrow IPC to a file costs ~1 µs (benchmarks/results/2026-11-28-and-29.md, the
sixth look).

Layout: `<store>.intake/` holds segment files named by the sequence number of their first
export; a new segment starts once one passes `SEGMENT_BYTES`, and a segment is deleted once
the store holds all its exports. A segment is a run of records, each one intake commit:

    header  magic "TKI1" | payload bytes u32 | first seq u64 | exports u32 | crc32 u32
    payload per export: meta bytes u32 | meta (JSON: source, resources, attribute keys,
            sizes) | spans as an Arrow IPC stream | logs as an Arrow IPC stream

An export is acknowledged only after its record is synced, so a record cut short at the end
of the last segment (a crash while writing it) was never acknowledged and is dropped.
"""

from __future__ import annotations

import json
import logging
import os
import struct
import threading
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tracekit.errors import TracekitError

if TYPE_CHECKING:     # imported where used: a reader opening a store only counts what waits
    import pyarrow as pa

    from tracekit.otlp.batches import DecodedBatch

log = logging.getLogger(__name__)

SUFFIX = ".intake"                  # the log's directory: <store>.intake
SEGMENT_BYTES = 64 * 2**20          # a new segment file from this size on
MAGIC = b"TKI1"
HEADER = struct.Struct("<4sIQII")   # magic, payload bytes, first seq, exports, crc32
META = struct.Struct("<I")
WRITEV_PARTS = 1024


@dataclass(frozen=True)
class Accepted:
    """Exports appended to the intake together (one record, one sync): acknowledged."""

    first_seq: int
    last_seq: int
    spans: int
    logs: int


@dataclass(frozen=True)
class Export:
    """One acknowledged export: its sequence number, rows and source."""

    seq: int
    batch: DecodedBatch
    source: str


def first_group(exports: Iterable[Export], max_items: int) -> list[Export]:
    """The first of `exports`, in order, whole, up to `max_items` spans and logs in all (at
    least one, if there is one): what one move takes."""
    group, items = [], 0
    for export in exports:
        size = export.batch.span_count + export.batch.log_count
        if group and items + size > max_items:
            break
        group.append(export)
        items += size
    return group


class IntakeCorrupt(TracekitError):
    """The intake log is damaged before its end: acknowledged exports cannot be read back."""


class Intake:
    """The intake log in `directory`; `append` is called by one thread, `release` by another."""

    def __init__(self, directory: Path):
        self.directory = directory
        self._lock = threading.Lock()
        directory.mkdir(parents=True, exist_ok=True)
        # first seq -> path, oldest first; the last is the one appended to.
        self._segments: dict[int, Path] = {}
        self.last_seq: int | None = None
        for path in sorted(directory.glob("*.log")):
            try:
                first = int(path.stem)
            except ValueError:
                continue
            self._segments[first] = path
        for first, path in self._segments.items():
            last = _check_segment(path, final=first == max(self._segments))
            if last is not None:
                self.last_seq = last
        self._fd: int | None = None

    def append(self, first_seq: int, exports: Sequence[tuple[DecodedBatch, str]]) -> Accepted:
        """Append `exports`, numbered from `first_seq`, as one record and sync it to disk."""
        parts = [b"", *(part for batch, source in exports for part in _encoded(batch, source))]
        payload_bytes = sum(len(part) for part in parts)
        crc = 0
        for part in parts[1:]:
            crc = zlib.crc32(part, crc)
        parts[0] = HEADER.pack(MAGIC, payload_bytes, first_seq, len(exports), crc)
        with self._lock:
            fd = self._segment_for(first_seq)
            size = os.fstat(fd).st_size
            try:
                for start in range(0, len(parts), WRITEV_PARTS):   # the system's IOV_MAX: 1024
                    group = parts[start:start + WRITEV_PARTS]
                    if (written := os.writev(fd, group)) != sum(len(part) for part in group):
                        raise OSError(f"wrote {written} bytes of a record's {payload_bytes}")
                os.fdatasync(fd)
            except OSError as exc:
                try:   # leave no partial record behind a failed append
                    os.ftruncate(fd, size)
                except OSError:
                    pass
                raise TracekitError(f"cannot write the intake {self.directory}: {exc}") from None
            self.last_seq = first_seq + len(exports) - 1
        return Accepted(first_seq, self.last_seq,
                        sum(batch.span_count for batch, _ in exports),
                        sum(batch.log_count for batch, _ in exports))

    def _segment_for(self, first_seq: int) -> int:
        """The descriptor of the segment to append to: a new one once it is full."""
        if self._fd is not None and os.fstat(self._fd).st_size < SEGMENT_BYTES:
            return self._fd
        if self._fd is None and self._segments:
            current = self._segments[max(self._segments)]
            if current.stat().st_size < SEGMENT_BYTES:
                self._fd = os.open(current, os.O_WRONLY | os.O_APPEND)
                return self._fd
        if self._fd is not None:
            os.close(self._fd)
        path = self.directory / f"{first_seq:020d}.log"
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        _sync_directory(self.directory)   # the new file's name is durable before an ack
        self._segments[first_seq] = path
        return self._fd

    def read(self, after: int) -> Iterator[Export]:
        """The exports after sequence number `after`, oldest first, from disk."""
        for path in list(self._segments.values()):
            for first, exports, payload in _records(path):
                if first + exports - 1 <= after:
                    continue   # stored already
                offset = 0
                for seq in range(first, first + exports):
                    export, offset = _decoded(payload, offset, seq)
                    if seq > after:
                        yield export

    def release(self, moved_through: int) -> None:
        """Delete the segments whose exports the store holds (all up to `moved_through`)."""
        with self._lock:
            firsts = sorted(self._segments)
            for first, following in zip(firsts, firsts[1:]):
                if following - 1 > moved_through:
                    break
                self._segments.pop(first).unlink(missing_ok=True)

    def close(self, remove: bool) -> None:
        """Close the log; with `remove`, delete it (the store holds every export in it)."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            if remove:
                for path in self._segments.values():
                    path.unlink(missing_ok=True)
                self._segments.clear()
                try:
                    self.directory.rmdir()
                except OSError:
                    pass   # something else is in it: leave it


def waiting(directory: Path, moved_through: int) -> int:
    """How many exports the intake in `directory` holds after `moved_through` (0 if there is
    no intake, or it cannot be read: a reader only warns with this)."""
    count = 0
    try:
        for path in sorted(directory.glob("*.log")):
            with path.open("rb") as segment:
                total = os.fstat(segment.fileno()).st_size
                while len(header := segment.read(HEADER.size)) == HEADER.size:
                    magic, size, first, exports, _ = HEADER.unpack(header)
                    if magic != MAGIC or segment.tell() + size > total:
                        break   # damaged, or cut short by a crash: never acknowledged
                    count += max(0, min(exports, first + exports - 1 - moved_through))
                    segment.seek(size, os.SEEK_CUR)
    except OSError:
        return 0
    return count


def _encoded(batch: DecodedBatch, source: str) -> list[bytes | pa.Buffer]:
    """One export's part of a record's payload."""
    tables = [_ipc(batch.spans), _ipc(batch.logs)]
    meta = json.dumps({
        "source": source,
        "resources": [[rid, service, text] for rid, (service, text) in batch.resources.items()],
        "attribute_keys": sorted(batch.attribute_keys),
        "sizes": [len(table) for table in tables],
    }).encode()
    return [META.pack(len(meta)), meta, *tables]


def _ipc(table: pa.Table | None) -> pa.Buffer:
    import pyarrow as pa

    if table is None or not table.num_rows:
        return pa.py_buffer(b"")
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def _decoded(payload: memoryview, offset: int, seq: int) -> tuple[Export, int]:
    """The export at `offset` in a record's payload, and the offset after it."""
    import pyarrow as pa

    from tracekit.otlp.batches import DecodedBatch

    (meta_bytes,) = META.unpack_from(payload, offset)
    offset += META.size
    meta = json.loads(bytes(payload[offset:offset + meta_bytes]))
    offset += meta_bytes
    tables = []
    for size in meta["sizes"]:
        tables.append(pa.ipc.open_stream(pa.py_buffer(payload[offset:offset + size])).read_all()
                      if size else None)
        offset += size
    batch = DecodedBatch(spans=tables[0], logs=tables[1],
                         resources={rid: (service, text) for rid, service, text in meta["resources"]},
                         attribute_keys=frozenset(meta["attribute_keys"]))
    return Export(seq, batch, meta["source"]), offset


def _records(path: Path) -> Iterator[tuple[int, int, memoryview]]:
    """Each record's first sequence number, exports and payload (a segment is checked when
    the intake is opened, so each is whole)."""
    with path.open("rb") as segment:
        while len(header := segment.read(HEADER.size)) == HEADER.size:
            _, size, first, exports, _ = HEADER.unpack(header)
            yield first, exports, memoryview(segment.read(size))


def _check_segment(path: Path, final: bool) -> int | None:
    """Check every record of a segment; the last export's sequence number in it.
    A record being written when the process stopped was never acknowledged (an ack waits for
    its sync): at the end of the final segment, a record cut short, or one whose bytes reach
    the end of the file and fail their CRC, or a tail of zero bytes (space the file system
    allocated but never wrote), is dropped and the file truncated to the records before it.
    Anything else unreadable is an error."""
    last = None
    good = 0
    with path.open("rb") as segment:
        total = os.fstat(segment.fileno()).st_size
        while good < total:
            header = segment.read(HEADER.size)
            problem, reaches_end = None, True
            if len(header) < HEADER.size:
                problem = "a record header cut short"
            else:
                magic, size, first, exports, crc = HEADER.unpack(header)
                if magic != MAGIC:
                    problem, reaches_end = "a record that does not start as one", False
                elif zlib.crc32(payload := segment.read(size)) != crc or len(payload) < size:
                    problem = "a record cut short or damaged"
                    reaches_end = good + HEADER.size + size >= total
            if problem:
                if not (final and (reaches_end or _zeros(segment, good, total))):
                    raise IntakeCorrupt(
                        f"the intake segment {path} holds {problem} at byte {good} of {total}, "
                        "before acknowledged exports: it was damaged on disk. Move the intake "
                        f"directory {path.parent} away to open the store without its exports.")
                log.warning("dropped %d bytes at the end of the intake segment %s: an export "
                            "being written when the collector stopped, never acknowledged",
                            total - good, path)
                with path.open("r+b") as writable:
                    writable.truncate(good)
                    os.fsync(writable.fileno())
                break
            good = segment.tell()
            last = first + exports - 1
    return last


def _zeros(segment, start: int, end: int) -> bool:
    """Whether the file's bytes from `start` to `end` are all zero."""
    segment.seek(start)
    while start < end:
        chunk = segment.read(min(1 << 20, end - start))
        if not chunk or chunk.count(0) != len(chunk):
            return not chunk
        start += len(chunk)
    return True


def _sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
