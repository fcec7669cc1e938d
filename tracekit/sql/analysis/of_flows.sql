AND s.trace_id IN (SELECT trace_id FROM flow_traces
                   WHERE flow_id IN (SELECT unnest($flow_ids::VARCHAR[]))
                     AND flow_start >= make_timestamp_ns($from_ns)
                     AND flow_start <= make_timestamp_ns($to_ns))
AND s.start_time >= make_timestamp_ns($from_ns) AND s.start_time <= make_timestamp_ns($to_ns)
