-- The flows started in [$start_ns, $end_ns), of type $type_id (NULL: any), failed only if
-- $failed, with how many match in all. Filled in by tui/window_data.py: the search
-- condition (none, flow_search.sql or error_search.sql) and the ORDER BY (from its fixed list).
SELECT flow_id, epoch_ns(start_time) AS start_ns, duration_ms, status, style,
       type_name AS type, business_key AS key, traces, spans, errors,
       count(*) OVER () AS total
FROM flows
WHERE start_time >= make_timestamp_ns($start_ns) AND start_time < make_timestamp_ns($end_ns)
  AND ($type_id::VARCHAR IS NULL OR type_id = $type_id)
  AND (NOT $failed OR failed)
  {search}
ORDER BY {order}
LIMIT $limit
