-- The identity of each record of the registered Arrow table `incoming_logs`, in its order:
-- a hash of every field as decoded (body and attributes as the decoders' JSON text, ~0.1 µs a
-- record, where hashing them as stored VARIANT doubled the insert's time). The same record
-- sent again decodes to the same text, so to the same key. DuckDB's hash() may change between
-- DuckDB versions; a re-send across such an upgrade would then be stored again.
SELECT hash("timestamp", observed_timestamp, trace_id, span_id, trace_flags,
            severity_number, severity_text, body, attributes,
            resource_id, scope_name, scope_version, event_name, dropped_attributes_count) AS record_key
FROM incoming_logs;
