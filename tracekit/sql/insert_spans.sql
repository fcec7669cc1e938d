-- Append the registered Arrow table `incoming_spans` (ids already unique within it),
-- skipping spans already stored. A re-sent span has the same trace id, span id and start
-- time, so the anti-join reads only row groups whose start_time range overlaps the batch
-- ($first_start .. $last_start; zone maps prune the rest). Kept free of lambdas and
-- subqueries: binding this statement is paid on every commit.
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
FROM incoming_spans AS i
ANTI JOIN (SELECT trace_id, span_id, start_time FROM span_rows
           WHERE start_time BETWEEN make_timestamp_ns($first_start)
                                AND make_timestamp_ns($last_start)) AS stored
  USING (trace_id, span_id, start_time);
