-- Exceptions recorded on the spans of the window's flows (`exception` span events), by
-- service, operation, type and message pattern (digits and ids masked as <*>), with an example.
WITH picked AS (
    SELECT flow_id FROM flows
    WHERE start_time >= $start::TIMESTAMP_NS AND start_time < $end::TIMESTAMP_NS
      AND ($type_ids::VARCHAR[] IS NULL OR list_contains($type_ids::VARCHAR[], type_id))
      AND ($flow_id::VARCHAR IS NULL OR flow_id = $flow_id::VARCHAR)
), raised AS (
    SELECT fs.flow_id, s.service_name, s.name,
           coalesce(e.attributes['exception.type']::VARCHAR, '?') AS type,
           coalesce(e.attributes['exception.message']::VARCHAR, '') AS message
    FROM spans AS s CROSS JOIN unnest(s.events) AS t(e)
    JOIN flow_spans AS fs ON fs.trace_id = s.trace_id AND fs.span_id = s.span_id
    JOIN picked ON picked.flow_id = fs.flow_id
    WHERE e.name = 'exception'
)
SELECT service_name, name, type,
       regexp_replace(message, '[A-Za-z0-9_.:/-]*[0-9][A-Za-z0-9_.:/-]*', '<*>', 'g') AS pattern,
       count(*) AS count, count(DISTINCT flow_id) AS flows,
       min(message) AS example, min(flow_id) AS example_flow
FROM raised
GROUP BY ALL
ORDER BY count DESC, service_name, name, type, pattern
LIMIT 12
