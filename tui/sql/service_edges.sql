-- The service graph of the flows started in [$start_ns, $end_ns) (the store's
-- service_edges_between macro, which `service_edges` is over every flow).
SELECT src_service, dst_service, kind, calls, errors, error_rate, p50_ms, p95_ms, p99_ms
FROM service_edges_between($start_ns, $end_ns)
ORDER BY src_service, kind, dst_service
