-- `tracekit flows`: the newest flows started from $since_ns on, optionally of a type (its
-- id, its name or part of it), failed only, or of one status.
SELECT flow_id, start_time AS start, round(duration_ms, 1) AS duration_ms, style, status,
       type_name AS type, business_key AS key, traces, spans, errors
FROM flows
WHERE start_time >= make_timestamp_ns($since_ns)
  AND ($type::VARCHAR IS NULL OR type_id = $type OR contains(coalesce(type_name, ''), $type))
  AND (NOT $failed OR failed)
  AND ($status::VARCHAR IS NULL OR status = $status)
ORDER BY start_time DESC, flow_id
LIMIT $limit
