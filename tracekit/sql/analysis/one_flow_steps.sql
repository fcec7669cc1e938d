-- The spans of one flow ($flow_id, started at $start_ns) in time order, each with the edge
-- that reached it (a hop through a broker before a call: it is what the steps list shows)
-- and the error logs written inside it (SeverityNumber >= 17) from the flow's start to
-- $logs_to_ns (its end and a little after: exporters stamp logs late).
WITH steps AS (
    SELECT * FROM flow_spans
    WHERE flow_id = $flow_id AND start_time >= make_timestamp_ns($start_ns)
), incoming AS (
    SELECT dst_trace_id AS trace_id, dst_span_id AS span_id,
           arg_min(kind, (kind = 'call', kind, via)) AS edge,
           arg_min(via, (kind = 'call', kind, via)) AS via
    FROM flow_edges
    WHERE flow_id = $flow_id AND flow_start = make_timestamp_ns($start_ns)
    GROUP BY ALL
), error_logs AS (
    SELECT l.trace_id, l.span_id, count(*) AS logs
    FROM logs AS l SEMI JOIN steps AS s ON l.trace_id = s.trace_id AND l.span_id = s.span_id
    WHERE l.severity_number >= 17
      AND ((l."timestamp" >= make_timestamp_ns($start_ns) AND l."timestamp" < make_timestamp_ns($logs_to_ns))
           OR (l."timestamp" IS NULL AND l.observed_timestamp >= make_timestamp_ns($start_ns)
               AND l.observed_timestamp < make_timestamp_ns($logs_to_ns)))
    GROUP BY ALL
)
SELECT s.trace_id, s.span_id, s.service_name, s.name, s.kind, epoch_ns(s.start_time) AS start_ns,
       epoch_ns(s.end_time) AS end_ns, s.self_ms, s.error, s.skew_note, i.edge, i.via,
       coalesce(e.logs, 0) AS error_logs
FROM steps AS s
LEFT JOIN incoming AS i USING (trace_id, span_id)
LEFT JOIN error_logs AS e USING (trace_id, span_id)
ORDER BY s.start_time, s.trace_id, s.span_id
