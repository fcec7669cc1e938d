-- One span of the exemplar flow with its attributes as stored (masked values stay masked).
SELECT service_name, name, kind, status_code, status_message,
       to_json(attributes)::VARCHAR AS attributes
FROM spans
WHERE trace_id = $trace_id AND span_id = $span_id
  AND start_time >= $from::TIMESTAMP_NS     -- its flow's start
