-- The batch through which the oldest $share of the stored spans and logs were written:
-- deleting through it frees about that share of the store.
WITH per_batch AS (
    SELECT batch_id, spans + logs AS items FROM ingest_batches
    WHERE batch_id > $after
), running AS (
    SELECT batch_id, sum(items) OVER (ORDER BY batch_id) AS through, sum(items) OVER () AS total
    FROM per_batch
)
SELECT min(batch_id) FROM running WHERE through >= $share * total;
