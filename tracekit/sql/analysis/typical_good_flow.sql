-- A typical good flow to compare flow $flow_id with: complete (so not failed), and of its
-- type; when its type has none (a failing flow often has a type of its own: its set of edges
-- differs), of its workflow (the same root operation). Flows started within $recent_ns of it
-- first, then any. Of the first of those pools that holds a flow, the one whose duration is
-- nearest the pool's median (ties: the earlier id).
WITH me AS (
    SELECT flow_id, type_id, root_service, root_name, start_time FROM flows WHERE flow_id = $flow_id
), pool AS (
    SELECT f.flow_id, f.duration_ms, f.type_name,
           (CASE WHEN f.type_id = me.type_id THEN 0 ELSE 2 END)
           + (CASE WHEN abs(epoch_ns(f.start_time) - epoch_ns(me.start_time)) <= $recent_ns
                   THEN 0 ELSE 1 END) AS tier
    FROM flows AS f, me
    WHERE f.status = 'complete' AND f.flow_id <> me.flow_id
      AND (f.type_id = me.type_id
           OR (f.root_service = me.root_service AND f.root_name = me.root_name))
), best AS (
    SELECT * FROM pool QUALIFY tier = min(tier) OVER ()
)
SELECT flow_id, duration_ms, type_name, tier >= 2 AS other_type, tier % 2 = 1 AS not_recent,
       median_ms, candidates
FROM best, (SELECT median(duration_ms) AS median_ms, count(*) AS candidates FROM best)
ORDER BY abs(duration_ms - median_ms), flow_id
LIMIT 1
