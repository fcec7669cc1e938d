-- Flows started in the window: how many, and how many failed, were degraded (errors handled
-- inside), are still incomplete, or ran slower than their workflow's baseline p95 (and when
-- the first of those started).
WITH picked AS (
    SELECT * FROM report_flows($start, $end, $base_start, $base_end, $type_ids, $flow_id)
), base AS (
    SELECT root_service, root_name, quantile_cont(duration_ms, 0.95) AS p95_ms
    FROM picked
    WHERE start_time >= $base_start::TIMESTAMP_NS AND start_time < $base_end::TIMESTAMP_NS
      AND status IN ('complete', 'degraded')
    GROUP BY ALL
)
SELECT count(*) AS flows,
       count(*) FILTER (w.status = 'failed') AS failed,
       count(*) FILTER (w.status = 'degraded') AS degraded,
       count(*) FILTER (w.status IN ('incomplete', 'running')) AS incomplete,
       count(*) FILTER (w.status IN ('complete', 'degraded') AND w.duration_ms > b.p95_ms) AS slow,
       min(w.start_time) FILTER (w.status IN ('complete', 'degraded') AND w.duration_ms > b.p95_ms) AS first_slow
FROM picked AS w LEFT JOIN base AS b USING (root_service, root_name)
WHERE w.start_time >= $start::TIMESTAMP_NS AND w.start_time < $end::TIMESTAMP_NS
