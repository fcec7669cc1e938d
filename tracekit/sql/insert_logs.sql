-- Append the registered Arrow table `incoming_logs`.
INSERT INTO logs
SELECT "timestamp", observed_timestamp, trace_id, span_id, trace_flags,
       severity_number, severity_text,
       body::JSON::VARIANT,
       attributes::JSON::VARIANT,
       resource_attributes::JSON::VARIANT,
       service_name, scope_name, scope_version, event_name, dropped_attributes_count,
       $batch_id
FROM incoming_logs;
