-- Append the registered Arrow table `incoming_logs`: records of this batch, each once, none of
-- them stored yet (resent_logs.py left out those a client re-sent), with their `record_key`.
INSERT INTO log_rows
SELECT "timestamp", observed_timestamp, trace_id, span_id, trace_flags,
       severity_number, severity_text,
       body::JSON, attributes::JSON,
       service_name, resource_id, scope_name, scope_version, event_name,
       dropped_attributes_count,
       $batch_id,
       record_key
FROM incoming_logs;
