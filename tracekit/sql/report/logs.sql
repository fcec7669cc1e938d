-- Warning and error logs of the window's flows (joined by trace id), and those without trace
-- context written during the window, grouped by message pattern (digits and ids masked as <*>).
WITH picked AS (
    SELECT flow_id FROM flows
    WHERE start_time >= $start::TIMESTAMP_NS AND start_time < $end::TIMESTAMP_NS
      AND ($type_ids::VARCHAR[] IS NULL OR list_contains($type_ids::VARCHAR[], type_id))
      AND ($flow_id::VARCHAR IS NULL OR flow_id = $flow_id::VARCHAR)
), traces AS (
    SELECT DISTINCT trace_id FROM flow_spans JOIN picked USING (flow_id)
    WHERE flow_spans.start_time >= $start::TIMESTAMP_NS
), matched AS (
    -- A flow's spans, and so their logs, come after the flow's start: the rest is not read.
    SELECT l.service_name, l.severity_number, coalesce(l.severity_text, '') AS severity,
           l.body::VARCHAR AS message
    FROM logs AS l
    WHERE l.severity_number >= 13 AND l."timestamp" >= $start::TIMESTAMP_NS
      AND (l.trace_id IN (SELECT trace_id FROM traces)
           OR ($flow_id::VARCHAR IS NULL AND l.trace_id IS NULL
               AND l."timestamp" < $end::TIMESTAMP_NS))
)
SELECT regexp_replace(message, '[A-Za-z0-9_.:/-]*[0-9][A-Za-z0-9_.:/-]*', '<*>', 'g') AS pattern,
       max(severity) AS severity, count(*) AS count,
       list(DISTINCT service_name ORDER BY service_name) AS services, min(message) AS example
FROM matched
GROUP BY pattern
ORDER BY count DESC, pattern
LIMIT 10
