-- Spans that carry a link to the given span (consumers pointing back at their producer).
SELECT s.trace_id, s.span_id, s.service_name, s.name
FROM spans AS s, unnest(s.links) AS t(l)
WHERE l.trace_id = $trace_id AND l.span_id = $span_id
LIMIT 50
