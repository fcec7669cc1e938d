-- Within the window: the time bucket with the most failed flows, and the one with the
-- highest p95 flow duration (flows by their start).
WITH picked AS (
    SELECT * FROM flows
    WHERE start_time >= $start::TIMESTAMP_NS AND start_time < $end::TIMESTAMP_NS
      AND ($type_ids::VARCHAR[] IS NULL OR list_contains($type_ids::VARCHAR[], type_id))
      AND ($flow_id::VARCHAR IS NULL OR flow_id = $flow_id::VARCHAR)
), buckets AS (
    SELECT $origin_ns + (epoch_ns(start_time) - $origin_ns) // $bucket_ns * $bucket_ns AS bucket_ns,
           count(*) AS flows, count(*) FILTER (status = 'failed') AS failed,
           round(quantile_cont(duration_ms, 0.95), 1) AS p95_ms
    FROM picked GROUP BY ALL
), errors AS (
    SELECT bucket_ns, failed, flows FROM buckets ORDER BY failed DESC, bucket_ns LIMIT 1
), latency AS (
    SELECT bucket_ns, p95_ms FROM buckets ORDER BY p95_ms DESC, bucket_ns LIMIT 1
)
SELECT errors.bucket_ns AS error_peak_ns, errors.failed AS error_peak_failed,
       errors.flows AS error_peak_flows,
       latency.bucket_ns AS latency_peak_ns, latency.p95_ms AS latency_peak_p95_ms
FROM errors CROSS JOIN latency
