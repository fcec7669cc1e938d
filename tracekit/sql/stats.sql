SELECT (SELECT count(*) FROM spans)                      AS spans,
       (SELECT count(*) FROM logs)                       AS logs,
       (SELECT count(DISTINCT trace_id) FROM spans)      AS traces,
       (SELECT count(DISTINCT service_name) FROM
            (SELECT service_name FROM spans UNION SELECT service_name FROM logs)) AS services,
       (SELECT min(start_time) FROM spans)               AS first_span,
       (SELECT max(end_time) FROM spans)                 AS last_span,
       (SELECT min("timestamp") FROM logs)               AS first_log,
       (SELECT max("timestamp") FROM logs)               AS last_log,
       (SELECT max(version) FROM schema_version)         AS schema_version;
