-- `tracekit check` edges and baselines: per workflow (root service and operation) of the flows
-- started in [$start_ns, $end_ns) (of the types $type_ids, NULL: every type), the service edges
-- its flows took, as `service_edges` draws them: synchronous calls between services, and hops
-- into and out of broker nodes ('broker:<destination>'); with how many flows took each and one.
WITH picked AS (
    SELECT flow_id, root_service, root_name FROM flow_rows
    WHERE start_time >= make_timestamp_ns($start_ns) AND start_time < make_timestamp_ns($end_ns)
      AND ($type_ids::VARCHAR[] IS NULL OR list_contains($type_ids::VARCHAR[], type_id))
), edges AS (
    SELECT e.*, p.root_service, p.root_name
    FROM flow_edges AS e JOIN picked AS p USING (flow_id)
    WHERE e.flow_start >= make_timestamp_ns($start_ns) AND e.flow_start < make_timestamp_ns($end_ns)
), hops AS (
    SELECT root_service, root_name, flow_id, src_service AS src, dst_service AS dst
    FROM edges WHERE kind = 'call' AND src_service IS DISTINCT FROM dst_service
    UNION ALL
    SELECT root_service, root_name, flow_id, src_service, 'broker:' || coalesce(destination, '?')
    FROM edges WHERE kind <> 'call'
    UNION ALL
    SELECT root_service, root_name, flow_id, 'broker:' || coalesce(destination, '?'), dst_service
    FROM edges WHERE kind <> 'call'
)
SELECT coalesce(root_service, '?') AS root_service, coalesce(root_name, '?') AS root_name,
       coalesce(src, '?') AS src, coalesce(dst, '?') AS dst,
       count(DISTINCT flow_id) AS flows, min(flow_id) AS example_flow
FROM hops GROUP BY ALL ORDER BY ALL
