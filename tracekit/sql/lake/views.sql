-- A reader's views over the lake, with the local store's names and types (001_initial.sql):
-- lake_span_rows, lake_log_rows and lake_resources are the Parquet files of each Iceberg
-- table's current snapshot (tracekit/lake/reader.py). Times come back at microsecond
-- precision; JSON text becomes VARIANT again. A resource two collectors both shipped is
-- one row.
CREATE VIEW resources AS
SELECT resource_id::UBIGINT AS resource_id, any_value(service_name) AS service_name,
       any_value(attributes)::JSON::VARIANT AS attributes, min(first_seen) AS first_seen
FROM lake_resources
GROUP BY resource_id;

CREATE VIEW span_rows AS
SELECT trace_id, span_id, parent_span_id, trace_state, name, kind,
       start_time::TIMESTAMP_NS AS start_time, end_time::TIMESTAMP_NS AS end_time, duration_ns,
       status_code, status_message, service_name, resource_id::UBIGINT AS resource_id,
       scope_name, scope_version, attributes::JSON::VARIANT AS attributes,
       list_transform(events, lambda e: struct_pack(
           "time" := e."time"::TIMESTAMP_NS, name := e.name,
           attributes := e.attributes::JSON::VARIANT,
           dropped_attributes_count := e.dropped_attributes_count::UINTEGER)) AS events,
       list_transform(links, lambda l: struct_pack(
           trace_id := l.trace_id, span_id := l.span_id, trace_state := l.trace_state,
           attributes := l.attributes::JSON::VARIANT, flags := l.flags::UINTEGER,
           dropped_attributes_count := l.dropped_attributes_count::UINTEGER)) AS links,
       flags::UINTEGER AS flags, dropped_attributes_count::UINTEGER AS dropped_attributes_count,
       dropped_events_count::UINTEGER AS dropped_events_count,
       dropped_links_count::UINTEGER AS dropped_links_count, ingest_notes,
       batch_id::UBIGINT AS batch_id, collector_id
FROM lake_span_rows;

CREATE VIEW log_rows AS
SELECT "timestamp"::TIMESTAMP_NS AS "timestamp", observed_timestamp::TIMESTAMP_NS AS observed_timestamp,
       trace_id, span_id, trace_flags::UINTEGER AS trace_flags, severity_number, severity_text,
       body::JSON::VARIANT AS body, attributes::JSON::VARIANT AS attributes, service_name,
       resource_id::UBIGINT AS resource_id, scope_name, scope_version, event_name,
       dropped_attributes_count::UINTEGER AS dropped_attributes_count,
       batch_id::UBIGINT AS batch_id, collector_id
FROM lake_log_rows;

-- As in 001_initial.sql (batch_id is the collector's own: collector_id in span_rows and
-- log_rows tells which).
CREATE VIEW spans AS
SELECT s.trace_id, s.span_id, s.parent_span_id, s.trace_state, s.name, s.kind,
       s.start_time, s.end_time, s.duration_ns, s.status_code, s.status_message,
       s.service_name, r.attributes AS resource_attributes, s.scope_name, s.scope_version,
       s.attributes, s.events, s.links, s.flags, s.dropped_attributes_count,
       s.dropped_events_count, s.dropped_links_count, s.ingest_notes, s.batch_id
FROM span_rows AS s LEFT JOIN resources AS r USING (resource_id);

CREATE VIEW logs AS
SELECT l."timestamp", l.observed_timestamp, l.trace_id, l.span_id, l.trace_flags,
       l.severity_number, l.severity_text, l.body, l.attributes,
       r.attributes AS resource_attributes, l.service_name, l.scope_name, l.scope_version,
       l.event_name, l.dropped_attributes_count, l.batch_id
FROM log_rows AS l LEFT JOIN resources AS r USING (resource_id);
