-- Per time bucket of the flows' start: flows, failed flows, error rate and p95 duration.
WITH picked AS (
    SELECT * FROM flows
    WHERE start_time >= $from::TIMESTAMP_NS AND start_time < $to::TIMESTAMP_NS
      AND ($type_ids::VARCHAR[] IS NULL OR list_contains($type_ids::VARCHAR[], type_id))
      AND ($flow_id::VARCHAR IS NULL OR flow_id = $flow_id::VARCHAR)
)
SELECT $origin_ns + (epoch_ns(start_time) - $origin_ns) // $bucket_ns * $bucket_ns AS bucket_ns,
       count(*) AS flows,
       count(*) FILTER (status = 'failed') AS failed,
       round(avg((status = 'failed')::INT), 4) AS error_rate,
       round(quantile_cont(duration_ms, 0.95), 1) AS p95_ms
FROM picked
GROUP BY ALL
ORDER BY bucket_ns
