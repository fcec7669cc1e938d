-- Flows per flow type, for the flows that ended in [$start_ns, $end_ns): per duration bucket
-- (as in spans.sql) the count, the seconds, the failed flows, and the slowest flow's root
-- trace as the bucket's exemplar.
WITH ended AS (
    SELECT coalesce(t.name, f.root_service || ' ' || f.root_name, '?') AS flow_type, f.failed,
           greatest(f.duration_ms, 0) / 1e3 AS seconds,
           split_part(f.root_span, ':', 1) AS trace_id
    FROM flow_rows AS f LEFT JOIN flow_type_rows AS t USING (type_id)
    WHERE f.end_time >= make_timestamp_ns($start_ns) AND f.end_time < make_timestamp_ns($end_ns)
), bucketed AS (
    SELECT *, len(list_filter($bounds::DOUBLE[], lambda b: b < seconds)) AS bucket FROM ended
)
SELECT 'flow' AS metric, MAP {'flow_type': flow_type} AS labels,
       bucket, count(*) AS n, sum(seconds) AS total, count(*) FILTER (failed) AS failed,
       arg_max(trace_id, seconds) AS exemplar_trace_id, max(seconds) AS exemplar_value
FROM bucketed
GROUP BY flow_type, bucket
