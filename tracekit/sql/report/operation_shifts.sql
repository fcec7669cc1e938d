-- Per operation and time bucket (by the span's start): how many spans it ran, and their
-- durations' median and 90th percentile, in the flows started in the range. A slower
-- operation shows here even when the flows' durations hide it among other work, or when it
-- slowed only a minority of calls (the tail); a span's duration does not depend on how many
-- times a flow calls it, as a flow's total in it would.
WITH picked AS (
    SELECT flow_id FROM flows
    WHERE start_time >= $from::TIMESTAMP_NS AND start_time < $to::TIMESTAMP_NS
      AND ($type_ids::VARCHAR[] IS NULL OR list_contains($type_ids::VARCHAR[], type_id))
)
SELECT s.service_name, s.name, (epoch_ns(s.start_time) - $origin_ns) // $bucket_ns AS bucket,
       count(*) AS spans,
       quantile_cont(epoch_ns(s.end_time) - epoch_ns(s.start_time), 0.5) / 1e6 AS p50_ms,
       quantile_cont(epoch_ns(s.end_time) - epoch_ns(s.start_time), 0.9) / 1e6 AS p90_ms
FROM flow_spans AS s JOIN picked USING (flow_id)
WHERE s.start_time >= $from::TIMESTAMP_NS AND s.start_time < $to::TIMESTAMP_NS
GROUP BY ALL
ORDER BY s.service_name, s.name, bucket
