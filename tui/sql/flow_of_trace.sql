-- The flow a trace belongs to (every span of a trace is in its flow), and when it started.
SELECT flow_id, epoch_ns(flow_start) AS flow_start_ns FROM flow_traces WHERE trace_id = $trace_id LIMIT 1
