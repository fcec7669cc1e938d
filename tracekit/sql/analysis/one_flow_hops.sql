-- The hops through a broker of one flow ($flow_id, started at $start_ns), in the order their
-- messages were sent.
SELECT e.kind, e.via, e.src_service, e.src_name, e.dst_service, e.dst_name, e.destination, e.wait_ms
FROM flow_edges AS e
LEFT JOIN flow_spans AS s
       ON s.flow_id = e.flow_id AND s.trace_id = e.src_trace_id AND s.span_id = e.src_span_id
      AND s.start_time >= make_timestamp_ns($start_ns)
WHERE e.flow_id = $flow_id AND e.flow_start = make_timestamp_ns($start_ns) AND e.kind <> 'call'
ORDER BY s.start_time, e.src_trace_id, e.src_span_id, e.dst_trace_id, e.dst_span_id, e.kind, e.via
