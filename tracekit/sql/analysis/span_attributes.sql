-- The attributes of the spans of the traces named that started in [$from_ns, $to_ns], as JSON
-- text (typed values kept): what two compared flows' aligned steps are told apart by.
SELECT trace_id || ':' || span_id AS key, to_json(attributes)::VARCHAR AS attributes
FROM span_rows
WHERE trace_id IN (SELECT unnest($trace_ids::VARCHAR[]))
  AND start_time >= make_timestamp_ns($from_ns) AND start_time <= make_timestamp_ns($to_ns)
