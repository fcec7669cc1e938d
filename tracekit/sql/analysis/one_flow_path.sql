-- The critical path of one flow ($flow_id, started at $start_ns), in order.
SELECT service_name, name, segment, epoch_ns(start_time) AS start_ns, duration_ms
FROM critical_path
WHERE flow_id = $flow_id AND start_time >= make_timestamp_ns($start_ns)
ORDER BY seq
