-- Services and operations with failing spans in the window's flows.
WITH picked AS (
    SELECT flow_id FROM flows
    WHERE start_time >= $start::TIMESTAMP_NS AND start_time < $end::TIMESTAMP_NS
      AND ($type_ids::VARCHAR[] IS NULL OR list_contains($type_ids::VARCHAR[], type_id))
      AND ($flow_id::VARCHAR IS NULL OR flow_id = $flow_id::VARCHAR)
)
SELECT s.service_name, s.name, s.kind, count(*) AS error_spans, count(DISTINCT s.flow_id) AS flows
FROM flow_spans AS s JOIN picked USING (flow_id)
WHERE s.error
  AND s.start_time >= $start::TIMESTAMP_NS   -- a flow's spans start after it: the rest is not read
GROUP BY ALL
ORDER BY flows DESC, error_spans DESC, s.service_name, s.name
LIMIT 15
