-- Per workflow (root operation) and time bucket: flows, flows with errors (failed or
-- degraded), incomplete flows (not those still running), and the median duration of the flows
-- that did not fail (steadier than a p95 over a few flows; fast failures would hide a
-- slowdown). The incident window is found from these.
SELECT root_service, root_name,
       (epoch_ns(start_time) - $origin_ns) // $bucket_ns AS bucket,
       count(*) AS flows,
       count(*) FILTER (status IN ('failed', 'degraded')) AS errors,
       count(*) FILTER (status = 'incomplete') AS incomplete,
       quantile_cont(duration_ms, 0.5) FILTER (status <> 'failed') AS p50_ms,
       count(*) FILTER (status <> 'failed') AS timed
FROM flows
WHERE start_time >= $from::TIMESTAMP_NS AND start_time < $to::TIMESTAMP_NS
  AND ($type_ids::VARCHAR[] IS NULL OR list_contains($type_ids::VARCHAR[], type_id))
GROUP BY ALL
ORDER BY root_service, root_name, bucket
