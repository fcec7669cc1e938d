-- `tracekit check` on spans: the spans of the flows started in [$start_ns, $end_ns) (of the
-- types $type_ids, NULL: every type) that match the selector (NULL: any service, name, kind;
-- every attribute in $select_keys equal to $select_values, as text). How many fail, how long
-- they take, how many lack the attributes $expect_keys = $expect_values, and examples of each.
-- Attributes are read from `spans` only when a key is given, for the picked flows' traces and
-- time bounds (the row groups outside them are skipped).
WITH picked AS (
    SELECT flow_id, start_time, end_time FROM flow_rows
    WHERE start_time >= make_timestamp_ns($start_ns) AND start_time < make_timestamp_ns($end_ns)
      AND ($type_ids::VARCHAR[] IS NULL OR list_contains($type_ids::VARCHAR[], type_id))
), candidates AS (
    SELECT s.flow_id, s.trace_id, s.span_id, s.service_name, s.name, s.error,
           epoch_ns(s.end_time - s.start_time) / 1e6 AS duration_ms, s.start_time
    FROM flow_spans AS s JOIN picked USING (flow_id)
    WHERE ($service::VARCHAR IS NULL OR s.service_name = $service)
      AND ($name::VARCHAR IS NULL OR s.name = $name)
      AND ($kind::VARCHAR IS NULL OR s.kind = $kind)
), attributes AS (
    SELECT trace_id, span_id, attributes::JSON AS attributes FROM spans
    WHERE len($select_keys::VARCHAR[]) + len($expect_keys::VARCHAR[]) > 0
      AND trace_id IN (SELECT trace_id FROM candidates)
      AND start_time >= (SELECT min(start_time) FROM picked)
      AND start_time <= (SELECT max(end_time) FROM picked)
), judged AS (
    SELECT c.*,
           list_bool_and(list_transform(range(len($select_keys::VARCHAR[])),
               lambda i: coalesce((a.attributes ->> ('/' || replace(replace($select_keys[i + 1], '~', '~0'), '/', '~1')))
                             = $select_values[i + 1], false))) AS selected,
           list_bool_and(list_transform(range(len($expect_keys::VARCHAR[])),
               lambda i: coalesce((a.attributes ->> ('/' || replace(replace($expect_keys[i + 1], '~', '~0'), '/', '~1')))
                             = $expect_values[i + 1], false))) AS as_expected
    FROM candidates AS c LEFT JOIN attributes AS a USING (trace_id, span_id)
), chosen AS (
    SELECT * FROM judged WHERE selected IS NULL OR selected
)
SELECT count(*) AS selected,
       count(*) FILTER (error) AS errors,
       count(*) FILTER (NOT coalesce(as_expected, true)) AS unlike,
       quantile_cont(duration_ms, 0.5) AS p50, quantile_cont(duration_ms, 0.9) AS p90,
       quantile_cont(duration_ms, 0.95) AS p95, quantile_cont(duration_ms, 0.99) AS p99,
       max(duration_ms) AS max,
       min_by(struct_pack(flow_id, trace_id, span_id, service_name, name), start_time, $offenders)
           FILTER (error) AS failed_spans,
       min_by(struct_pack(flow_id, trace_id, span_id, service_name, name), start_time, $offenders)
           FILTER (NOT coalesce(as_expected, true)) AS unlike_spans,
       max_by(struct_pack(flow_id, trace_id, span_id, service_name, name, duration_ms), duration_ms,
              $offenders) FILTER (duration_ms > $slow_ms) AS slow_spans
FROM chosen
