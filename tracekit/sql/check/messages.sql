-- `tracekit check` on broker waits: every message (and message-id correlation) edge of the
-- flows started in [$start_ns, $end_ns) (of the types $type_ids, NULL: every type) with a
-- measured wait, optionally of one destination, producer or consumer service; the waits'
-- percentiles, and the longest past $slow_ms.
WITH picked AS (
    SELECT flow_id FROM flow_rows
    WHERE start_time >= make_timestamp_ns($start_ns) AND start_time < make_timestamp_ns($end_ns)
      AND ($type_ids::VARCHAR[] IS NULL OR list_contains($type_ids::VARCHAR[], type_id))
), waits AS (
    SELECT e.flow_id, e.destination, e.src_service, e.dst_service, e.wait_ms
    FROM flow_edges AS e JOIN picked USING (flow_id)
    WHERE e.kind <> 'call' AND e.wait_ms IS NOT NULL
      AND e.flow_start >= make_timestamp_ns($start_ns) AND e.flow_start < make_timestamp_ns($end_ns)
      AND ($destination::VARCHAR IS NULL OR e.destination = $destination)
      AND ($producer::VARCHAR IS NULL OR e.src_service = $producer)
      AND ($consumer::VARCHAR IS NULL OR e.dst_service = $consumer)
)
SELECT count(*) AS selected,
       quantile_cont(wait_ms, 0.5) AS p50, quantile_cont(wait_ms, 0.9) AS p90,
       quantile_cont(wait_ms, 0.95) AS p95, quantile_cont(wait_ms, 0.99) AS p99,
       max(wait_ms) AS max,
       max_by(struct_pack(flow_id, destination, src_service, dst_service, wait_ms), wait_ms,
              $offenders) FILTER (wait_ms > $slow_ms) AS slow_messages
FROM waits
