"""The benchmarks' large stores: a real demo run, copied with fresh ids until it holds N spans.

Every copy gets fresh trace, span, message and order ids (a 6-hex-digit tag in front), so the
analyzer sees as many independent flows of the demo's shapes and no copy stitches into
another; links are re-tagged with their spans. Copies can be shifted in time one after the
other (a 10M-span store then holds weeks of the demo's traffic) or overlap. Rows are written
through tracekit's writable store, so the schema is the real one, then checkpointed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import tracekit

COPY_SPANS = """
INSERT INTO span_rows
SELECT $tag || substr(trace_id, 7), $tag || substr(span_id, 7),
       CASE WHEN parent_span_id IS NULL THEN NULL ELSE $tag || substr(parent_span_id, 7) END,
       trace_state, name, kind, start_time + to_microseconds($shift_us),
       end_time + to_microseconds($shift_us), duration_ns, status_code, status_message,
       service_name, resource_id, scope_name, scope_version,
       -- fresh message and order ids, so copies do not stitch into each other
       regexp_replace(to_json(attributes)::VARCHAR,
                      '"(messaging\\.message\\.id|order\\.id)":"', '"\\1":"' || $tag || '-', 'g')::JSON::VARIANT,
       events,
       list_transform(links, lambda l: struct_pack(trace_id := $tag || substr(l.trace_id, 7),
                                                   span_id := $tag || substr(l.span_id, 7),
                                                   trace_state := l.trace_state,
                                                   attributes := l.attributes, flags := l.flags,
                                                   dropped_attributes_count := l.dropped_attributes_count)),
       flags, dropped_attributes_count, dropped_events_count, dropped_links_count, ingest_notes,
       batch_id + $batch_offset
FROM base_spans
"""

COPY_LOGS = """
INSERT INTO log_rows
SELECT "timestamp" + to_microseconds($shift_us), observed_timestamp + to_microseconds($shift_us),
       CASE WHEN trace_id IS NULL THEN NULL ELSE $tag || substr(trace_id, 7) END,
       CASE WHEN span_id IS NULL THEN NULL ELSE $tag || substr(span_id, 7) END,
       trace_flags, severity_number, severity_text, body, attributes, service_name, resource_id,
       scope_name, scope_version, event_name, dropped_attributes_count, batch_id + $batch_offset,
       hash(record_key, $tag)
FROM base_logs
"""


def demo_store(folder: Path, name: str = "demo.duckdb", duration: str = "60s") -> Path:
    """A store of a headless demo run at 40 flows/s, made in `folder` unless it is there."""
    db = folder / name
    if not db.exists():
        print(f"making a demo store in {db} ({duration} of demo traffic)", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "tracekit", "demo", "--headless", "--json",
                        "--duration", duration, "--rate", "40", "--db", str(db)],
                       check=True, capture_output=True)
    return db


def replicate(source: Path, target: Path, spans: int, *, logs: bool = True,
              one_after_another: bool = True, every_s: float | None = None,
              own_batches: bool = False) -> None:
    """`source` copied into `target` until it holds about `spans` spans (and, with `logs`,
    its logs with them); with `one_after_another` each copy starts after the previous one
    ends, else they all overlap the source's time; with `every_s`, copy n starts n × every_s
    after the source (traffic spread over days). With `own_batches` each copy's rows get
    batch ids (and ingest_batches rows) of their own after the previous copy's, as if each
    had been ingested in its turn. `target` appears only when complete."""
    partial = target.with_suffix(".partial")
    shutil.copy(source, partial)
    store = tracekit.open(partial, write=True)
    try:
        conn = store.conn
        conn.execute("CREATE TEMP TABLE base_spans AS SELECT * FROM span_rows")
        conn.execute("CREATE TEMP TABLE base_logs AS SELECT * FROM log_rows")
        conn.execute("CREATE TEMP TABLE base_batches AS SELECT * FROM ingest_batches")
        base, first, last = conn.execute(
            "SELECT count(*), epoch_us(min(start_time)), epoch_us(max(end_time)) FROM base_spans"
        ).fetchall()[0]
        period_us = last - first + 1_000_000 if one_after_another else 0
        if every_s is not None:
            period_us = int(every_s * 1_000_000)
        [(last_batch,)] = conn.execute("SELECT coalesce(max(batch_id), 0) FROM ingest_batches").fetchall()
        copies = max(0, -(-spans // base) - 1)
        started = time.monotonic()
        for n in range(1, copies + 1):
            params = {"tag": f"{n:06x}", "shift_us": n * period_us,
                      "batch_offset": n * last_batch if own_batches else 0}
            conn.execute(COPY_SPANS, params)
            if logs:
                conn.execute(COPY_LOGS, params)
            if own_batches:
                conn.execute("INSERT INTO ingest_batches SELECT batch_id + $offset, received_at, "
                             "source, spans, logs, duplicates, NULL FROM base_batches",
                             {"offset": params["batch_offset"]})
            rate = n * base / (time.monotonic() - started)
            if sys.stderr.isatty() or n == copies:
                print(f"\rbuilding {target.name}: {(n + 1) * base:,} of {spans:,} spans "
                      f"({rate:,.0f} spans/s)", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
        conn.execute("CHECKPOINT")
    finally:
        store.close()
    partial.rename(target)

