-- The status of the flows named (all started in [$from_ns, $to_ns]), as the store has it now.
SELECT flow_id, status, missing_steps FROM flows
WHERE flow_id IN (SELECT unnest($flow_ids::VARCHAR[]))
  AND start_time >= make_timestamp_ns($from_ns) AND start_time <= make_timestamp_ns($to_ns)
