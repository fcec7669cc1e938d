-- The critical path of an exemplar flow against a healthy flow of the same kind, by step:
-- milliseconds each step held the path (segment broker_wait: waiting for that consumer).
SELECT service_name, name, segment,
       round(coalesce(sum(duration_ms) FILTER (flow_id = $exemplar), 0), 1) AS exemplar_ms,
       round(coalesce(sum(duration_ms) FILTER (flow_id = $healthy), 0), 1) AS healthy_ms,
       round(coalesce(sum(duration_ms) FILTER (flow_id = $exemplar), 0)
             - coalesce(sum(duration_ms) FILTER (flow_id = $healthy), 0), 1) AS delta_ms
FROM critical_path
WHERE flow_id IN ($exemplar, $healthy)
  AND start_time >= $from::TIMESTAMP_NS   -- the earlier of the two flows' starts
GROUP BY ALL
ORDER BY delta_ms DESC, service_name, name, segment
