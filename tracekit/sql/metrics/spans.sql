-- Span RED per service, span name, kind and status code, for the spans started in
-- [$start_ns, $end_ns): per duration bucket (bucket i holds durations up to $bounds[i+1]
-- seconds, the last one the rest) the count, the seconds, the errors, and the slowest span's
-- trace as the bucket's exemplar. Reads `spans`: the store's view (`tracekit metrics`), or the
-- spans of exports the collector committed (tracekit/metrics/spans.py).
WITH observed AS (
    SELECT service_name, name, kind, status_code, trace_id,
           greatest(duration_ns, 0) / 1e9 AS seconds
    FROM spans
    WHERE start_time >= make_timestamp_ns($start_ns) AND start_time < make_timestamp_ns($end_ns)
), bucketed AS (
    SELECT *, len(list_filter($bounds::DOUBLE[], lambda b: b < seconds)) AS bucket FROM observed
)
SELECT 'span' AS metric,
       MAP {'service': service_name, 'span_name': name, 'span_kind': 'SPAN_KIND_' || kind,
            'status_code': 'STATUS_CODE_' || status_code} AS labels,
       bucket, count(*) AS n, sum(seconds) AS total,
       count(*) FILTER (status_code = 'ERROR') AS failed,
       arg_max(trace_id, seconds) AS exemplar_trace_id, max(seconds) AS exemplar_value
FROM bucketed
GROUP BY service_name, name, kind, status_code, bucket
