-- The flow a trace belongs to (every span of a trace is in its flow).
SELECT flow_id FROM flow_traces WHERE trace_id = $trace_id LIMIT 1
