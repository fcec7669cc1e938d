-- Append the registered Arrow table `incoming_logs`.
INSERT INTO log_rows
SELECT "timestamp", observed_timestamp, trace_id, span_id, trace_flags,
       severity_number, severity_text,
       body::JSON, attributes::JSON,
       service_name, resource_id, scope_name, scope_version, event_name,
       dropped_attributes_count,
       $batch_id
FROM incoming_logs;
