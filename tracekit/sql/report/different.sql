-- What is different about the window's failing and slow flows (Honeycomb's BubbleUp question):
-- the span and resource attribute values most over-represented in them against the other
-- flows of the same workflows (root operations), in the window and the baseline: the path a
-- workflow takes through the services is no difference. A flow has a value when any of its spans, or
-- their resources, has it. Slow: longer than its workflow's 95th percentile in the baseline
-- (of the flows that did not fail). At most $sample flows of each side are read (a sample by
-- the hash of the flow id: the same on every run); spans starting more than ten minutes after the range are
-- not read. Failure signals themselves (status codes, error.type, exceptions) and the service
-- name are left out: they say that the flows failed and where, which the ranking says.
WITH scoped AS (
    SELECT flow_id, start_time, duration_ms, status, root_service, root_name,
           start_time >= $start::TIMESTAMP_NS AND start_time < $end::TIMESTAMP_NS AS in_window
    FROM flows
    WHERE ((start_time >= $start::TIMESTAMP_NS AND start_time < $end::TIMESTAMP_NS)
           OR (start_time >= $base_start::TIMESTAMP_NS AND start_time < $base_end::TIMESTAMP_NS))
      AND ($type_ids::VARCHAR[] IS NULL OR list_contains($type_ids::VARCHAR[], type_id))
), usual AS (
    SELECT root_service, root_name, quantile_cont(duration_ms, 0.95) AS p95_ms
    FROM scoped WHERE NOT in_window AND status NOT IN ('failed', 'degraded')
    GROUP BY ALL
), sided AS (
    SELECT s.flow_id, s.root_service, s.root_name,
           coalesce(s.in_window AND (s.status IN ('failed', 'degraded') OR s.duration_ms > u.p95_ms),
                    false) AS picked
    FROM scoped AS s LEFT JOIN usual AS u USING (root_service, root_name)
), sampled AS (
    SELECT flow_id, picked FROM sided
    WHERE (root_service, root_name) IN (SELECT DISTINCT root_service, root_name FROM sided WHERE picked)
    QUALIFY row_number() OVER (PARTITION BY picked ORDER BY hash(flow_id), flow_id) <= $sample
), their_spans AS MATERIALIZED (
    SELECT p.flow_id, p.picked, s.attributes, s.resource_id
    FROM sampled AS p
    JOIN flow_spans AS f USING (flow_id)
    JOIN span_rows AS s ON s.trace_id = f.trace_id AND s.span_id = f.span_id
    WHERE f.start_time >= least($start, $base_start)::TIMESTAMP_NS
      AND s.start_time >= least($start, $base_start)::TIMESTAMP_NS
      AND s.start_time < greatest($end, $base_end)::TIMESTAMP_NS + INTERVAL 10 MINUTE
), span_values AS (
    SELECT t.flow_id, t.picked, 'span' AS source, e.key, json_extract_string(e.value, '$') AS value
    FROM their_spans AS t, json_each(t.attributes::JSON) AS e
    WHERE e.type NOT IN ('OBJECT', 'ARRAY')
), resource_values AS (
    SELECT t.flow_id, t.picked, 'resource' AS source, e.key, json_extract_string(e.value, '$') AS value
    FROM (SELECT DISTINCT flow_id, picked, resource_id FROM their_spans) AS t
    JOIN resources AS r USING (resource_id), json_each(r.attributes::JSON) AS e
    WHERE e.type NOT IN ('OBJECT', 'ARRAY')
), counted AS (
    SELECT source, key, value,
           count(DISTINCT flow_id) FILTER (picked) AS picked_flows,
           count(DISTINCT flow_id) FILTER (NOT picked) AS other_flows
    FROM (SELECT * FROM span_values UNION ALL SELECT * FROM resource_values)
    WHERE key NOT IN ('service.name', 'error.type', 'http.response.status_code', 'http.status_code',
                      'rpc.grpc.status_code', 'otel.status_code', 'otel.status_description')
      AND NOT starts_with(key, 'exception.')
    GROUP BY ALL
), sizes AS (
    SELECT count(*) FILTER (picked) AS n_picked, count(*) FILTER (NOT picked) AS n_other FROM sampled
)
SELECT source, key AS attribute, value,
       picked_flows, n_picked, round(picked_flows / n_picked, 3) AS picked_share,
       other_flows, n_other, round(other_flows / greatest(n_other, 1), 3) AS other_share
FROM counted, sizes
WHERE picked_flows >= $min_flows
  AND picked_flows / n_picked - other_flows / greatest(n_other, 1) >= $min_lift
ORDER BY picked_flows / n_picked - other_flows / greatest(n_other, 1) DESC, picked_flows DESC,
         source, attribute, value
LIMIT $limit
