-- The newest committed batch of the store (0 when it has none).
SELECT coalesce(max(batch_id), 0) FROM ingest_batches;
