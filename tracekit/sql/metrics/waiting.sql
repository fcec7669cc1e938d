-- When the oldest batch the analysis has yet to read was stored (ns since the epoch; NULL when
-- it has read every batch). Batch ids grow with time, so this reads the newest few rows.
SELECT epoch_ns(min(received_at)) FROM ingest_batches WHERE batch_id > $through
