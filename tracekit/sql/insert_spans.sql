-- Append the registered Arrow table `incoming_spans`, skipping spans already stored.
-- A re-sent span has the same trace id, span id and start time, so the anti-join only
-- reads row groups whose start_time range overlaps the batch (zone maps prune the rest).
INSERT INTO spans
SELECT i.trace_id, i.span_id, i.parent_span_id, i.trace_state, i.name, i.kind,
       i.start_time, i.end_time, i.duration_ns, i.status_code, i.status_message,
       i.service_name,
       r.attributes,
       i.scope_name, i.scope_version,
       i.attributes::JSON::VARIANT,
       CASE WHEN i.events IS NULL THEN [] ELSE list_transform(
           from_json(i.events, '[{"time":"BIGINT","name":"VARCHAR","attributes":"JSON","dropped_attributes_count":"UINTEGER"}]'),
           lambda e: {'time': make_timestamp_ns(e."time"), 'name': e.name,
                      'attributes': e.attributes::VARIANT,
                      'dropped_attributes_count': e.dropped_attributes_count}) END,
       CASE WHEN i.links IS NULL THEN [] ELSE list_transform(
           from_json(i.links, '[{"trace_id":"VARCHAR","span_id":"VARCHAR","trace_state":"VARCHAR","attributes":"JSON","flags":"UINTEGER","dropped_attributes_count":"UINTEGER"}]'),
           lambda l: {'trace_id': l.trace_id, 'span_id': l.span_id, 'trace_state': l.trace_state,
                      'attributes': l.attributes::VARIANT, 'flags': l.flags,
                      'dropped_attributes_count': l.dropped_attributes_count}) END,
       i.flags, i.dropped_attributes_count, i.dropped_events_count, i.dropped_links_count,
       i.ingest_notes,
       $batch_id
FROM (SELECT DISTINCT ON (trace_id, span_id) * FROM incoming_spans) AS i
-- A batch holds few distinct resources: convert each once, not once per span.
JOIN (SELECT json_text, json_text::JSON::VARIANT AS attributes
      FROM (SELECT DISTINCT resource_attributes AS json_text FROM incoming_spans)) AS r
  ON r.json_text = i.resource_attributes
WHERE NOT EXISTS (
    SELECT 1 FROM spans AS s
    WHERE s.start_time BETWEEN (SELECT min(start_time) FROM incoming_spans)
                           AND (SELECT max(start_time) FROM incoming_spans)
      AND s.start_time = i.start_time
      AND s.trace_id = i.trace_id
      AND s.span_id = i.span_id
);
