-- Recovery: the first time bucket after the window whose flows fail no more than the
-- baseline's (+5 points) and whose p95 is back within 1.5x the baseline's p95 (+20 ms).
WITH picked AS (
    SELECT * FROM flows
    WHERE start_time >= least($base_start, $end)::TIMESTAMP_NS
      AND ($type_ids::VARCHAR[] IS NULL OR list_contains($type_ids::VARCHAR[], type_id))
      AND ($flow_id::VARCHAR IS NULL OR flow_id = $flow_id::VARCHAR)
), usual AS (
    SELECT avg((status = 'failed')::INT) AS error_rate, quantile_cont(duration_ms, 0.95) AS p95_ms
    FROM picked
    WHERE start_time >= $base_start::TIMESTAMP_NS AND start_time < $base_end::TIMESTAMP_NS
), after AS (
    SELECT $origin_ns + (epoch_ns(start_time) - $origin_ns) // $bucket_ns * $bucket_ns AS bucket_ns,
           avg((status = 'failed')::INT) AS error_rate, quantile_cont(duration_ms, 0.95) AS p95_ms
    FROM picked
    WHERE start_time >= $end::TIMESTAMP_NS
    GROUP BY ALL
)
SELECT min(a.bucket_ns) AS recovered_ns
FROM after AS a CROSS JOIN usual AS u
WHERE a.error_rate <= u.error_rate + 0.05
  AND a.p95_ms <= greatest(1.5 * u.p95_ms, u.p95_ms + 20)
