-- `tracekit check`: the flows started in [$start_ns, $end_ns), to tell a window without data.
SELECT count(*) FROM flow_rows
WHERE start_time >= make_timestamp_ns($start_ns) AND start_time < make_timestamp_ns($end_ns)
