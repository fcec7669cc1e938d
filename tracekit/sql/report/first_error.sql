-- When the window's flows first and last failed: the first failing span to end (an origin:
-- nothing below it failed after it), the last failing span's end.
WITH picked AS (
    SELECT flow_id FROM flows
    WHERE start_time >= $start::TIMESTAMP_NS AND start_time < $end::TIMESTAMP_NS
      AND ($type_ids::VARCHAR[] IS NULL OR list_contains($type_ids::VARCHAR[], type_id))
      AND ($flow_id::VARCHAR IS NULL OR flow_id = $flow_id::VARCHAR)
)
SELECT arg_min(s.service_name || ' ' || s.name, s.end_time) AS first_operation,
       min(s.end_time) AS first_error,
       max(s.end_time) AS last_error,
       count(DISTINCT s.flow_id) AS flows_with_errors
FROM flow_spans AS s JOIN picked USING (flow_id)
WHERE s.error
  AND s.start_time >= $start::TIMESTAMP_NS   -- a flow's spans start after it: the rest is not read
