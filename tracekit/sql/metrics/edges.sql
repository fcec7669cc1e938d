-- The edges of the flows that ended in [$start_ns, $end_ns), as histograms (buckets as in
-- spans.sql, exemplar: the receiving span's trace):
--   broker_wait      per destination and consumer: consumer start - producer end
--   graph_server     per client, server and connection type (Tempo's service graph): the
--                    receiving span's duration, failed when it failed; calls between
--                    services, and messages ('messaging_system') from producer to consumer
--   graph_messaging  per client and server, messages only: the broker wait
WITH ended AS (
    SELECT flow_id, start_time FROM flow_rows
    WHERE end_time >= make_timestamp_ns($start_ns) AND end_time < make_timestamp_ns($end_ns)
), edges AS (
    -- flow_start bounds the read to the row groups of these flows' starts
    SELECT e.* FROM flow_edges AS e SEMI JOIN ended USING (flow_id)
    WHERE e.flow_start >= (SELECT min(start_time) FROM ended)
      AND e.flow_start <= (SELECT max(start_time) FROM ended)
), observed AS (
    SELECT 'broker_wait' AS metric, coalesce(destination, '?') AS a, dst_service AS b, NULL AS c,
           greatest(wait_ms, 0) / 1e3 AS seconds, coalesce(dst_error, false) AS failed,
           dst_trace_id AS trace_id
    FROM edges WHERE kind <> 'call' AND wait_ms IS NOT NULL
    UNION ALL
    SELECT 'graph_server', src_service, dst_service,
           CASE WHEN kind = 'call' THEN '' ELSE 'messaging_system' END,
           greatest(dst_ms, 0) / 1e3, coalesce(dst_error, false), dst_trace_id
    FROM edges
    WHERE dst_ms IS NOT NULL AND src_service IS NOT NULL AND dst_service IS NOT NULL
      AND (kind <> 'call' OR src_service <> dst_service)
    UNION ALL
    SELECT 'graph_messaging', src_service, dst_service, 'messaging_system',
           greatest(wait_ms, 0) / 1e3, coalesce(dst_error, false), dst_trace_id
    FROM edges
    WHERE kind <> 'call' AND wait_ms IS NOT NULL AND src_service IS NOT NULL
      AND dst_service IS NOT NULL
), bucketed AS (
    SELECT *, len(list_filter($bounds::DOUBLE[], lambda x: x < seconds)) AS bucket FROM observed
)
SELECT metric,
       CASE WHEN metric = 'broker_wait' THEN MAP {'destination': a, 'consumer': b}
            ELSE MAP {'client': a, 'server': b, 'connection_type': c} END AS labels,
       bucket, count(*) AS n, sum(seconds) AS total, count(*) FILTER (failed) AS failed,
       arg_max(trace_id, seconds) AS exemplar_trace_id, max(seconds) AS exemplar_value
FROM bucketed
GROUP BY metric, a, b, c, bucket
