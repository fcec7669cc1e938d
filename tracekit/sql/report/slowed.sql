-- Services and operations whose time on the flows' critical paths grew: milliseconds per
-- flow in the window against the baseline (at least 20 ms and 1.5x more; broker waits count
-- for the consumer that was waited for).
WITH picked AS (
    SELECT flow_id, part FROM report_flows($start, $end, $base_start, $base_end, $type_ids, $flow_id)
), counted AS (
    SELECT part, count(*) AS flows FROM picked WHERE part IS NOT NULL GROUP BY part
), per_step AS (
    SELECT c.service_name, c.name, p.part, sum(c.duration_ms) AS ms
    FROM critical_path AS c JOIN picked AS p USING (flow_id)
    WHERE p.part IS NOT NULL AND c.start_time >= least($start, $base_start)::TIMESTAMP_NS
    GROUP BY ALL
), compared AS (
    SELECT service_name, name,
           coalesce(max(ms / flows) FILTER (part = 'window'), 0) AS window_ms,
           coalesce(max(ms / flows) FILTER (part = 'baseline'), 0) AS baseline_ms
    FROM per_step JOIN counted USING (part)
    GROUP BY ALL
)
SELECT service_name, name, round(window_ms, 1) AS window_ms_per_flow,
       round(baseline_ms, 1) AS baseline_ms_per_flow
FROM compared
WHERE window_ms - baseline_ms >= 20 AND window_ms >= 1.5 * baseline_ms
ORDER BY window_ms - baseline_ms DESC, service_name, name
LIMIT 10
