-- The oldest batch any stored span or log came from.
SELECT least((SELECT min(batch_id) FROM span_rows), (SELECT min(batch_id) FROM log_rows));
