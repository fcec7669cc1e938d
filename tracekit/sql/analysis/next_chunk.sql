-- The last batch of the next chunk to analyze after $since (the batches whose spans add up
-- to about $chunk, at least one batch, up to $limit; NULL when none is left) and its spans.
WITH after AS (
    SELECT batch_id, sum(spans) OVER (ORDER BY batch_id) AS running
    FROM ingest_batches WHERE batch_id > $since AND batch_id <= $limit
), last AS (
    SELECT coalesce(max(batch_id) FILTER (running <= $chunk), min(batch_id)) AS batch FROM after
)
SELECT (SELECT batch FROM last), (SELECT running FROM after WHERE batch_id = (SELECT batch FROM last))
