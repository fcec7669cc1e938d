-- The spans of the batches after $after through $through, as the lake's span_rows holds
-- them (tracekit/lake/tables.py): Iceberg v2 has no nanosecond timestamps, no unsigned
-- integers and no VARIANT, so times are cut to the microsecond (duration_ns stays exact),
-- UBIGINT as DECIMAL(20, 0), UINTEGER as BIGINT and attribute maps as JSON text.
SELECT trace_id, span_id, parent_span_id, trace_state, name, kind,
       make_timestamp(epoch_us(start_time)) AS start_time,
       make_timestamp(epoch_us(end_time)) AS end_time, duration_ns,
       status_code, status_message, service_name,
       resource_id::DECIMAL(20, 0) AS resource_id, scope_name, scope_version,
       attributes::JSON::VARCHAR AS attributes,
       list_transform(events, lambda e: struct_pack(
           "time" := make_timestamp(epoch_us(e."time")), name := e.name,
           attributes := e.attributes::JSON::VARCHAR,
           dropped_attributes_count := e.dropped_attributes_count::BIGINT)) AS events,
       list_transform(links, lambda l: struct_pack(
           trace_id := l.trace_id, span_id := l.span_id, trace_state := l.trace_state,
           attributes := l.attributes::JSON::VARCHAR, flags := l.flags::BIGINT,
           dropped_attributes_count := l.dropped_attributes_count::BIGINT)) AS links,
       flags::BIGINT AS flags, dropped_attributes_count::BIGINT AS dropped_attributes_count,
       dropped_events_count::BIGINT AS dropped_events_count,
       dropped_links_count::BIGINT AS dropped_links_count, ingest_notes,
       batch_id::BIGINT AS batch_id, $collector_id AS collector_id
FROM span_rows
WHERE batch_id > $after AND batch_id <= $through;
