-- `tracekit check`: the workflows (root service and operation) with flows started in
-- [$start_ns, $end_ns), whether or not they made any edge.
SELECT DISTINCT coalesce(root_service, '?') AS root_service, coalesce(root_name, '?') AS root_name
FROM flow_rows
WHERE start_time >= make_timestamp_ns($start_ns) AND start_time < make_timestamp_ns($end_ns)
  AND ($type_ids::VARCHAR[] IS NULL OR list_contains($type_ids::VARCHAR[], type_id))
ORDER BY ALL
