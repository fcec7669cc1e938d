-- The critical-path time of the flows about to be replaced, subtracted from their types.
INSERT INTO flow_type_steps
SELECT f.type_id, c.service_name, c.name, c.segment,
       -sum(epoch_ns(c.end_time) - epoch_ns(c.start_time))
FROM critical_path AS c JOIN flow_rows AS f USING (flow_id)
WHERE c.flow_id IN (SELECT unnest($flow_ids::VARCHAR[]))
  AND c.start_time BETWEEN make_timestamp_ns($start) AND make_timestamp_ns($end)
  AND f.start_time BETWEEN make_timestamp_ns($start) AND make_timestamp_ns($end)
GROUP BY ALL
