-- Append the registered Arrow table `incoming_spans`: spans of this batch, each once, none of
-- them stored yet (stored_spans.sql found those a client re-sent, and they were taken out).
INSERT INTO span_rows
SELECT i.trace_id, i.span_id, i.parent_span_id, i.trace_state, i.name, i.kind,
       i.start_time, i.end_time, i.duration_ns, i.status_code, i.status_message,
       i.service_name, i.resource_id, i.scope_name, i.scope_version,
       i.attributes::JSON,
       coalesce(i.events::STRUCT("time" TIMESTAMP_NS, name VARCHAR, attributes JSON,
                                 dropped_attributes_count UINTEGER)[], []),
       coalesce(i.links::STRUCT(trace_id VARCHAR, span_id VARCHAR, trace_state VARCHAR,
                                attributes JSON, flags UINTEGER,
                                dropped_attributes_count UINTEGER)[], []),
       i.flags, i.dropped_attributes_count, i.dropped_events_count, i.dropped_links_count,
       i.ingest_notes,
       $batch_id
FROM incoming_spans AS i;
