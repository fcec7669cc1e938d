-- One operation in the window's flows against the baseline's: its spans and failing spans,
-- the error logs (SeverityNumber >= 17) written inside its spans, and its time on the flows'
-- critical paths per flow (broker waits count for the consumer).
WITH picked AS (
    SELECT flow_id, part FROM report_flows($start, $end, $base_start, $base_end, $type_ids, $flow_id)
), counted AS (
    SELECT part, count(*) AS flows FROM picked WHERE part IS NOT NULL GROUP BY part
), spans_of AS (
    SELECT p.part, s.trace_id, s.span_id, s.error
    FROM flow_spans AS s JOIN picked AS p USING (flow_id)
    WHERE p.part IS NOT NULL AND s.service_name = $service AND s.name = $operation
      AND s.start_time >= least($start, $base_start)::TIMESTAMP_NS
), logged AS (
    SELECT o.part, count(*) AS error_logs
    FROM logs AS l JOIN spans_of AS o USING (trace_id, span_id)
    WHERE l.severity_number >= 17 AND l.service_name = $service
      AND l."timestamp" >= least($start, $base_start)::TIMESTAMP_NS
    GROUP BY o.part
), counts_of AS (
    SELECT part, count(*) AS spans, count(*) FILTER (error) AS errors FROM spans_of GROUP BY part
), path_of AS (
    SELECT p.part, sum(c.duration_ms) AS path_ms
    FROM critical_path AS c JOIN picked AS p USING (flow_id)
    WHERE p.part IS NOT NULL AND c.service_name = $service AND c.name = $operation
      AND c.start_time >= least($start, $base_start)::TIMESTAMP_NS
    GROUP BY p.part
), parts AS (
    SELECT * FROM counted LEFT JOIN counts_of USING (part) LEFT JOIN path_of USING (part)
                          LEFT JOIN logged USING (part)
)
SELECT coalesce(max(flows) FILTER (part = 'window'), 0) AS window_flows,
       coalesce(max(spans) FILTER (part = 'window'), 0) AS window_spans,
       coalesce(max(errors) FILTER (part = 'window'), 0) AS window_errors,
       round(coalesce(max(path_ms / flows) FILTER (part = 'window'), 0), 1) AS window_path_ms,
       coalesce(max(error_logs) FILTER (part = 'window'), 0) AS window_error_logs,
       coalesce(max(flows) FILTER (part = 'baseline'), 0) AS baseline_flows,
       coalesce(max(spans) FILTER (part = 'baseline'), 0) AS baseline_spans,
       coalesce(max(errors) FILTER (part = 'baseline'), 0) AS baseline_errors,
       round(coalesce(max(path_ms / flows) FILTER (part = 'baseline'), 0), 1) AS baseline_path_ms,
       coalesce(max(error_logs) FILTER (part = 'baseline'), 0) AS baseline_error_logs
FROM parts
