INSERT INTO ingest_batches (batch_id, received_at, source, spans, logs, duplicates, intake_through)
VALUES ($batch_id, now(), $source, $spans, $logs, $duplicates, $intake_through);
