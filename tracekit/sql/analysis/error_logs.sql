-- Error logs (the OTel log data model's SeverityNumber >= 17: ERROR and FATAL) written in
-- [$from_ns, $to_ns) inside a span: evidence that the span failed, where instrumentation
-- records no span status (code that logs the exception and answers anyway). One row per span:
-- how many it wrote and the first message.
SELECT trace_id || ':' || span_id AS key, count(*) AS logs,
       arg_min(body::VARCHAR, coalesce("timestamp", observed_timestamp)) AS message
FROM logs
WHERE severity_number >= 17 AND trace_id IS NOT NULL AND span_id IS NOT NULL
  AND (("timestamp" >= make_timestamp_ns($from_ns) AND "timestamp" < make_timestamp_ns($to_ns))
       OR ("timestamp" IS NULL AND observed_timestamp >= make_timestamp_ns($from_ns)
           AND observed_timestamp < make_timestamp_ns($to_ns)))
GROUP BY key
