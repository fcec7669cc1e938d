-- Exceptions recorded on the spans of the window's flows (`exception` span events), by
-- service, operation, type and message pattern (digits and ids masked as <*>), with an example.
-- A flow's spans start after it does, so only the store from the window's start on is read.
WITH picked AS MATERIALIZED (
    SELECT flow_id FROM flows
    WHERE start_time >= $start::TIMESTAMP_NS AND start_time < $end::TIMESTAMP_NS
      AND ($type_ids::VARCHAR[] IS NULL OR list_contains($type_ids::VARCHAR[], type_id))
      AND ($flow_id::VARCHAR IS NULL OR flow_id = $flow_id::VARCHAR)
), in_flows AS MATERIALIZED (
    SELECT fs.trace_id, fs.span_id, fs.flow_id
    FROM flow_spans AS fs JOIN picked USING (flow_id)
    WHERE fs.start_time >= $start::TIMESTAMP_NS
), recent AS MATERIALIZED (
    -- Filtered on its own: under the unnest below DuckDB would read every row group.
    SELECT trace_id, span_id, service_name, name, events FROM span_rows
    WHERE start_time >= $start::TIMESTAMP_NS AND len(events) > 0
), events AS MATERIALIZED (
    SELECT s.trace_id, s.span_id, s.service_name, s.name,
           coalesce(e.attributes['exception.type']::VARCHAR, '?') AS type,
           coalesce(e.attributes['exception.message']::VARCHAR, '') AS message
    FROM recent AS s CROSS JOIN unnest(s.events) AS t(e)
    WHERE e.name = 'exception'
), raised AS (
    SELECT in_flows.flow_id, events.service_name, events.name, events.type, events.message
    FROM events JOIN in_flows USING (trace_id, span_id)
)
SELECT service_name, name, type,
       regexp_replace(message, '[A-Za-z0-9_.:/-]*[0-9][A-Za-z0-9_.:/-]*', '<*>', 'g') AS pattern,
       count(*) AS count, count(DISTINCT flow_id) AS flows,
       min(message) AS example, min(flow_id) AS example_flow
FROM raised
GROUP BY ALL
ORDER BY count DESC, service_name, name, type, pattern
LIMIT 12
