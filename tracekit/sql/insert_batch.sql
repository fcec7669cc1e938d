-- One batch written: $received_at is when the writer wrote it (a transaction of moves stays
-- open for a row group, so now(), its start, could be minutes earlier at a low rate).
INSERT INTO ingest_batches (batch_id, received_at, source, spans, logs, duplicates, intake_through)
VALUES ($batch_id, $received_at, $source, $spans, $logs, $duplicates, $intake_through);
