-- The flows started in [$start_ns, $end_ns), and the flows named, with their time bounds.
SELECT flow_id, epoch_ns(start_time) AS start_ns, epoch_ns(end_time) AS end_ns FROM flow_rows
WHERE start_time >= make_timestamp_ns($start_ns) AND start_time < make_timestamp_ns($end_ns)
UNION
SELECT flow_id, epoch_ns(start_time), epoch_ns(end_time) FROM flow_rows
WHERE flow_id IN (SELECT unnest($flow_ids::VARCHAR[]))
