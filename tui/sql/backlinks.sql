-- Spans that carry a link to the given span (consumers pointing back at their producer): the
-- link edges out of it in its flow, as the analysis stitched them (a link always joins the two
-- spans' flows), found by the flow's id and start.
SELECT dst_trace_id AS trace_id, dst_span_id AS span_id, dst_service AS service_name,
       dst_name AS name
FROM flow_edges
WHERE flow_id = $flow_id AND flow_start = make_timestamp_ns($flow_start_ns) AND via = 'link'
  AND src_trace_id = $trace_id AND src_span_id = $span_id
LIMIT 50
