-- The logs of the batches after $after through $through, as the lake's log_rows holds them
-- (the same conversions as span_rows.sql).
SELECT make_timestamp(epoch_us("timestamp")) AS "timestamp",
       make_timestamp(epoch_us(observed_timestamp)) AS observed_timestamp,
       trace_id, span_id, trace_flags::BIGINT AS trace_flags, severity_number, severity_text,
       body::JSON::VARCHAR AS body, attributes::JSON::VARCHAR AS attributes, service_name,
       resource_id::DECIMAL(20, 0) AS resource_id, scope_name, scope_version, event_name,
       dropped_attributes_count::BIGINT AS dropped_attributes_count,
       batch_id::BIGINT AS batch_id, $collector_id AS collector_id
FROM log_rows
WHERE batch_id > $after AND batch_id <= $through;
