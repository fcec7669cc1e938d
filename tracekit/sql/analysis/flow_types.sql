-- The flow types from the stored flows: counts, error rate, duration percentiles, the most
-- common style (ties: the first by name), the variant's rank among its workflow's types by
-- frequency, and the three steps taking the largest share of its flows' critical paths.
WITH per_type AS (
    SELECT type_id, count(*) AS flows, any_value(root_service) AS root_service,
           any_value(root_name) AS root_name, avg(failed::INT) AS error_rate,
           quantile_cont(duration_ms, 0.5) AS p50_ms, quantile_cont(duration_ms, 0.95) AS p95_ms,
           quantile_cont(duration_ms, 0.99) AS p99_ms,
           avg((compensations > 0)::INT) > 0.5 AS compensating
    FROM flow_rows GROUP BY type_id
), styles AS (
    SELECT type_id, arg_min(style, (-n, style)) AS style
    FROM (SELECT type_id, style, count(*) AS n FROM flow_rows GROUP BY ALL) GROUP BY type_id
), steps AS (
    SELECT type_id, list({'service': service_name, 'name': name, 'segment': segment,
                          'share': round(share, 4)} ORDER BY share DESC, service_name, name, segment)
                    FILTER (rank <= 3) AS critical_steps
    FROM (SELECT *, duration_ns / sum(duration_ns) OVER (PARTITION BY type_id) AS share,
                 row_number() OVER (PARTITION BY type_id ORDER BY duration_ns DESC,
                                    service_name, name, segment) AS rank
          FROM (SELECT type_id, service_name, name, segment, sum(duration_ns) AS duration_ns
                FROM flow_type_steps GROUP BY ALL HAVING sum(duration_ns) <> 0))
    GROUP BY type_id
)
SELECT t.type_id, t.flows, t.root_service, t.root_name, s.style, t.error_rate, t.p50_ms,
       t.p95_ms, t.p99_ms, t.compensating, sh.signature,
       row_number() OVER (PARTITION BY t.root_service, t.root_name
                          ORDER BY t.flows DESC, t.type_id) AS variant,
       t.root_service || ' ' || t.root_name || ' #' || variant AS name,
       st.critical_steps
FROM per_type AS t JOIN styles AS s USING (type_id)
LEFT JOIN flow_shapes AS sh USING (type_id)
LEFT JOIN steps AS st USING (type_id)
ORDER BY t.root_service, t.root_name, variant
