-- Where a preview of the newest data starts: load the batches after the returned id, which
-- together hold at least $spans spans. No row when that would be the whole store.
SELECT batch_id - 1 AS batch_id FROM (
    SELECT batch_id, sum(count(*)) OVER (ORDER BY batch_id DESC) AS newer,
           min(batch_id) OVER () AS first
    FROM span_rows GROUP BY batch_id)
WHERE newer >= $spans AND batch_id > first
ORDER BY batch_id DESC
LIMIT 1
