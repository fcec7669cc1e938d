-- The flows.sql condition for a search by error text: in the status message, exception type
-- or exception message of a failing span started in the window (its flow started before it).
AND flow_id IN (
    SELECT t.flow_id FROM flow_traces AS t
    WHERE t.trace_id IN (
        SELECT s.trace_id FROM spans AS s
        WHERE s.status_code = 'ERROR' AND s.start_time >= make_timestamp_ns($start_ns)
          AND contains(lower(concat_ws(' ', s.status_message,
                list_filter(s.events, lambda e: e.name = 'exception')[1].attributes['exception.type']::VARCHAR,
                list_filter(s.events, lambda e: e.name = 'exception')[1].attributes['exception.message']::VARCHAR)),
                lower($search))))
