-- The flow types of the flows started in [$start_ns, $end_ns) whose name or style contains
-- $text: flows, failures, error rate, p50/p95 duration, and per each of $buckets equal parts
-- of [$from_ns, $to_ns) (NULL: the first and last start) how many started, how many failed and
-- their p95, for the trends.
-- A type the store has not named yet (a collector refreshes the types on their own schedule)
-- is called after its root span.
-- The ORDER BY is filled in by tui/window_data.py, from its fixed list.
WITH picked AS (
    SELECT type_id, failed, duration_ms, epoch_ns(start_time) AS start_ns, style,
           root_service || ' ' || root_name AS root
    FROM flows
    WHERE start_time >= make_timestamp_ns($start_ns) AND start_time < make_timestamp_ns($end_ns)
), span AS (
    SELECT coalesce($from_ns, min(start_ns)) AS lo, coalesce($to_ns, max(start_ns) + 1) AS hi
    FROM picked
), bucketed AS (
    SELECT picked.*, least($buckets - 1, greatest(0, (start_ns - lo) * $buckets
                                                   // greatest(hi - lo, 1))) AS bucket
    FROM picked, span
), per_bucket AS (
    SELECT type_id, bucket, count(*) AS flows, count(*) FILTER (failed) AS failed,
           quantile_cont(duration_ms, 0.95) AS p95_ms
    FROM bucketed
    GROUP BY type_id, bucket
), trends AS (
    SELECT type_id, list({'bucket': bucket, 'flows': flows, 'failed': failed, 'p95_ms': p95_ms})
               AS trend
    FROM per_bucket GROUP BY type_id
), per_type AS (
    SELECT type_id, count(*) AS flows, count(*) FILTER (failed) AS failed,
           avg(failed::INT) AS error_rate,
           quantile_cont(duration_ms, 0.5) AS p50_ms, quantile_cont(duration_ms, 0.95) AS p95_ms,
           any_value(root) || ' (new)' AS new_name, mode(style) AS new_style
    FROM picked
    GROUP BY type_id
)
SELECT p.type_id, coalesce(t.name, p.new_name, p.type_id) AS name,
       coalesce(t.style, p.new_style) AS style, p.flows, p.failed,
       p.error_rate, p.p50_ms, p.p95_ms, r.trend
FROM per_type AS p JOIN trends AS r USING (type_id) LEFT JOIN flow_types AS t USING (type_id)
WHERE $text = '' OR contains(lower(coalesce(t.name, p.new_name, '')), lower($text))
   OR contains(lower(coalesce(t.style, p.new_style, '')), lower($text))
ORDER BY {order}
