-- What the first paint shows: cheap figures from the store itself, before any analysis.
SELECT (SELECT count(*) FROM span_rows) AS spans,
       (SELECT coalesce(max(batch_id), 0) FROM span_rows) AS last_batch,
       (SELECT epoch_ns(min(start_time)) FROM span_rows) AS first_ns,
       (SELECT epoch_ns(max(end_time)) FROM span_rows) AS last_ns,
       (SELECT list(DISTINCT service_name ORDER BY service_name) FROM resources) AS services
