-- `tracekit check` on flows: the flows started in [$start_ns, $end_ns) of the types $type_ids
-- (NULL: every type), with their status as of now. How many have a status outside $statuses,
-- their durations' percentiles, and the first failures and the slowest flows past $slow_ms.
WITH picked AS (
    SELECT flow_id, status, duration_ms, start_time FROM flows
    WHERE start_time >= make_timestamp_ns($start_ns) AND start_time < make_timestamp_ns($end_ns)
      AND ($type_ids::VARCHAR[] IS NULL OR list_contains($type_ids::VARCHAR[], type_id))
)
SELECT count(*) AS selected,
       count(*) FILTER (NOT list_contains($statuses::VARCHAR[], status)) AS failures,
       histogram(status) FILTER (NOT list_contains($statuses::VARCHAR[], status)) AS failure_statuses,
       quantile_cont(duration_ms, 0.5) AS p50, quantile_cont(duration_ms, 0.9) AS p90,
       quantile_cont(duration_ms, 0.95) AS p95, quantile_cont(duration_ms, 0.99) AS p99,
       max(duration_ms) AS max,
       min_by(struct_pack(flow_id, status), start_time, $offenders)
           FILTER (NOT list_contains($statuses::VARCHAR[], status)) AS failed_flows,
       max_by(struct_pack(flow_id, duration_ms), duration_ms, $offenders)
           FILTER (duration_ms > $slow_ms) AS slow_flows
FROM picked
