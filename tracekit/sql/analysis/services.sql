-- `tracekit services`: the service graph, rounded to $digits decimals (NULL: as stored).
SELECT src_service, dst_service, kind, calls, errors,
       CASE WHEN $digits::INT IS NULL THEN p50_ms ELSE round(p50_ms, $digits::INT) END AS p50_ms,
       CASE WHEN $digits::INT IS NULL THEN p95_ms ELSE round(p95_ms, $digits::INT) END AS p95_ms,
       CASE WHEN $digits::INT IS NULL THEN p99_ms ELSE round(p99_ms, $digits::INT) END AS p99_ms,
       CASE WHEN $digits::INT IS NULL THEN error_rate ELSE round(error_rate, 3) END AS error_rate
FROM service_edges
ORDER BY src_service, dst_service, kind
