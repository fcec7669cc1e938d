-- The last committed batch of the next shipment of one table to the lake: the batches after
-- $after, as many as hold at most $max_rows rows of it (spans, or logs when $logs), and at
-- least one. NULL when no batch came after $after. Every batch up to the newest one a reader
-- sees is committed: the writer commits its transactions in order.
WITH pending AS (
    SELECT batch_id,
           sum(CASE WHEN $logs THEN logs ELSE spans END) OVER (ORDER BY batch_id) AS rows_through
    FROM ingest_batches
    WHERE batch_id > $after
)
SELECT coalesce(max(batch_id) FILTER (WHERE rows_through <= $max_rows), min(batch_id))
FROM pending;
