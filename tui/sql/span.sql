-- One span with everything the detail view shows; nested values as JSON text.
SELECT trace_id, span_id, parent_span_id, name, kind, service_name, status_code, status_message,
       epoch_ns(start_time) AS start_ns, epoch_ns(end_time) AS end_ns, duration_ns,
       scope_name, scope_version,
       to_json(attributes)::VARCHAR AS attributes,
       to_json(resource_attributes)::VARCHAR AS resource,
       to_json(events)::VARCHAR AS events,
       to_json(links)::VARCHAR AS links
FROM spans
WHERE trace_id = $trace_id AND span_id = $span_id
LIMIT 1
