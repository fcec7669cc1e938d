SELECT (SELECT count(*) FROM span_rows)                  AS spans,
       (SELECT count(*) FROM log_rows)                   AS logs,
       (SELECT count(DISTINCT trace_id) FROM span_rows)  AS traces,
       (SELECT count(DISTINCT service_name) FROM resources) AS services,
       (SELECT min(start_time) FROM span_rows)           AS first_span,
       (SELECT max(end_time) FROM span_rows)             AS last_span,
       (SELECT min("timestamp") FROM log_rows)           AS first_log,
       (SELECT max("timestamp") FROM log_rows)           AS last_log,
       (SELECT max(version) FROM schema_version)         AS schema_version;
