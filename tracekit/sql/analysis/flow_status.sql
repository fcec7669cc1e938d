-- The status of the flows named, as the store has it now.
SELECT flow_id, status, missing_steps FROM flows
WHERE flow_id IN (SELECT unnest($flow_ids::VARCHAR[]))
