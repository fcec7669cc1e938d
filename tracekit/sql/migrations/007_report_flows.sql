-- Schema version 7: the report's flows, defined once for every report query
-- (tracekit/sql/report/*.sql): the flows started in its window or its baseline, of the flow
-- types asked for (NULL: all) or the one flow asked for (NULL: any), each with the part it
-- falls in ('window' first, then 'baseline'). Stored with the schema, not made per
-- connection, so that the queries a report prints run as they are in `tracekit sql`, on a
-- read-only store and through a collector alike.
CREATE OR REPLACE MACRO report_flows(window_start, window_end, base_start, base_end, type_ids, one_flow) AS TABLE
    SELECT *,
           CASE WHEN start_time >= window_start::TIMESTAMP_NS AND start_time < window_end::TIMESTAMP_NS THEN 'window'
                WHEN start_time >= base_start::TIMESTAMP_NS AND start_time < base_end::TIMESTAMP_NS THEN 'baseline'
           END AS part
    FROM flows
    WHERE start_time >= least(window_start, base_start)::TIMESTAMP_NS
      AND start_time < greatest(window_end, base_end)::TIMESTAMP_NS
      AND (type_ids::VARCHAR[] IS NULL OR list_contains(type_ids::VARCHAR[], type_id))
      AND (one_flow::VARCHAR IS NULL OR flow_id = one_flow::VARCHAR);
