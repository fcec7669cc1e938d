-- The last batch of the next chunk to analyze after $since: the batches whose spans add up
-- to about $chunk (at least one batch), up to $limit; NULL when none is left.
WITH after AS (
    SELECT batch_id, sum(spans) OVER (ORDER BY batch_id) AS running
    FROM ingest_batches WHERE batch_id > $since AND batch_id <= $limit
)
SELECT coalesce(max(batch_id) FILTER (running <= $chunk), min(batch_id)) FROM after
