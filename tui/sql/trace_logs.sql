-- The logs of one trace, oldest first (the detail view marks those of its span).
SELECT epoch_ns("timestamp") AS ts_ns, span_id, service_name, severity_text, severity_number,
       CASE WHEN variant_typeof(body) = 'VARCHAR' THEN body::VARCHAR ELSE to_json(body)::VARCHAR END AS body
FROM logs
WHERE trace_id = $trace_id
ORDER BY "timestamp"
LIMIT $limit
