INSERT INTO ingest_batches VALUES ($batch_id, now(), $source, $spans, $logs, $duplicates);
