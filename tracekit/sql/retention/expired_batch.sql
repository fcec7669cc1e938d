-- The last batch received before the cutoff: every row of it and of earlier batches expired.
SELECT max(batch_id) FROM ingest_batches WHERE received_at < $cutoff;
