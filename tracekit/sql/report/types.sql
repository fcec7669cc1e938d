-- Flow types in the window against the baseline: flows, failed, slow (slower than the
-- workflow's baseline p95), error rate and p95; `affected` when the share of failed,
-- degraded, incomplete or slow flows grew by 10 points or more (and at least 2 such flows).
WITH picked AS (
    SELECT * FROM report_flows($start, $end, $base_start, $base_end, $type_ids, $flow_id)
), usual AS (
    SELECT root_service, root_name, quantile_cont(duration_ms, 0.95) AS p95_ms
    FROM picked WHERE part = 'baseline' AND status IN ('complete', 'degraded') GROUP BY ALL
), marked AS (
    SELECT p.*, (p.status IN ('complete', 'degraded') AND p.duration_ms > u.p95_ms) AS slow,
           (p.status IN ('failed', 'degraded', 'incomplete', 'running')
            OR (p.status IN ('complete', 'degraded') AND p.duration_ms > u.p95_ms)) AS impaired
    FROM picked AS p LEFT JOIN usual AS u USING (root_service, root_name)
    WHERE p.part IS NOT NULL
), per_type AS (
    SELECT type_id, any_value(type_name) AS name,
           count(*) FILTER (part = 'window') AS flows,
           count(*) FILTER (part = 'window' AND status = 'failed') AS failed,
           count(*) FILTER (part = 'window' AND slow) AS slow,
           count(*) FILTER (part = 'window' AND impaired) AS impaired,
           avg((status = 'failed')::INT) FILTER (part = 'window') AS error_rate,
           avg((status = 'failed')::INT) FILTER (part = 'baseline') AS baseline_error_rate,
           quantile_cont(duration_ms, 0.95) FILTER (part = 'window') AS p95_ms,
           quantile_cont(duration_ms, 0.95) FILTER (part = 'baseline') AS baseline_p95_ms,
           avg(impaired::INT) FILTER (part = 'window') AS impaired_share,
           coalesce(avg(impaired::INT) FILTER (part = 'baseline'), 0) AS baseline_impaired_share
    FROM marked GROUP BY type_id
)
SELECT type_id, name, flows, failed, slow, round(error_rate, 4) AS error_rate,
       round(baseline_error_rate, 4) AS baseline_error_rate, round(p95_ms, 1) AS p95_ms,
       round(baseline_p95_ms, 1) AS baseline_p95_ms,
       (impaired >= 2 AND impaired_share - baseline_impaired_share >= 0.10) AS affected
FROM per_type
WHERE flows > 0
ORDER BY affected DESC, impaired DESC, flows DESC, type_id
